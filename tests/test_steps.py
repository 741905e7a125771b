"""Cancellations that take several dependent calls, and throttles inside 200 bodies.

The two-step test platform (twostep_plugin.py) opens an edit, then commits it with
the id from the first answer. The judge is the emulator's own record of the calls
it ran: whatever fails between the steps, nothing is sent twice, and the outcome
after a first call that went out is never "nothing was sent, retry".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import twostep_plugin
from click.testing import CliRunner
from conftest import SleepRecorder
from stepshelp import REQUEST, client_for, registry_with
from twostep_plugin import TwoStepAdapter, TwoStepEmulator

from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.sequence import MAX_CALLS
from cancelkit.plugin import (
    CancelRequest,
    EmuResponse,
    HttpCall,
    HttpResponse,
    Settings,
    hookimpl,
    join_url,
)

#: The two-step sandbox fixtures (``box``, ``emulator``, ``client``), shared.
pytest_plugins = ["stepshelp"]


def test_both_calls_go_out_once_and_the_second_carries_the_first_answers_id(
    client: Client, emulator: TwoStepEmulator
) -> None:
    result = client.send(REQUEST, "twostep")
    assert result.outcome == "cancelled", result.message
    assert emulator.received == ["begin", "commit"]
    assert emulator.orders["ORDER-1"]["L1"] == 1
    assert [step["call"] for step in result.details["calls"]] == [
        "POST /twostep/edits",
        "POST /twostep/edits/edit-1/commit",
    ]


def test_translate_shows_the_first_call_and_says_more_follow(box: Sandbox) -> None:
    from cancelkit.cli import main

    client = Client(registry=registry_with(twostep_plugin), config=box.client_config())
    call = client.translate(REQUEST, "twostep")
    assert call.method == "POST" and call.url.endswith("/twostep/edits")
    # The CLI finds the plugin by entry point; here the registry is patched in.
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "cancelkit.cli._State.registry", property(lambda self: registry_with(twostep_plugin))
        )
        patch.setenv("CANCELKIT_TWOSTEP_BASE_URL", "https://twostep.invalid")
        out = runner.invoke(
            main,
            ["translate", "-p", "twostep", "-"],
            input='{"order_id": "ORDER-1", "lines": [{"line_id": "L1", "quantity": 1}]}',
        )
    assert out.exit_code == 0, out.output
    assert '"url": "https://twostep.invalid/edits"' in out.stdout
    assert "cancels in 2 calls (begin, commit)" in out.stderr


def test_an_error_in_the_first_answer_ends_the_sequence_and_is_read(
    client: Client, emulator: TwoStepEmulator
) -> None:
    too_many = {"order_id": "ORDER-1", "lines": [{"line_id": "L2", "quantity": 5}]}
    result = client.send(too_many, "twostep")
    assert result.outcome == "rejected"
    assert "less than 5 left" in result.errors[0].message
    assert emulator.received == ["begin"]  # no commit of an edit that never opened


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "reset"}, id="commit applied, connection reset"),
        pytest.param({"kind": "500"}, id="commit answered 500"),
        pytest.param({"kind": "slow"}, id="commit applied, answer too late"),
        pytest.param({"kind": "html"}, id="commit applied, HTML answer"),
        pytest.param({"kind": "redirect"}, id="commit redirected"),
        pytest.param({"kind": "429", "count": 5}, id="commit rate limited past the retries"),
    ],
)
def test_a_failure_between_the_steps_is_unknown_and_never_resent(
    client: Client, box: Sandbox, emulator: TwoStepEmulator, fault: dict[str, Any]
) -> None:
    box.inject(platform="twostep", after=1, **fault)
    first = client.send(REQUEST, "twostep")
    assert first.outcome == "unknown", first.message
    assert "call 2 (commit)" in first.message
    assert "half done" in first.message
    begins = emulator.received.count("begin")
    assert begins == 1
    # The same request again: the ledger holds it; not one more call leaves.
    again = client.send(REQUEST, "twostep")
    assert again.outcome == "unknown"
    assert again.details["ledger"]["held"] is True
    assert emulator.received.count("begin") == 1


def test_a_429_on_the_second_call_is_retried_like_any_429(
    client: Client, box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    box.inject("429", "twostep", after=1, retry_after=3)
    result = client.send(REQUEST, "twostep")
    assert result.outcome == "cancelled", result.message
    assert emulator.received == ["begin", "commit"]  # the refused commit was not run
    assert 3 in sleeps.calls


class _Unencoded(TwoStepAdapter):
    """Puts the edit id from the answer into the path raw (a plugin bug)."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        if len(answers) > 1:
            return None
        edit = answers[0].json()["edit"]["id"]
        base = settings["base_url"]
        return HttpCall("POST", f"{base}/edits/{edit}/commit", {"Authorization": "***"})


class _Plugin:
    def __init__(self, adapter: TwoStepAdapter) -> None:
        self.adapter = adapter

    @hookimpl
    def cancelkit_platforms(self) -> list[TwoStepAdapter]:
        return [self.adapter]

    @hookimpl
    def cancelkit_sandbox_emulators(self) -> list[TwoStepEmulator]:
        return [TwoStepEmulator()]


def test_an_id_from_an_answer_stays_one_segment(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    emulator.edit_prefix = "../../orders/"
    with client_for(box, sleeps) as client:
        result = client.send(REQUEST, "twostep")
    # join_url encodes the hostile id as one segment; the emulator finds the edit.
    assert result.outcome == "cancelled", result.message
    assert result.details["calls"][1]["call"] == "POST /twostep/edits/..%2F..%2Forders%2F1/commit"


def test_a_raw_dot_segment_from_an_answer_is_stopped_and_unknown(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    emulator.edit_prefix = "../"
    client = client_for(box, sleeps, _Plugin(_Unencoded()))
    result = client.send(REQUEST, "twostep")
    assert result.outcome == "unknown", result.message
    assert emulator.received == ["begin"]  # the commit never left the machine
    assert "call 2 (commit)" in result.message


class _Raising(TwoStepAdapter):
    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        raise KeyError("edit")


class _Endless(TwoStepAdapter):
    """Never says done, each call a new one (a query that changes)."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        return HttpCall(
            "POST",
            join_url(settings["base_url"], "edits", query={"try": str(len(answers))}),
            {"Authorization": "***"},
            {"order_id": "ORDER-1", "lines": []},
        )


@pytest.mark.parametrize(
    ("adapter", "said", "calls"),
    [
        (_Raising(), "could not be read to build call 2 (KeyError", 1),
        (_Endless(), f"more than {MAX_CALLS} calls", MAX_CALLS),
    ],
)
def test_a_plugin_bug_after_the_first_call_is_unknown(
    box: Sandbox,
    emulator: TwoStepEmulator,
    sleeps: SleepRecorder,
    adapter: TwoStepAdapter,
    said: str,
    calls: int,
) -> None:
    client = client_for(box, sleeps, _Plugin(adapter))
    result = client.send(REQUEST, "twostep")
    assert result.outcome == "unknown"
    assert said in result.message
    assert len(emulator.received) == calls


def test_an_interrupt_during_the_second_call_keeps_the_key_claimed(
    box: Sandbox, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    class Interrupt:
        @hookimpl
        def cancelkit_before_send(self, call: HttpCall, adapter: object) -> None:
            if call.url.endswith("/commit"):
                raise KeyboardInterrupt

    with (
        client_for(box, sleeps, twostep_plugin, Interrupt()) as client,
        pytest.raises(KeyboardInterrupt),
    ):
        client.send(REQUEST, "twostep")
    assert emulator.received == ["begin"]
    with client_for(box, sleeps) as client:
        again = client.send(REQUEST, "twostep")
    assert again.outcome == "unknown"  # held: the first call went out, nothing resent
    assert again.details["ledger"]["held"] is True
    assert emulator.received == ["begin"]


# -- a throttle inside a 200 body --------------------------------------------------


def test_a_throttled_200_is_waited_out_and_retried(
    client: Client, emulator: TwoStepEmulator, sleeps: SleepRecorder
) -> None:
    emulator.throttled = 1
    result = client.send(REQUEST, "twostep")
    assert result.outcome == "cancelled", result.message
    # (cost 10 - available 0) / restore rate 5 per second
    assert sleeps.calls == [2.0]
    assert emulator.received == ["begin", "commit"]


def test_a_throttle_that_stays_on_the_first_call_is_rate_limited_and_may_be_sent_later(
    client: Client, emulator: TwoStepEmulator
) -> None:
    emulator.throttled = 10
    result = client.send(REQUEST, "twostep")
    assert result.outcome == "rejected"
    assert result.errors[0].code == "RATE_LIMITED" and result.errors[0].retryable
    assert result.retry_after == 2.0
    assert emulator.received == []  # normalise never saw the throttled answer
    emulator.throttled = 0
    assert client.send(REQUEST, "twostep").outcome == "cancelled"  # nothing was applied
    assert emulator.received == ["begin", "commit"]


def test_a_throttle_on_the_second_call_past_the_retries_is_unknown(
    client: Client, emulator: TwoStepEmulator, box: Sandbox
) -> None:
    original = emulator._commit

    def throttled_commit(edit_id: str) -> Any:
        emulator.throttled = 9  # this and the following tries answer THROTTLED
        return EmuResponse.json(200, twostep_plugin._throttled())

    emulator._commit = throttled_commit  # type: ignore[method-assign]
    result = client.send(REQUEST, "twostep")
    emulator._commit = original  # type: ignore[method-assign]
    assert result.outcome == "unknown", result.message
    assert "call 2 (commit)" in result.message and "rate limited" in result.message
    assert emulator.received == ["begin"]
