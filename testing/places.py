"""Which ids go into a URL, and whether a hostile one arrives as one segment.

Nothing is declared: each string field of each example, the tracking id (where
the platform has a status call) and each plain-text setting is set in turn to a
marker and sent through the real client to a :class:`RecordingProxy` in front of
the sandbox. Where the marker shows up in a request line, the value is an id in
the URL. Each hostile id is then sent the same way, and the request line must
differ from the marker's only by that id, encoded inside the same segment (or
the same query value): same method, same number of segments, no raw ``.`` or
``..`` segment, every other byte unchanged. A value refused as bad input before
anything went out passes too.

A hostile id refused as bad input is sent again appended to the marker (``marker +
id``): an adapter that checks ids with a prefix match (``re.match(r"[0-9]+", id)``)
refuses every hostile id alone but lets ``1001#`` through. A field that refuses both markers is
probed with the example's own value instead (matched as a whole segment or query
value); one that refuses that too cannot be probed, and is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, unquote_plus

if TYPE_CHECKING:
    from cancelkit.core.client import Client

    from .harness import Harness
    from .subject import Subject
    from .wire import Exchange, Received, RecordingProxy

#: Stand-ins for an id: letters first, digits for fields that only take numbers.
MARKERS = ("ckmark0q", "7391846205")
#: Settings core reads itself, never part of a URL.
_CORE_SETTINGS = ("timeout", "poll_interval")


@dataclass(frozen=True)
class Candidate:
    """A value that may go into the URL: a request field, the tracking id or a setting."""

    name: str
    kind: str  # "request", "tracking" or "setting"
    example: int = 0
    path: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Place:
    """A candidate found in a URL: its marker, and the requests the marker made."""

    candidate: Candidate
    marker: str
    baseline: list[Exchange]
    #: Indexes (in ``baseline``) of the requests whose line holds the marker.
    hits: tuple[int, ...]


def sent_values(marker: str, hostile: str) -> tuple[str, str]:
    """What is sent in a place for one hostile id: the id, and the id after the marker."""
    return hostile, marker + hostile


def markers_for(subject: Subject, candidate: Candidate) -> list[tuple[str, bool]]:
    """The markers to find ``candidate`` with, each with whether it must be a whole
    segment (or query value): the fixed ones, then the candidate's own value."""
    whole = candidate.kind == "setting"  # a setting counts where it is a whole segment
    found = [(marker, whole) for marker in MARKERS]
    own = own_value(subject, candidate)
    if own and own not in MARKERS:
        found.append((own, True))  # an example's value may recur: only whole ones count
    return found


def own_value(subject: Subject, candidate: Candidate) -> str | None:
    """The value the example (or the emulator's settings) gives the candidate, if any."""
    if candidate.kind == "request":
        value: Any = subject.example(candidate.example)
        for key in candidate.path:
            value = value[key]
        return value if isinstance(value, str) else None
    if candidate.kind == "setting":
        given = subject.config_at("http://127.0.0.1:9")[subject.settings_name()]
        return given.get(candidate.path[0]) or None
    return None


def string_fields(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every string in a request (``("lines", 0, "line_id")``...)."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_fields(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_fields(item, (*path, index))


def dotted(path: tuple[Any, ...]) -> str:
    """``("lines", 0, "line_id")`` -> ``lines[0].line_id``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def candidates(subject: Subject) -> list[Candidate]:
    """Every value that could end up in a URL."""
    found = [
        Candidate(f"examples[{i}].{dotted(path)}", "request", i, path)
        for i in range(len(subject.examples))
        for path in string_fields(subject.example(i))
    ]
    if subject.adapter.capabilities.has_status:
        found.append(Candidate("tracking_id", "tracking"))
    for setting in subject.adapter.capabilities.settings:
        if setting.secret or setting.kind != "text" or setting.name in _CORE_SETTINGS:
            continue
        found.append(Candidate(f"setting {setting.name}", "setting", 0, (setting.name,)))
    return found


class WireCheck:
    """Sends candidates through the proxy and judges what arrived.

    Token calls are left out of what it compares: a client reused across values
    fetches its token once, and that is no id's business.
    """

    def __init__(self, subject: Subject, proxy: RecordingProxy, harness: Harness) -> None:
        self.subject = subject
        self.proxy = proxy
        self.harness = harness
        self._shared: Client | None = None
        #: Request fields refused for every marker (see :meth:`find`).
        self.unprobed: list[str] = []

    def close(self) -> None:
        """Close the client shared by request fields and tracking ids."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def _client(self, candidate: Candidate, value: str) -> tuple[Client, bool]:
        """A client for this call, and whether it is a fresh one to close afterwards."""
        subject, clock = self.subject, self.harness.clock
        if candidate.kind == "setting":
            config = subject.config_at(self.proxy.url, **{candidate.path[0]: value})
            return subject.client(config, clock), True
        if self._shared is None:
            self._shared = subject.client(subject.config_at(self.proxy.url), clock)
        return self._shared, False

    def exchange(self, candidate: Candidate, value: str) -> tuple[list[Exchange], Exception | None]:
        """Run the call with ``value`` in the candidate's place: the non-token requests
        that arrived, and the cancelkit error raised, if any."""
        from cancelkit.errors import CancelkitError

        subject = self.subject
        client, fresh = self._client(candidate, value)
        request = subject.example(candidate.example)
        if candidate.kind == "request":
            set_field(request, candidate.path, value)
        error: Exception | None = None
        try:
            if candidate.kind == "tracking":
                client.status(subject.platform, value)
            else:
                client.send(request, subject.platform)
        except CancelkitError as caught:
            error = caught
        finally:
            if fresh:
                client.close()
        arrived = self.proxy.take()
        return [e for e in arrived if not self.harness.is_token_received(e.request)], error

    def find(self, candidate: Candidate) -> Place | None:
        """Where the candidate lands in a URL, or None (body only).

        A request field refused for every marker, its own value included, is added
        to :attr:`unprobed`: nothing could be learnt about it.
        """
        refusal: Exception | None = None
        for marker, whole in markers_for(self.subject, candidate):
            arrived, error = self.exchange(candidate, marker)
            if not arrived and error is not None:
                refusal = error
                continue  # refused as bad input: try the next marker
            hits = tuple(
                i for i, exchange in enumerate(arrived) if _lands(exchange.request, marker, whole)
            )
            return Place(candidate, marker, arrived, hits) if hits else None
        if candidate.kind == "request":
            self.unprobed.append(
                f"{candidate.name}: refused for every marker, the example's own value "
                f"included, so no id could be sent in its place ({refusal})"
            )
        return None

    def problems(self, place: Place, hostile: str) -> list[str]:
        """How sending ``hostile`` in ``place`` went wrong on the wire (empty when it
        did not). One refused as bad input is sent again after the marker."""
        from cancelkit.errors import ConfigurationError, InvalidRequestError

        alone, after = sent_values(place.marker, hostile)
        found, error = self._problems(place, alone)
        if isinstance(error, (InvalidRequestError, ConfigurationError)):
            found += self._problems(place, after)[0]
        return found

    def _problems(self, place: Place, hostile: str) -> tuple[list[str], Exception | None]:
        from cancelkit.errors import ConfigurationError, InvalidRequestError

        arrived, error = self.exchange(place.candidate, hostile)
        found = []
        for index in place.hits:
            expected = place.baseline[index].request
            if index >= len(arrived):
                if isinstance(error, (InvalidRequestError, ConfigurationError)):
                    continue  # refused before it went out
                found.append(
                    f"{place.candidate.name} = {hostile!r}: the call never arrived "
                    f"({type(error).__name__}: {error})"
                )
                continue
            got = arrived[index].request
            why = difference(expected, got, place.marker, hostile)
            if why:
                found.append(
                    f"{place.candidate.name} = {hostile!r}: {why}; sent {got.line!r} "
                    f"where {expected.line!r} was sent for {place.marker!r}"
                )
        return found, error


def set_field(request: Any, path: tuple[Any, ...], value: str) -> None:
    """Put ``value`` at ``path`` (as :func:`string_fields` gives it) in ``request``."""
    target = request
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _lands(request: Received, marker: str, whole: bool) -> bool:
    return lands(request.path, request.query, marker, whole)


def lands(path: str, query: str, marker: str, whole: bool) -> bool:
    """True when ``marker`` is in the (encoded) path or query: inside a segment or
    value, or (``whole``) as a whole segment or query value."""
    segments = [unquote(s) for s in path.split("/")]
    if whole:
        values = [v for _, v in parse_qsl(query, keep_blank_values=True)]
        return marker in segments or marker in values
    return any(marker in s for s in segments) or marker in unquote_plus(query)


def difference(expected: Received, got: Received, marker: str, hostile: str) -> str:
    """Why ``got`` is not ``expected`` with ``hostile`` in the marker's place ('' if it is)."""
    if {".", ".."} & set(got.segments):
        return "a raw dot segment (a server collapses it)"
    if got.method != expected.method:
        return f"method {got.method} instead of {expected.method}"
    if len(got.segments) != len(expected.segments):
        return f"{len(got.segments) - 1} path segments instead of {len(expected.segments) - 1}"
    for mine, theirs in zip(got.segments, expected.segments, strict=True):
        plain = unquote(theirs)
        if marker not in plain:
            if mine != theirs:
                return f"segment {theirs!r} became {mine!r}"
            continue
        try:
            decoded = unquote(mine, errors="strict")
        except UnicodeDecodeError:
            return f"segment {mine!r} is not UTF-8 once decoded"
        if decoded != plain.replace(marker, hostile):
            return f"segment {mine!r} decodes to {decoded!r}"
    if marker in unquote_plus(expected.query):
        pairs = parse_qsl(expected.query, keep_blank_values=True)
        wanted = [(k.replace(marker, hostile), v.replace(marker, hostile)) for k, v in pairs]
        if parse_qsl(got.query, keep_blank_values=True) != wanted:
            return f"query {got.query!r} does not decode to {wanted!r}"
    elif got.query != expected.query:
        return f"query {expected.query!r} became {got.query!r}"
    return ""
