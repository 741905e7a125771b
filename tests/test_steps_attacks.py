"""Attacks on cancellations of several calls and on throttles inside 200 bodies.

Each test plays a careless plugin author, a careless user or a hostile answer
against core/sequence.py and the Sender (twostep_plugin.py is the platform). Most
were bugs when written (a stranger's server got the token, a 500 marked throttled
was sent three times...), fixed since. The judge is what the emulator (or a
stranger's server) saw.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import twostep_plugin
from conftest import SleepRecorder
from stepshelp import REQUEST, client_for
from twostep_plugin import TwoStepAdapter, TwoStepEmulator

from cancelkit.core.sandbox.server import Sandbox
from cancelkit.plugin import (
    MASK,
    CancelRequest,
    CancelResult,
    EmuResponse,
    HttpCall,
    HttpResponse,
    ResultError,
    Settings,
    hookimpl,
    join_url,
    rejected_result,
)

#: The two-step sandbox fixtures (``box``, ``emulator``, ``client``), shared.
pytest_plugins = ["stepshelp"]


class _Plugin:
    """Registers one adapter under the ``twostep`` name (the sandbox serves it)."""

    def __init__(self, adapter: TwoStepAdapter) -> None:
        self.adapter = adapter

    @hookimpl
    def cancelkit_platforms(self) -> list[TwoStepAdapter]:
        return [self.adapter]


# -- a next call to another host ---------------------------------------------------


class _Thief(BaseHTTPRequestHandler):
    """A stranger's server: keeps every Authorization header it is sent."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        type(self).seen.append(self.headers.get("Authorization") or "")
        body = b'{"order": {"id": "ORDER-1", "lines": []}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def thief() -> Iterator[str]:
    _Thief.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Thief)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _FollowsLinks(TwoStepAdapter):
    """Commits where the first answer says (a "next" link): a careless plugin."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        if len(answers) > 1:
            return None
        link = answers[0].json()["edit"]["commit_url"]
        return HttpCall("POST", link, {"Authorization": MASK})


def test_a_next_call_to_a_host_from_an_answer_never_gets_the_credentials(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder, thief: str
) -> None:
    begin = emulator._begin

    def begin_with_link(body: Any) -> EmuResponse:
        begin(body)  # the edit opens; the answer points somewhere else
        return EmuResponse.json(200, {"edit": {"id": "edit-1", "commit_url": f"{thief}/steal"}})

    emulator._begin = begin_with_link  # type: ignore[method-assign]
    with client_for(box, sleeps, _Plugin(_FollowsLinks())) as client:
        result = client.send(REQUEST, "twostep")
    assert not any(TwoStepEmulator.TOKEN in seen for seen in _Thief.seen)
    assert result.outcome == "unknown"  # the first call went out: never "retry"


# -- is_throttled on an answer that is not a success -------------------------------


class _ThrottledOnAnyErrors(TwoStepAdapter):
    """Says throttled whenever a body has ``errors``: ignores the status (careless)."""

    def is_throttled(self, response: HttpResponse) -> bool:
        body = response.json()
        return isinstance(body, dict) and bool(body.get("errors"))


def test_is_throttled_on_a_500_never_resends_the_call(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    begin = emulator._begin

    def begin_then_fail(body: Any) -> EmuResponse:
        begin(body)  # applied, then the platform fails answering
        return EmuResponse.json(500, {"errors": [{"message": "Internal error"}]})

    emulator._begin = begin_then_fail  # type: ignore[method-assign]
    with client_for(box, sleeps, _Plugin(_ThrottledOnAnyErrors())) as client:
        result = client.send(REQUEST, "twostep")
    assert emulator.received == ["begin"]
    assert result.outcome == "unknown"


# -- a retryable refusal of a later call -------------------------------------------


class _RetryableCommit(TwoStepAdapter):
    """Reads a commit's "try again" userError as retryable, as a single call's would be."""

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        errors = response.json().get("userErrors") or []
        if any(e.get("code") == "TRY_AGAIN" for e in errors):
            again = ResultError(message="edit locked", code="TRY_AGAIN", retryable=True)
            return rejected_result(self.name, request, (again,), response.status)
        return super().normalise(request, response)


def test_a_retryable_refusal_of_the_second_call_never_resends_the_first(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    def locked(edit_id: str) -> EmuResponse:
        emulator.received.append("commit")
        return EmuResponse.json(200, {"userErrors": [{"message": "locked", "code": "TRY_AGAIN"}]})

    emulator._commit = locked  # type: ignore[method-assign]
    with client_for(box, sleeps, _Plugin(_RetryableCommit())) as client:
        results = list(client.send_many([("twostep", REQUEST)], concurrency=1))
    assert emulator.received.count("begin") == 1, emulator.received
    assert results[0].outcome in ("rejected", "unknown")


# -- a plugin's own exception while sending a later call ---------------------------


class _ReadsTheBody:
    """A before_send hook written for one-call platforms: every call has a body."""

    @hookimpl
    def cancelkit_before_send(self, call: HttpCall, adapter: object) -> dict[str, str]:
        body: Any = call.body  # None for the commit: TypeError
        return {"X-Order": str(body["order_id"])}


def test_a_plugin_exception_while_sending_the_second_call_is_an_unknown_result(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    with client_for(box, sleeps, twostep_plugin, _ReadsTheBody(), ledger=False) as client:
        result = client.send(REQUEST, "twostep")
    assert emulator.received == ["begin"]
    assert result.outcome == "unknown"
    assert "call 2 (commit)" in (result.message or "")


def test_with_a_ledger_that_exception_still_keeps_the_key_unknown(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    """The ledger records that unknown and holds the key (never resent)."""
    with client_for(box, sleeps, twostep_plugin, _ReadsTheBody()) as client:
        assert client.send(REQUEST, "twostep").outcome == "unknown"
    with client_for(box, sleeps) as client:
        again = client.send(REQUEST, "twostep")
    assert again.outcome == "unknown" and again.details["ledger"]["held"] is True
    assert emulator.received == ["begin"]


# -- what an unknown after call 1 says ----------------------------------------------


def test_an_unknown_after_the_first_call_never_says_it_is_safe_to_retry(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    client = client_for(box, sleeps, twostep_plugin)

    class GoneBetweenTheSteps:
        @hookimpl
        def cancelkit_before_send(self, call: HttpCall, adapter: object) -> None:
            if call.url.endswith("/commit"):  # the platform goes down between the steps
                box.stop()
                client._senders["twostep"].session.close()  # no kept-alive connection

    client.registry.register(GoneBetweenTheSteps(), "gone")
    with client:
        result = client.send(REQUEST, "twostep")
    assert result.outcome == "unknown"
    assert emulator.received == ["begin"]
    said = (result.message or "").lower()
    assert "safe to retry" not in said and "nothing was sent" not in said, result.message


# -- the same call twice in one sequence --------------------------------------------


class _ForgetsToStop(TwoStepAdapter):
    """Builds the commit from the first answer every time: never says "done"."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        edit = answers[0].json()["edit"]["id"]
        return HttpCall(
            "POST", join_url(settings["base_url"], "edits", edit, "commit"), {"Authorization": MASK}
        )


def test_a_call_already_sent_in_the_sequence_is_never_sent_again(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    with client_for(box, sleeps, _Plugin(_ForgetsToStop())) as client:
        result = client.send(REQUEST, "twostep")
    assert emulator.orders["ORDER-1"]["L1"] == 1  # the first commit cancelled it
    assert emulator.received == ["begin", "commit"]
    assert result.outcome != "rejected"


# -- attacks that failed: kept as coverage -------------------------------------------


class _RawId(TwoStepAdapter):
    """Puts the edit id from the answer into the path and a header raw (careless)."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        if len(answers) > 1:
            return None
        edit = answers[0].json()["edit"]["id"]
        base = settings["base_url"]
        return HttpCall("POST", f"{base}/edits/{edit}/commit", {"Authorization": MASK})


def test_a_crlf_in_an_id_from_an_answer_never_splits_the_request(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    emulator.edit_prefix = "x HTTP/1.1\r\nX-Injected: 1\r\n\r\nPOST /twostep/edits/"
    with client_for(box, sleeps, _Plugin(_RawId())) as client:
        result = client.send(REQUEST, "twostep")
    # Encoded on the wire (one unknown edit: 404, read as a refusal) or refused
    # before sending (unknown); never a second request smuggled in.
    assert emulator.received in (["begin"], ["begin", "commit"])
    assert result.outcome in ("rejected", "unknown"), result.message
    assert "\r" not in str(result.details.get("calls", ""))


class _TokenInQuery(TwoStepAdapter):
    """Sends the token in the commit's query string too (some APIs take it there)."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        call = super().next_call(request, settings, answers)
        if call is None:
            return None
        return HttpCall("POST", call.url + f"?access_token={settings['token']}", call.headers)


def test_a_token_in_a_later_call_s_url_is_shown_nowhere(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    box.inject("500", "twostep", after=1)  # the commit fails: its path is in the message
    seen: ClassVar[list[str]] = []

    class Watch:
        @hookimpl
        def cancelkit_after_result(self, result: CancelResult, call: HttpCall) -> None:
            seen.append(repr(call))

    with client_for(box, sleeps, _Plugin(_TokenInQuery()), Watch()) as client:
        result = client.send(REQUEST, "twostep")
        entry = client.ledger.get(result.details["ledger"]["key"])  # type: ignore[union-attr]
    assert result.outcome == "unknown"
    assert "call 2 (commit)" in (result.message or "")
    shown = " ".join([repr(result), repr(entry), *seen])
    assert TwoStepEmulator.TOKEN not in shown
