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


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def candidates(subject: Subject) -> list[Candidate]:
    """Every value that could end up in a URL."""
    found = [
        Candidate(f"examples[{i}].{_dotted(path)}", "request", i, path)
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
            _set(request, candidate.path, value)
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
        """Where the candidate lands in a URL, or None (body only, or refused as an id)."""
        for marker in MARKERS:
            arrived, error = self.exchange(candidate, marker)
            if not arrived and error is not None:
                continue  # refused as bad input: try the other marker
            whole = candidate.kind == "setting"  # a setting counts where it is a whole segment
            hits = tuple(
                i for i, exchange in enumerate(arrived) if _lands(exchange.request, marker, whole)
            )
            return Place(candidate, marker, arrived, hits) if hits else None
        return None

    def problems(self, place: Place, hostile: str) -> list[str]:
        """How sending ``hostile`` in ``place`` went wrong on the wire (empty when it did not)."""
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
            why = _difference(expected, got, place.marker, hostile)
            if why:
                found.append(
                    f"{place.candidate.name} = {hostile!r}: {why}; sent {got.line!r} "
                    f"where {expected.line!r} was sent for {place.marker!r}"
                )
        return found


def _set(request: Any, path: tuple[Any, ...], value: str) -> None:
    target = request
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _lands(request: Received, marker: str, whole: bool) -> bool:
    segments = [unquote(s) for s in request.segments]
    if whole:
        return marker in segments
    return any(marker in s for s in segments) or marker in unquote_plus(request.query)


def _difference(expected: Received, got: Received, marker: str, hostile: str) -> str:
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
