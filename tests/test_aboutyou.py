"""About You: line-to-item mapping, contract, answers, safe resends, rate limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import contract_schema

import cancelkit
from cancelkit import hookimpl
from cancelkit.core.client import Client
from cancelkit.core.http import HttpResponse
from cancelkit.core.ratelimit import SlidingWindowLimiter
from cancelkit.core.schemas import load_request
from cancelkit.errors import InvalidRequestError
from cancelkit.plugins.aboutyou.adapter import AboutYouAdapter

CONTRACT = contract_schema("aboutyou", "aboutyou-cancel.schema.json")
ADAPTER = AboutYouAdapter()


def wire(call: cancelkit.HttpCall) -> dict[str, Any]:
    body = json.loads(call.body_bytes())
    jsonschema.validate(body, CONTRACT)
    return body


def test_call(example: Any) -> None:
    call = cancelkit.translate(example("aboutyou"), "aboutyou")
    assert (call.method, call.url) == ("POST", "https://partner.aboutyou.com/api/v1/orders/cancel")
    assert call.headers["X-API-Key"] == "***"
    assert wire(call) == {"items": [{"id": 1001}, {"id": 1002}]}


def test_a_line_may_carry_its_unit_item_ids(example: Any) -> None:
    assert wire(cancelkit.translate(example("aboutyou-item-ids"), "aboutyou")) == {
        "items": [{"id": 2001}, {"id": 2002}, {"id": 2003}]
    }


@pytest.mark.parametrize(
    ("lines", "options", "message"),
    [
        ([{"line_id": "abc", "quantity": 1}], {}, "lines[0].line_id: 'abc' is not an About You"),
        ([{"line_id": "0", "quantity": 1}], {}, "lines[0].line_id: '0' is not an About You"),
        ([{"line_id": "-5", "quantity": 1}], {}, "lines[0].line_id: '-5' is not an About You"),
        ([{"line_id": "1001", "quantity": 2}], {}, "lines[0].quantity: 2 does not match the 1"),
        (
            [{"line_id": "L", "quantity": 2}],
            {"item_ids": {"L": [1, 2, 3]}},
            "lines[0].quantity: 2 does not match the 3",
        ),
        (
            [{"line_id": "L", "quantity": 1}],
            {"item_ids": {"L": [0]}},
            "options.item_ids.L.value[0]: must be greater than or equal to 1",
        ),
        (
            [{"line_id": "L", "quantity": 1}],
            {"item_ids": {"L": ["7"]}},
            "options.item_ids.L.value[0]: not a valid integer",
        ),
        (
            [{"line_id": "1001", "quantity": 1}, {"line_id": "L", "quantity": 1}],
            {"item_ids": {"L": [1001]}},
            "lines[1]: item 1001 is also in lines[0]",
        ),
        (
            [{"line_id": "1001", "quantity": 1}],
            {"item_ids": {"X": [5]}},
            "options.item_ids.X: no line has this line_id",
        ),
    ],
)
def test_what_cannot_be_expressed_is_refused(lines, options, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        cancelkit.translate({"lines": lines, "options": options}, "aboutyou")
    assert any(str(e).startswith(message) for e in caught.value.errors), caught.value.errors


def test_reason_is_ignored_with_a_warning(sandbox_client, example: Any) -> None:
    result = sandbox_client.send({**example("aboutyou"), "reason": "CUSTOMER_REQUEST"}, "aboutyou")
    assert result.outcome == "accepted"
    assert result.warnings == ("aboutyou takes no cancellation reason; CUSTOMER_REQUEST ignored",)


# -- answers -----------------------------------------------------------------------
@pytest.fixture
def req(example: Any):
    return load_request(example("aboutyou"))


def answer(status: int, payload: Any, **headers: str) -> HttpResponse:
    return HttpResponse(status, headers, json.dumps(payload))


def test_batch_id_is_the_tracking_id(req: Any) -> None:
    response = answer(
        200, {"batchRequestId": "b-1"}, **{"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49"}
    )
    result = ADAPTER.normalise(req, response)
    assert (result.outcome, result.tracking_id) == ("accepted", "b-1")
    assert ADAPTER.response_details(response) == {
        "rate_limit_limit": 50,
        "rate_limit_remaining": 49,
    }


def test_400_is_rejected_with_the_message(req: Any) -> None:
    result = ADAPTER.normalise(req, answer(400, {"message": "items: invalid"}))
    assert (result.outcome, result.errors[0].message) == ("rejected", "items: invalid")


def test_429_carries_the_rate_headers(sandbox: Any, sandbox_client: Any) -> None:
    # Core reads the 429 (normalise never sees it); the adapter's extras still ride along.
    sandbox.inject("429", "aboutyou", count=3, retry_after=2)
    result = sandbox_client.send({"lines": [{"line_id": "1001", "quantity": 1}]}, "aboutyou")
    assert (result.outcome, result.errors[0].code, result.retry_after) == (
        "rejected",
        "RATE_LIMITED",
        2.0,
    )
    assert result.details == {
        "request_id": result.details["request_id"],  # core adds the platform's request id
        "ledger": {"key": result.details["ledger"]["key"]},  # and the send's ledger key
        "rate_limit_limit": 50,
        "rate_limit_remaining": 0,
    }


def results(status: str, *items: tuple[int, bool, list[str]]) -> HttpResponse:
    return answer(
        200,
        {
            "batchRequestId": "b-1",
            "status": status,
            "items": [
                {"requestItem": {"id": i}, "success": ok, "errors": errors}
                for i, ok, errors in items
            ],
        },
    )


@pytest.mark.parametrize("status", ["pending", "processing", "retry"])
def test_unfinished_batches_are_accepted(status: str) -> None:
    assert ADAPTER.normalise_status("b-1", results(status)).outcome == "accepted"


@pytest.mark.parametrize(
    ("items", "outcome"),
    [
        ([(1, True, [])], "cancelled"),
        ([(1, True, []), (2, False, ["shipped"])], "partial"),
        ([(2, False, ["shipped"])], "rejected"),
    ],
)
def test_completed_batches_per_item(items, outcome: str) -> None:
    result = ADAPTER.normalise_status("b-1", results("completed", *items))
    assert result.outcome == outcome
    assert [(line.line_id, line.status) for line in result.lines] == [
        (str(i), "cancelled" if ok else "rejected") for i, ok, _ in items
    ]
    assert [e.message for e in result.errors] == [m for _, _, errs in items for m in errs]


def test_failed_batch_is_rejected() -> None:
    assert ADAPTER.normalise_status("b-1", results("failed")).outcome == "rejected"


def test_unknown_batch_is_rejected() -> None:
    result = ADAPTER.normalise_status("b-9", answer(404, {"message": "not found"}))
    assert (result.outcome, result.errors[0].message) == ("rejected", "not found")


# -- resend after an unknown outcome is safe here, and bounded -------------------------
class Requests:
    """Counts the cancel POSTs the client makes (a cancelkit_before_send observer)."""

    def __init__(self) -> None:
        self.posts = 0

    @hookimpl
    def cancelkit_before_send(self, call, adapter):
        if call.method == "POST":
            self.posts += 1


@pytest.mark.parametrize("fault", ["500", "html"])
def test_unknown_outcome_is_resent_once_and_deduplicated(sandbox, example, fault) -> None:
    counter = Requests()
    registry = cancelkit.PluginRegistry()
    registry.register(counter, "counter")
    client = Client(registry=registry, config=sandbox.client_config(), env={}, sleep=lambda s: None)
    sandbox.inject(fault, "aboutyou")
    result = client.send(example("aboutyou"), "aboutyou")
    assert result.outcome == "accepted"
    assert counter.posts == 2
    assert len(sandbox.emulators["aboutyou"].batches) == 1


def test_resend_is_bounded(sandbox, example) -> None:
    client = Client(config=sandbox.client_config(), env={}, sleep=lambda s: None)
    sandbox.inject("500", "aboutyou", count=5)
    assert client.send(example("aboutyou"), "aboutyou").outcome == "unknown"


def test_wait_polls_to_completion_with_backoff(sandbox_client, sleeps, example) -> None:
    # The sandbox's waits move its clock: processing at 1 s, completed by 2.5 s.
    final = sandbox_client.wait(sandbox_client.send(example("aboutyou"), "aboutyou"))
    assert final.outcome == "cancelled"
    assert sleeps.calls == pytest.approx([1.0, 1.5])


# -- client-side rate limits, on a controlled clock -----------------------------------
class FakeClock:
    """A clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_any_window(times: list[float], window: float = 60.0) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_sliding_window_limiter_on_a_controlled_clock() -> None:
    clock, limiter = FakeClock(), SlidingWindowLimiter(50, 60.0)
    times = []
    for _ in range(120):
        limiter.acquire(clock, clock.sleep)
        times.append(clock.now)
    assert max_in_any_window(times) == 50
    assert times[49] == 1000.0 and times[50] == 1060.0 and times[100] == 1120.0


def test_never_more_than_50_cancels_a_minute_however_many_are_sent() -> None:
    clock = FakeClock()
    # The emulator's own 50/minute limit runs on the same clock (the sandbox's).
    with cancelkit.sandbox(clock=clock) as sandbox:
        _send_120_cancels(sandbox, clock)


def _send_120_cancels(sandbox: Any, clock: FakeClock) -> None:
    sent_at: list[float] = []

    class Stamp:
        @hookimpl
        def cancelkit_after_result(self, result, call, adapter):
            sent_at.append(clock.now)

    registry = cancelkit.PluginRegistry()
    registry.register(Stamp(), "stamp")
    # Two clients in one process share the API key's budget.
    clients = [
        Client(
            registry=registry,
            config=sandbox.client_config(),
            env={},
            clock=clock,
            sleep=clock.sleep,
        )
        for _ in range(2)
    ]
    outcomes = [
        clients[i % 2]
        .send({"lines": [{"line_id": str(5000 + i), "quantity": 1}]}, "aboutyou")
        .outcome
        for i in range(120)
    ]
    assert outcomes == ["accepted"] * 120  # the platform never had to say 429
    assert max_in_any_window(sent_at) == 50
    assert sent_at[-1] - sent_at[0] == 120.0


def test_results_polling_stays_within_200_a_minute(example) -> None:
    clock = FakeClock()
    with cancelkit.sandbox(clock=clock) as sandbox:
        _poll_450_times(sandbox, clock, example)


def _poll_450_times(sandbox: Any, clock: FakeClock, example: Any) -> None:
    client = Client(config=sandbox.client_config(), env={}, clock=clock, sleep=clock.sleep)
    batch = client.send(example("aboutyou"), "aboutyou").tracking_id
    start = clock.now
    outcomes = {client.status("aboutyou", batch).outcome for _ in range(450)}
    assert "unknown" not in outcomes  # never a 429 from the platform
    assert clock.now - start == 120.0  # 450 polls = 200 + 200 + 50 across three minutes


def test_every_recorded_aboutyou_body_validates() -> None:
    import yaml

    checked = 0
    for path in sorted((Path(__file__).parent.parent / "cassettes" / "aboutyou").glob("*.yaml")):
        if path.stem.startswith("contract_"):  # deliberately breaks the contract
            continue
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            if interaction["request"]["uri"].endswith("/orders/cancel"):
                jsonschema.validate(json.loads(interaction["request"]["body"]), CONTRACT)
                checked += 1
    assert checked >= 5


def test_cancel_limit_setting_sets_the_client_side_limit(sandbox: Any) -> None:
    """An account with another limit says so: 2 per 10 s, and the third cancel waits."""
    from cancelkit.core import ratelimit

    ratelimit.reset_all()
    config = sandbox.client_config()
    config["aboutyou"]["cancel_limit"] = "2/10"
    waits: list[float] = []
    now = [1000.0]

    def sleep(seconds: float) -> None:  # time passes only when the client waits
        waits.append(seconds)
        now[0] += seconds

    with Client(config=config, sleep=sleep, clock=lambda: now[0], ledger=False) as client:
        for item in range(3):
            client.send({"lines": [{"line_id": str(7100 + item), "quantity": 1}]}, "aboutyou")
    assert waits == [10.0], waits  # the third waits for the first slot to free


@pytest.mark.parametrize("value", ["fifty", "0/60", "50/0", "50/-1", "50 per minute"])
def test_a_malformed_cancel_limit_names_the_setting_and_sends_nothing(
    sandbox: Any, value: str
) -> None:
    from cancelkit.errors import ConfigurationError

    config = sandbox.client_config()
    config["aboutyou"]["cancel_limit"] = value
    with Client(config=config, ledger=False) as client, pytest.raises(ConfigurationError) as bad:
        client.send({"lines": [{"line_id": "7200", "quantity": 1}]}, "aboutyou")
    assert "cancel_limit" in str(bad.value) and "LIMIT/SECONDS" in str(bad.value)
    assert sandbox.emulators["aboutyou"].batches == {}


@pytest.mark.parametrize("items", [1, "x", {"a": 1}, True])
def test_results_whose_items_are_not_a_list_are_still_read(items: Any) -> None:
    """Found by the conformance suite's hypothesis check: ``"items": 1`` raised."""
    body = {"batchRequestId": "b-1", "status": "processing", "items": items}
    result = AboutYouAdapter().normalise_status("b-1", HttpResponse(200, {}, json.dumps(body)))
    assert result.outcome == "accepted" and result.lines == ()
