"""Ids in the URL of every call an adapter builds, checked without sending them.

The wire check (:mod:`.places`) sees only the calls the emulator lets a marker
reach: a lookup answered 404 for an unknown order hides the cancel built after
it, and a refused step hides the calls ``next_call`` would build next. Here each
call is built offline - ``translate``; ``lookup_call``, then ``complete`` and
``translate`` with the lookup's answer to the unchanged example; ``next_call``
with the answers the unchanged example got, step by step; ``status_call`` - for a
marker, and for each hostile id (alone and after the marker). A call whose URL
held the marker must hold the id as one segment (or one query value) decoding
back to it, in URL characters only, every other byte unchanged; or the value is
refused as bad input. Answers the sandbox never gave are a fake ``200 {}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .places import Candidate, difference, lands, markers_for, sent_values, set_field
from .wire import Received

if TYPE_CHECKING:
    from cancelkit.core.client import Client
    from cancelkit.core.config import Settings
    from cancelkit.core.http import HttpCall, HttpResponse
    from cancelkit.core.model import CancelRequest

    from .harness import Harness
    from .subject import Subject

#: A request target written in URL characters only (RFC 3986: unreserved,
#: sub-delims, ``:@/?`` and percent-escapes).
_CLEAN = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
#: The most calls followed (core stops a sequence there too).
_MAX_CALLS = 10


@dataclass
class Recorded:
    """The sandbox's answers to one unchanged example: its lookup's, then its calls'."""

    lookup: HttpResponse | None = None
    answers: list[HttpResponse] = field(default_factory=list)


@dataclass
class Built:
    """The calls built for one value, by name, and the error that stopped the building."""

    calls: dict[str, HttpCall] = field(default_factory=dict)
    error: Exception | None = None

    @property
    def refused(self) -> bool:
        """True when the value was refused as bad input (or as a setting)."""
        from cancelkit.errors import ConfigurationError, InvalidRequestError

        return isinstance(self.error, (InvalidRequestError, ConfigurationError))


@dataclass(frozen=True)
class OfflinePlace:
    """A candidate whose marker is in the URL of the calls named."""

    candidate: Candidate
    marker: str
    baseline: Built
    names: tuple[str, ...]


def record(subject: Subject, harness: Harness) -> list[Recorded]:
    """Each example sent once, unchanged, to the sandbox: the answers it got (token
    calls aside), the lookup's apart."""
    from cancelkit.core.http import HttpResponse

    from .checks import quietly

    found = []
    for index in range(len(subject.examples)):
        harness.reset()
        with subject.client(harness.box.client_config(), harness.clock) as client:
            quietly(lambda: client.send(subject.example(index), subject.platform))  # noqa: B023
            prepared = quietly(lambda: client.prepare(subject.example(index), subject.platform))  # noqa: B023
            settings = subject.settings_of(client)
        answers = [
            HttpResponse(
                answer.status, dict(answer.headers), answer.body.decode("utf-8", "replace")
            )
            for _, answer in harness.api_calls()
        ]
        looked_up = prepared is not None and subject.adapter.lookup_call(prepared, settings)
        lookup = answers.pop(0) if looked_up and answers else None
        found.append(Recorded(lookup, answers))
    harness.reset()
    return found


def offline_problems(
    subject: Subject, harness: Harness, hostile_ids: Sequence[str]
) -> tuple[list[str], int]:
    """Every way a hostile id changes the URL of a call built offline, and how many
    candidates go into a URL at all."""
    from .places import candidates

    check = OfflineCheck(subject, record(subject, harness))
    problems: list[str] = []
    try:
        places = [p for p in map(check.find, candidates(subject)) if p is not None]
        for place in places:
            for hostile in hostile_ids:
                problems += [f"built offline: {p}" for p in check.problems(place, hostile)]
    finally:
        check.close()
    return problems, len(places)


class OfflineCheck:
    """Builds every call for a value in a candidate's place, and judges their URLs."""

    def __init__(self, subject: Subject, recorded: list[Recorded]) -> None:
        self.subject = subject
        self.recorded = recorded
        self._client = subject.offline_client()

    def close(self) -> None:
        """Close the client shared by request fields and tracking ids."""
        self._client.close()

    def build(self, candidate: Candidate, value: str) -> Built:
        """Every call the adapter builds with ``value`` in the candidate's place."""
        subject, built = self.subject, Built()
        client = self._client
        try:
            if candidate.kind == "setting":
                client = subject.offline_client(**{candidate.path[0]: value})
            settings = subject.settings_of(client)
            if candidate.kind == "tracking":
                from cancelkit.core.client import _check_tracking_id

                _check_tracking_id(value)  # what Client.status refuses before building
                built.calls["status_call"] = subject.adapter.status_call(value, settings)
                return built
            self._cancel_calls(client, settings, candidate, value, built)
            if candidate.kind == "setting" and subject.adapter.capabilities.has_status:
                built.calls["status_call"] = subject.adapter.status_call("T-1", settings)
        except Exception as error:  # bad input (refused), or the adapter crashing on it
            built.error = error
        finally:
            if client is not self._client:
                client.close()
        return built

    def _cancel_calls(
        self, client: Client, settings: Settings, candidate: Candidate, value: str, built: Built
    ) -> None:
        from cancelkit.core.schemas import load_request

        subject = self.subject
        adapter = subject.adapter
        request = subject.example(candidate.example)
        if candidate.kind == "request":
            set_field(request, candidate.path, value)
        prepared: CancelRequest = client.prepare(request, subject.platform)
        recorded = self.recorded[candidate.example]
        lookup = adapter.lookup_call(prepared, settings)
        name = "translate"
        if lookup is not None:
            built.calls["lookup_call"] = lookup
            answer = recorded.lookup if _ok(recorded.lookup) else _fake()
            assert answer is not None
            prepared = load_request(adapter.complete(prepared, answer))
            adapter.validate(prepared)  # what core does with a completed request
            name = "translate after the lookup"
        built.calls[name] = adapter.translate(prepared, settings)
        answers = recorded.answers or [_fake()]
        for count in range(1, min(len(answers), _MAX_CALLS) + 1):
            if not _ok(answers[count - 1]):
                break  # core ends the sequence at an answer that is not 2xx
            following = adapter.next_call(prepared, settings, tuple(answers[:count]))
            if following is None:
                break
            built.calls[f"next_call {count + 1}"] = following

    def find(self, candidate: Candidate) -> OfflinePlace | None:
        """The calls whose URL holds the candidate's marker, or None."""
        for marker, whole in markers_for(self.subject, candidate):
            built = self.build(candidate, marker)
            if not built.calls and built.error is not None:
                continue  # refused: try the next marker
            names = tuple(
                name
                for name, call in built.calls.items()
                if lands(_received(call).path, _received(call).query, marker, whole)
            )
            return OfflinePlace(candidate, marker, built, names) if names else None
        return None

    def problems(self, place: OfflinePlace, hostile: str) -> list[str]:
        """How the calls built with ``hostile`` (alone, and after the marker) in
        ``place`` go wrong (empty when they do not)."""
        found = []
        for value in sent_values(place.marker, hostile):
            built = self.build(place.candidate, value)
            for name in place.names:
                expected = place.baseline.calls[name]
                got = built.calls.get(name)
                if got is None:
                    if not built.refused:
                        error = built.error
                        found.append(
                            f"{place.candidate.name} = {value!r}: {name} was not built "
                            f"({type(error).__name__}: {error})"
                        )
                    continue
                why = _judged(expected, got, place.marker, value)
                if why:
                    found.append(
                        f"{place.candidate.name} = {value!r}: {name}: {why}; built "
                        f"{got.method} {got.url!r} where {expected.url!r} was built "
                        f"for {place.marker!r}"
                    )
        return found


def _judged(expected: HttpCall, got: HttpCall, marker: str, value: str) -> str:
    """Why ``got`` is not ``expected`` with ``value`` in the marker's place ('' if it is)."""
    mine, theirs = _received(expected), _received(got)
    why = difference(mine, theirs, marker, value)
    if why:
        return why
    if _CLEAN.fullmatch(mine.target) and not _CLEAN.fullmatch(theirs.target):
        return "puts characters a URL cannot hold there raw (not percent-encoded)"
    return ""


def _target(url: str) -> str:
    """The request target a client sends for ``url``: path and query, no fragment."""
    rest = url.split("#", 1)[0].split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _received(call: HttpCall) -> Received:
    """The request line a server would read for ``call``."""
    target = _target(call.url)
    return Received(f"{call.method} {target} HTTP/1.1", call.method, target, (), b"")


def _ok(answer: HttpResponse | None) -> bool:
    return answer is not None and 200 <= answer.status < 300


def _fake() -> HttpResponse:
    """An answer for a step the unchanged example never reached in the sandbox."""
    from cancelkit.core.http import HttpResponse

    return HttpResponse(200, {"Content-Type": "application/json"}, "{}")
