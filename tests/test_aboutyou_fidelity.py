"""About You fidelity: the emulator judges by the published contract; resends stay honest.

* Cancel bodies are judged by ``CancelRequestSchema`` (seed 003) and refused with
  the documented ``BadRequestSchema`` 400; limits are the documented numbers.
* Batches move on by the sandbox clock, not by how often they are polled.
* Deduplication holds only while a batch is in flight. A resend after it completed
  is a new batch whose items fail as already cancelled: the adapter reports them
  cancelled (with a warning), and a results 404 for a batch it was just given is
  pending, not final.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import contract_schema, imported_modules

import cancelkit
from cancelkit import hookimpl
from cancelkit.core.client import Client
from cancelkit.core.http import HttpCall, HttpResponse
from cancelkit.core.sandbox.emulator import EmuResponse
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.schemas import load_request
from cancelkit.plugins.aboutyou import adapter as adapter_module
from cancelkit.plugins.aboutyou import emulator as emulator_module
from cancelkit.plugins.aboutyou.adapter import AboutYouAdapter
from cancelkit.plugins.aboutyou.emulator import (
    BATCH_PENDING_SECONDS,
    BATCH_SECONDS,
    CONTRACT,
    SANDBOX_API_KEY,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = contract_schema("aboutyou", "aboutyou-cancel.schema.json")
FROZEN = 1_767_225_600.0  # the sandbox clock moves only by advance


def test_the_emulator_imports_nothing_from_its_adapter() -> None:
    modules = imported_modules(ROOT / "plugins" / "aboutyou" / "emulator.py")
    assert "cancelkit.plugin" in modules
    assert [m for m in modules if m.startswith(".") or "adapter" in m or "plugins" in m] == []


def test_limits_are_the_documented_numbers_read_twice() -> None:
    # "Rate limit: 50 requests per minute" (Cancel Order Items) and /results/* 200/min:
    # the emulator and the adapter each state them, neither borrows the other's.
    assert (emulator_module.CANCEL_LIMIT_PER_MINUTE, emulator_module.RESULTS_LIMIT_PER_MINUTE) == (
        50,
        200,
    )
    assert (adapter_module.CANCEL_LIMIT_PER_MINUTE, adapter_module.RESULTS_LIMIT_PER_MINUTE) == (
        50,
        200,
    )


def test_the_contract_is_the_seeds_fragment() -> None:
    seed = ROOT.parent / "shared" / "seeds" / "003_041616c17484ddd9.txt"
    assert seed.is_file(), (
        f"the About You seed (beside the checkout, as in CI) is expected at {seed}"
    )
    text = seed.read_text(encoding="utf-8")
    fragment = json.loads(
        text[text.index('{"openapi"') : text.index("\n```", text.index('{"openapi"'))]
    )
    published = fragment["components"]["schemas"]
    as_copied = json.loads(json.dumps(published).replace("#/components/schemas/", "#/$defs/"))
    for name, definition in SHIPPED["$defs"].items():
        assert definition == as_copied[name], name


# -- the emulator, over HTTP -----------------------------------------------------------
@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox whose clock moves only by ``advance``."""
    with cancelkit.sandbox(clock=lambda: FROZEN) as box:
        yield box


class AboutYou:
    """Raw HTTP to the About You emulator, as any (wrong) plugin could send it."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.base = box.base_url("aboutyou")
        self.headers = {"X-API-Key": SANDBOX_API_KEY}

    def cancel(self, body: Any) -> requests.Response:
        return requests.post(
            f"{self.base}/orders/cancel", json=body, headers=self.headers, timeout=5
        )

    def batch(self, body: Any) -> str:
        answer = self.cancel(body)
        assert answer.status_code == 200, answer.text
        batch_id: str = answer.json()["batchRequestId"]
        return batch_id

    def results(self, batch_id: str) -> dict[str, Any]:
        answer = requests.get(
            f"{self.base}/results/cancel-orders",
            params={"batch_request_id": batch_id},
            headers=self.headers,
            timeout=5,
        )
        payload: dict[str, Any] = answer.json()
        return payload


@pytest.fixture
def aboutyou(sandbox: Sandbox) -> AboutYou:
    return AboutYou(sandbox)


WRONG_BODIES = [
    # (what a wrong plugin sends, what the 400 message names)
    ({"items": []}, "items: [] should be non-empty"),
    ({"order_items": [1001]}, "'items' is a required property"),  # the ship endpoint's key
    ({"items": [{"item_id": 1001}]}, "items[0]: 'id' is a required property"),
    ({"items": [{"id": "1001"}]}, "items[0].id: '1001' is not of type 'integer'"),
    ({"items": [{"id": 0}]}, "items[0].id: 0 is less than the minimum of 1"),
    ({"items": [{"id": 1.5}]}, "items[0].id: 1.5 is not of type 'integer'"),
    ({"items": [1001]}, "items[0]: 1001 is not of type 'object'"),
    ([{"id": 1001}], "is not of type 'object'"),
]


@pytest.mark.parametrize(("body", "named"), WRONG_BODIES, ids=[n for _, n in WRONG_BODIES])
def test_a_body_that_breaks_the_contract_gets_the_documented_400(
    aboutyou: AboutYou, body: Any, named: str
) -> None:
    answer = aboutyou.cancel(body)
    assert answer.status_code == 400
    assert CONTRACT.violations(answer.json(), definition="BadRequestSchema") == []
    assert named in answer.json()["message"]
    assert aboutyou.box.emulators["aboutyou"].batches == {}  # nothing queued


def test_extra_fields_pass_because_the_contract_does_not_forbid_them(aboutyou: AboutYou) -> None:
    answer = aboutyou.cancel({"items": [{"id": 1001, "quantity": 1}], "reason": "x"})
    assert answer.status_code == 200
    assert CONTRACT.violations(answer.json(), definition="BatchRequestResponseSchema") == []


def test_a_batch_moves_on_by_the_clock_not_by_polls(aboutyou: AboutYou) -> None:
    batch = aboutyou.batch({"items": [{"id": 1001}]})
    assert {aboutyou.results(batch)["status"] for _ in range(10)} == {"pending"}
    aboutyou.box.advance(BATCH_PENDING_SECONDS)
    assert {aboutyou.results(batch)["status"] for _ in range(10)} == {"processing"}
    assert aboutyou.box.emulators["aboutyou"].items["1001"] == "open"
    aboutyou.box.advance(BATCH_SECONDS - BATCH_PENDING_SECONDS)
    done = aboutyou.results(batch)
    assert done["status"] == "completed"
    assert done["items"] == [{"requestItem": {"id": 1001}, "success": True, "errors": []}]


def test_a_batch_never_polled_completes_and_cancels_its_items(aboutyou: AboutYou) -> None:
    aboutyou.batch({"items": [{"id": 1001}, {"id": 1003}]})
    aboutyou.box.advance(BATCH_SECONDS)
    other = aboutyou.batch({"items": [{"id": 1002}]})  # any request lets time take effect
    assert aboutyou.box.emulators["aboutyou"].items["1001"] == "cancelled"
    assert aboutyou.box.emulators["aboutyou"].items["1003"] == "shipped"
    assert aboutyou.results(other)["status"] == "pending"


def test_identical_payloads_share_a_batch_only_while_it_is_in_flight(aboutyou: AboutYou) -> None:
    body = {"items": [{"id": 2001}, {"id": 2002}]}
    first = aboutyou.batch(body)
    aboutyou.box.advance(BATCH_SECONDS - 0.1)
    assert aboutyou.batch(body) == first  # still processing: the in-flight id
    assert aboutyou.batch({"items": [{"id": 2001}]}) != first  # not identical: a new batch
    aboutyou.box.advance(0.1)
    again = aboutyou.batch(body)  # completed: a new batch
    assert again != first
    aboutyou.box.advance(BATCH_SECONDS)
    assert aboutyou.results(first)["items"][0]["success"] is True
    assert aboutyou.results(again)["items"] == [
        {
            "requestItem": {"id": i},
            "success": False,
            "errors": [f"Order item {i} is already cancelled"],
        }
        for i in (2001, 2002)
    ]


# -- the adapter reading "already cancelled" and early 404s -----------------------------
def results(*items: tuple[int, bool, list[str]], status: str = "completed") -> HttpResponse:
    body = {
        "batchRequestId": "b-1",
        "status": status,
        "items": [{"requestItem": {"id": i}, "success": ok, "errors": e} for i, ok, e in items],
    }
    return HttpResponse(200, {}, json.dumps(body))


@pytest.mark.parametrize(
    "error",
    [
        "Order item 7 is already cancelled",
        "Order item 7 is already canceled",
        "ITEM ALREADY CANCELLED",
        "Order item 7 has already been cancelled",
    ],
)
def test_an_item_already_cancelled_counts_as_cancelled_with_a_warning(error: str) -> None:
    result = AboutYouAdapter().normalise_status("b-1", results((7, False, [error]), (8, True, [])))
    assert result.outcome == "cancelled"
    assert [(line.line_id, line.status, line.errors) for line in result.lines] == [
        ("7", "cancelled", ()),
        ("8", "cancelled", ()),
    ]
    assert result.errors == ()
    assert result.warnings == (f"item 7: {error}; counted as cancelled",)


@pytest.mark.parametrize(
    "errors",
    [
        ["Order item 7 is already shipped"],
        ["Order item 7 not found"],
        ["Order item 7 is already cancelled", "Order item 7 is locked"],
        ["cancellation not allowed: item was not cancelled"],
        [],
    ],
)
def test_other_item_errors_stay_rejected(errors: list[str]) -> None:
    result = AboutYouAdapter().normalise_status("b-1", results((7, False, errors)))
    assert result.outcome == "rejected" and result.lines[0].status == "rejected"
    assert result.warnings == ()


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def not_found(batch_id: str = "b-1") -> HttpResponse:
    return HttpResponse(404, {}, json.dumps({"message": f"Batch request {batch_id} not found"}))


def test_a_results_404_for_a_batch_just_given_is_pending_until_the_bound(example: Any) -> None:
    clock = Clock()
    adapter = AboutYouAdapter(clock=clock)
    request = load_request(example("aboutyou"))
    adapter.normalise(request, HttpResponse(200, {}, json.dumps({"batchRequestId": "b-1"})))
    clock.now += 5
    early = adapter.normalise_status("b-1", not_found())
    assert (early.outcome, early.http_status) == ("accepted", 404)
    assert "no results yet" in (early.message or "")
    clock.now += adapter_module.RESULTS_NOT_FOUND_GRACE_SECONDS
    late = adapter.normalise_status("b-1", not_found())
    assert late.outcome == "unknown"  # it was queued: "rejected" would claim nothing happened
    # An id this adapter was never given stays a plain refusal.
    assert adapter.normalise_status("b-9", not_found("b-9")).outcome == "rejected"


def test_only_so_many_batch_ids_are_remembered(
    example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter_module, "BATCHES_REMEMBERED", 3)
    adapter = AboutYouAdapter(clock=Clock())
    request = load_request(example("aboutyou"))
    for n in range(5):
        answer = HttpResponse(200, {}, json.dumps({"batchRequestId": f"b-{n}"}))
        adapter.normalise(request, answer)
    assert [adapter.normalise_status(f"b-{n}", not_found()).outcome for n in range(5)] == [
        "rejected",
        "rejected",
        "accepted",
        "accepted",
        "accepted",
    ]


# -- end to end: the one automatic resend ------------------------------------------------
class LateResend:
    """Lets ``seconds`` pass on the sandbox clock before the second cancel POST."""

    def __init__(self, advance: Any, seconds: float) -> None:
        self.advance, self.seconds, self.posts = advance, seconds, 0

    @hookimpl
    def cancelkit_before_send(self, call: HttpCall, adapter: Any) -> Mapping[str, str] | None:
        if call.method == "POST":
            self.posts += 1
            if self.posts == 2:
                self.advance(self.seconds)
        return None


def client_for(box: Sandbox, sleeps: Any, *plugins: object) -> Client:
    registry = cancelkit.PluginRegistry()
    for index, plugin in enumerate(plugins):
        registry.register(plugin, f"test-plugin-{index}")
    sleeps.follow(box.advance)
    return Client(
        registry=registry, config=box.client_config(), env={}, sleep=sleeps, clock=sleeps.clock
    )


def test_a_resend_after_the_first_batch_completed_never_turns_cancelled_into_rejected(
    sandbox: Sandbox, sleeps: Any
) -> None:
    late = LateResend(sandbox.advance, 30.0)
    client = client_for(sandbox, sleeps, late)
    sandbox.inject("html", "aboutyou")  # the first answer is lost after the batch was queued
    accepted = client.send({"lines": [{"line_id": "2001", "quantity": 1}]}, "aboutyou")
    assert (accepted.outcome, late.posts) == ("accepted", 2)
    emulator = sandbox.emulators["aboutyou"]
    assert len(emulator.batches) == 2  # the resend was not deduplicated: a new batch
    assert emulator.items["2001"] == "cancelled"  # by the first batch
    final = client.wait(accepted)
    assert final.outcome == "cancelled"
    assert [(line.line_id, line.status) for line in final.lines] == [("2001", "cancelled")]
    assert final.warnings == (
        "item 2001: Order item 2001 is already cancelled; counted as cancelled",
    )
    client.close()


def test_a_resend_while_in_flight_gets_the_same_batch(sandbox: Sandbox, sleeps: Any) -> None:
    client = client_for(sandbox, sleeps)
    sandbox.inject("html", "aboutyou")
    accepted = client.send({"lines": [{"line_id": "2001", "quantity": 1}]}, "aboutyou")
    assert accepted.outcome == "accepted"
    assert len(sandbox.emulators["aboutyou"].batches) == 1
    final = client.wait(accepted)
    assert (final.outcome, final.warnings) == ("cancelled", ())
    client.close()


def test_results_not_visible_at_first_do_not_end_the_wait(
    sandbox: Sandbox, sleeps: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A platform whose results appear a few seconds after the batch: early 404s.
    emulator = sandbox.emulators["aboutyou"]
    shown = emulator._results

    def late_results(batch_id: str) -> EmuResponse:
        batch = emulator.batches.get(batch_id)
        if batch is not None and sandbox.now() - batch["created"] < 3.0:
            return EmuResponse.json(404, {"message": f"Batch request {batch_id} not found"})
        return shown(batch_id)

    monkeypatch.setattr(emulator, "_results", late_results)
    client = client_for(sandbox, sleeps)
    client.registry.platform("aboutyou").clock = sleeps.clock  # type: ignore[attr-defined]
    accepted = client.send({"lines": [{"line_id": "1001", "quantity": 1}]}, "aboutyou")
    first = client.status("aboutyou", accepted.tracking_id or "")
    assert (first.outcome, first.http_status) == ("accepted", 404)
    final = client.wait(accepted)
    assert final.outcome == "cancelled"
    client.close()
