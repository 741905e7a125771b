"""The real client against the emulator: what arrives on the wire, and what comes back.

Uses cancelkit.testing's fixtures: a sandbox on a controlled clock and a client
bound to it, whose waits move that clock instead of sleeping.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from cancelkit.plugin import EmuRequest, EmuResponse, Refusal

from cancelkit_walmart.emulator import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, WalmartEmulator
from cancelkit_walmart.scenarios import request

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Spy(WalmartEmulator):
    """The Walmart emulator, keeping every request it was asked."""

    def reset(self) -> None:
        self.seen: list[EmuRequest] = []
        super().reset()

    def handle(self, request: EmuRequest) -> EmuResponse:
        self.seen.append(request)
        return super().handle(request)

    def calls(self, last: str) -> list[EmuRequest]:
        return [r for r in self.seen if r.segments[-1] == last]


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def cancelkit_emulators(spy: Spy) -> list[Any]:
    """Only Walmart, spied on (the cancelkit.testing fixture, overridden)."""
    return [spy]


def test_the_example_cancels_and_a_cancelled_line_is_refused(
    cancelkit_client: Any, spy: Spy
) -> None:
    first = cancelkit_client.send(request(), "walmart")
    assert first.outcome == "cancelled", first
    assert first.details["rate_limit_remaining"] == 59
    held = cancelkit_client.send(request(), "walmart")  # the same again: the ledger's answer
    assert held.outcome == "cancelled" and "not sent again" in held.warnings[0]
    assert len(spy.calls("cancel")) == 1
    again = cancelkit_client.send(request(("1", 1), reason="FRAUD"), "walmart")
    assert again.outcome == "rejected"
    assert "0 open (1 Cancelled)" in again.errors[0].message


def test_the_wire_carries_walmarts_token_call_and_headers(
    cancelkit_client: Any, cancelkit_sandbox: Any, spy: Spy
) -> None:
    cancelkit_sandbox.inject("401", "walmart")  # the first cancel is refused: new token, resent
    assert cancelkit_client.send(request(), "walmart").outcome == "cancelled"
    tokens, cancels = spy.calls("token"), spy.calls("cancel")
    assert len(tokens) == 2 and len(cancels) == 1  # the faulted attempt never reached it
    encoded = base64.b64encode(f"{SANDBOX_CLIENT_ID}:{SANDBOX_CLIENT_SECRET}".encode()).decode()
    for call in tokens:
        assert call.header("Authorization") == f"Basic {encoded}"
        assert call.header("Accept") == "application/json"
        assert call.form() == {"grant_type": "client_credentials"}
    sent = cancels[0]
    assert sent.header("WM_SEC.ACCESS_TOKEN") == "sbx-walmart-token-2"  # raw, the new one
    assert sent.header("Authorization") is None  # Basic only on the token call
    assert sent.header("WM_SVC.NAME") == "Walmart Marketplace"
    assert sent.header("Content-Type") == "application/json"
    assert sent.header("Accept") == "application/json"
    ids = [c.header("WM_QOS.CORRELATION_ID") for c in tokens + cancels]
    assert all(UUID.fullmatch(i or "") for i in ids) and len(set(ids)) == 3  # one per call


def test_every_attempt_has_its_own_correlation_id(
    cancelkit_client: Any, cancelkit_sandbox: Any, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 answered by the emulator itself: the retry is a new call with a new id."""
    refused = {"once": True}
    original = Spy.handle

    def throttled_once(self: Spy, request: EmuRequest) -> EmuResponse:
        if request.segments[-1] == "cancel" and refused.pop("once", False):
            self.seen.append(request)
            raise Refusal(429, {"errors": {"error": [{"code": "REQUEST_THRESHOLD_VIOLATED"}]}})
        return original(self, request)

    monkeypatch.setattr(Spy, "handle", throttled_once)
    assert cancelkit_client.send(request(), "walmart").outcome == "cancelled"
    ids = [c.header("WM_QOS.CORRELATION_ID") for c in spy.calls("cancel")]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_the_client_keeps_to_60_cancels_a_minute(
    cancelkit_client: Any, cancelkit_clock: Any
) -> None:
    # 61 different requests (the ledger answers a repeated one without sending it).
    results = [cancelkit_client.send(request((str(n), 1), po="404"), "walmart") for n in range(61)]
    assert {r.http_status for r in results} == {404}  # never a 429 from Walmart
    assert [round(s) for s in cancelkit_clock.sleeps if s > 1] == [60]  # the 61st waited


def test_an_expired_token_is_renewed_before_it_is_refused(
    cancelkit_client: Any, cancelkit_clock: Any, spy: Spy
) -> None:
    assert cancelkit_client.send(request(("1", 1)), "walmart").outcome == "cancelled"
    cancelkit_clock.advance(900)
    assert cancelkit_client.send(request(("5", 1)), "walmart").outcome == "cancelled"
    assert len(spy.calls("token")) == 2


def test_a_mixed_request_is_refused_whole_and_leaves_the_lines(cancelkit_client: Any) -> None:
    refused = cancelkit_client.send(request(("1", 1), ("3", 1)), "walmart")
    assert refused.outcome == "rejected"
    assert [e.code for e in refused.errors] == ["INVALID_REQUEST_CONTENT.GMP_ORDER_API"]
    assert cancelkit_client.send(request(("1", 1)), "walmart").outcome == "cancelled"


def test_an_echoed_basic_credential_is_never_shown(
    cancelkit_client: Any, cancelkit_sandbox: Any, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token endpoint that refuses and quotes the Authorization header back."""
    original = Spy.handle

    def echo(self: Spy, request: EmuRequest) -> EmuResponse:
        if request.segments[-1] == "token":
            raise Refusal(401, {"error": "invalid_client",
                                "error_description": f"got {request.header('Authorization')}"})  # fmt: skip
        return original(self, request)

    monkeypatch.setattr(Spy, "handle", echo)
    with pytest.raises(Exception) as refused:
        cancelkit_client.send(request(), "walmart")
    encoded = base64.b64encode(f"{SANDBOX_CLIENT_ID}:{SANDBOX_CLIENT_SECRET}".encode()).decode()
    shown = f"{refused.value}\n{refused.value!r}"
    assert "token request refused (HTTP 401): invalid_client - got ***" in shown
    assert encoded not in shown and SANDBOX_CLIENT_SECRET not in shown
