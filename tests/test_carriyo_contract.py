"""Carriyo: the emulator judges by the published contract, not by the plugin.

Bodies a wrong plugin would send go straight to the sandbox over HTTP and must get
Carriyo's documented 400 body (``{"status", "timestamp", "errors": ["field : msg"]}``,
carriyo.com/docs/api/conventions/) with nothing cancelled. ``scope: all_pending`` is
refused before anything is sent (two of three sources require ``line_items``); the
read-then-cancel path it would need is proven end to end against the sandbox.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from helpers import contract_schema

import cancelkit
from cancelkit.cli import main
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.schemas import load_request
from cancelkit.core.sending import RetryPolicy
from cancelkit.errors import InvalidRequestError
from cancelkit.plugin import Contract
from cancelkit.plugins.carriyo.adapter import LINE_ITEM_ID_KEY, PLATFORM_REASONS, CarriyoAdapter
from cancelkit.plugins.carriyo.emulator import (
    SANDBOX_API_KEY,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_TENANT,
    CarriyoEmulator,
    item_key,
)

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "carriyo"
SCHEMA = contract_schema("carriyo", "carriyo-cancel-line-items.schema.json")
ADAPTER = CarriyoAdapter()
CANCEL = "orders/ORD-1001/fulfillment-orders/FO-1001-1/cancel"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
GOOD = {
    "cancellation_reason": "CUSTOMER_CANCELLATION",
    "line_items": [{"line_item_id": "line-kbd", "quantity": 1}],
}


def _changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """GOOD with the value at ``path`` replaced (``...`` as value: removed)."""
    body = copy.deepcopy(GOOD)
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


class Raw:
    """Sends raw bodies to the Carriyo emulator, authenticated as the sandbox client."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.base = box.base_url("carriyo")
        token = requests.post(
            f"{self.base}/oauth/token",
            json={"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET},
            timeout=5,
        ).json()["access_token"]
        self.headers = {
            "Authorization": f"Bearer {token}",
            "tenant-id": SANDBOX_TENANT,
            "x-api-key": SANDBOX_API_KEY,
        }

    def post(self, path: str, body: Any = None, data: bytes | None = None) -> requests.Response:
        return requests.post(
            f"{self.base}/{path}",
            headers={**self.headers, "Content-Type": "application/json"},
            data=data if data is not None else json.dumps(body),
            timeout=5,
        )

    def get(self, url: str) -> requests.Response:
        return requests.get(url, headers=self.headers, timeout=5)


@pytest.fixture
def raw(sandbox: Sandbox) -> Raw:
    return Raw(sandbox)


def orders(box: Sandbox) -> dict[str, Any]:
    return box.emulators["carriyo"].orders  # type: ignore[attr-defined,no-any-return]


def assert_documented_400(answer: requests.Response) -> list[str]:
    """The conventions page's error body, exactly those three keys; returns the errors."""
    assert answer.status_code == 400, answer.text
    payload = answer.json()
    assert set(payload) == {"status", "timestamp", "errors"}
    assert payload["status"] == "400" and TIMESTAMP.match(payload["timestamp"])
    assert payload["errors"] and all(" : " in e for e in payload["errors"])
    return list(payload["errors"])


# -- the judge is the contract ------------------------------------------------------
def test_the_emulator_imports_nothing_from_the_adapter() -> None:
    tree = ast.parse((PLUGIN / "emulator.py").read_text())
    modules = {
        ("." * node.level) + (node.module or "")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not {m for m in modules if m.endswith("adapter")}, modules
    assert "cancelkit.plugin" in modules


def test_the_emulator_reads_the_item_key_and_reasons_from_the_contract() -> None:
    emulator = CarriyoEmulator()
    assert emulator.item_key == "line_item_id" == LINE_ITEM_ID_KEY  # adapter and judge agree
    enum = SCHEMA["$defs"]["CancellationReason"]["enum"]
    assert tuple(enum) == PLATFORM_REASONS
    assert emulator.contract.schema == SCHEMA  # the shipped file, nothing else


def test_the_contract_requires_both_fields_and_cites_its_sources() -> None:
    request = SCHEMA["$defs"]["CancelFulfillmentOrderLineItemsRequest"]
    assert request["required"] == ["cancellation_reason", "line_items"]
    comments = json.dumps(SCHEMA)
    for source in (
        "Request Requirements (All Required)",
        "carriyo.com/docs/mcp/tools/fulfillment-orders/cancel-fulfillment-order-items/",
        "Omit to cancel all pending items",
        "recipes/fulfillment/fulfill-fulfillment-order/",
        "carriyo.com/docs/api/conventions/",
    ):
        assert source in comments


def _contract_with_key(key: str) -> Contract:
    schema = copy.deepcopy(SCHEMA)
    item = schema["$defs"]["FulfillmentOrderLineItemRequest"]
    item["properties"] = {key: item["properties"]["line_item_id"], "quantity": {"type": "integer"}}
    item["required"] = [key, "quantity"]
    return Contract(schema, name="carriyo-with-id")


def test_a_plugin_sending_the_wrong_item_key_fails_against_the_contract(example: Any) -> None:
    # Were the contract to say ``id`` (the fulfill recipe's key), our adapter's
    # ``line_item_id`` must fail in the sandbox: the judge is the contract alone.
    with Sandbox([CarriyoEmulator(_contract_with_key("id"))]) as box:
        assert item_key(box.emulators["carriyo"].contract) == "id"  # type: ignore[attr-defined]
        result = Client(config=box.client_config(), env={}).send(example("carriyo"), "carriyo")
        assert (result.outcome, result.http_status) == ("rejected", 400)
        assert [(e.field, e.message) for e in result.errors] == [
            ("line_items[0].id", "must not be null"),
            (
                "line_items[0]",
                "Additional properties are not allowed ('line_item_id' was unexpected)",
            ),
        ]
        assert orders(box)["ORD-1001"]["line_items"][0]["removed_quantities"] == []


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param(
            {**GOOD, "line_items": [{"id": "line-kbd", "quantity": 1}]},
            [
                "line_items[0].line_item_id : must not be null",
                "line_items[0] : Additional properties are not allowed ('id' was unexpected)",
            ],
            id="wrong-item-key",
        ),
        pytest.param(
            _changed(("line_items",), ...),
            ["line_items : must not be null"],
            id="line-items-omitted",
        ),
        pytest.param(
            _changed(("cancellation_reason",), "ORDER_CANCELLED"),
            ["cancellation_reason : 'ORDER_CANCELLED' is not one of ["],
            id="undocumented-reason",
        ),
        pytest.param(
            _changed(("cancellation_reason",), "customer_cancellation"),
            ["cancellation_reason : 'customer_cancellation' is not one of ["],
            id="reason-in-lower-case",
        ),
        pytest.param(
            _changed(("cancellation_reason",), ...),
            ["cancellation_reason : must not be null"],
            id="reason-omitted",
        ),
        pytest.param(
            _changed(("line_items",), []),
            ["line_items : [] should be non-empty"],
            id="line-items-empty",
        ),
        pytest.param(
            _changed(("line_items", 0, "quantity"), 0),
            ["line_items[0].quantity : 0 is less than the minimum of 1"],
            id="quantity-zero",
        ),
        pytest.param(
            _changed(("line_items", 0, "quantity"), "1"),
            ["line_items[0].quantity : '1' is not of type 'integer'"],
            id="quantity-as-text",
        ),
        pytest.param(
            _changed(("line_items", 0, "quantity"), 1.5),
            ["line_items[0].quantity : 1.5 is not of type 'integer'"],
            id="fractional-quantity",
        ),
        pytest.param(
            _changed(("line_items", 0, "line_item_id"), ""),
            ["line_items[0].line_item_id : '' should be non-empty"],
            id="blank-item-id",
        ),
        pytest.param(
            {**GOOD, "idempotency_key": "k-1"},
            ["(body) : Additional properties are not allowed ('idempotency_key' was unexpected)"],
            id="unknown-field",
        ),
        pytest.param(
            [GOOD],
            ["(body) : [{"],
            id="not-an-object",
        ),
    ],
)
def test_bodies_a_wrong_plugin_would_send_get_the_documented_400(
    sandbox: Sandbox, raw: Raw, body: Any, errors: list[str]
) -> None:
    before = copy.deepcopy(orders(sandbox))
    got = assert_documented_400(raw.post(CANCEL, body))
    assert len(got) == len(errors)
    for actual, expected in zip(got, errors, strict=True):
        assert actual.startswith(expected), (actual, expected)
    assert orders(sandbox) == before  # nothing cancelled


def test_malformed_json_gets_the_documented_400(sandbox: Sandbox, raw: Raw) -> None:
    assert assert_documented_400(raw.post(CANCEL, data=b'{"cancellation_reason":')) == [
        "body : malformed JSON"
    ]


def test_a_conforming_body_is_then_judged_by_the_documented_business_rules(
    sandbox: Sandbox, raw: Raw
) -> None:
    # One line listed twice counts in total: 2 + 1 exceeds the 2 pending.
    twice = {
        **GOOD,
        "line_items": [{"line_item_id": "line-kbd", "quantity": 2}] + GOOD["line_items"],
    }
    assert assert_documented_400(raw.post(CANCEL, twice)) == [
        "line_items[1].quantity : 3 exceeds the 2 pending"
    ]
    assert raw.post(CANCEL, GOOD).status_code == 200


def test_the_order_read_answers_like_get_order(raw: Raw) -> None:
    found = raw.get(f"{raw.base}/orders/SHOP-1001?key=partner_order_reference")
    assert found.status_code == 200 and found.json()["order_id"] == "ORD-1001"
    missing = raw.get(f"{raw.base}/orders/ORD-9999")
    assert missing.status_code == 404 and missing.json()["errors"] == ["Order not found."]


@pytest.mark.newer_than_contract
def test_a_newer_contract_accepts_a_reason_carriyo_added_since(example: Any) -> None:
    # Carriyo adds enum values without notice (conventions page). An emulator given
    # a newer contract stands for that Carriyo: the raw value goes out, warned, and
    # is accepted; the shipped contract (test above) still refuses it.
    schema = copy.deepcopy(SCHEMA)
    schema["$defs"]["CancellationReason"]["enum"].append("REASON_ADDED_IN_2027")
    data = {**example("carriyo"), "platform_reason": "REASON_ADDED_IN_2027"}
    del data["reason"]
    with Sandbox([CarriyoEmulator(Contract(schema, name="newer"))]) as box:
        result = Client(config=box.client_config(), env={}).send(data, "carriyo")
    assert result.outcome == "cancelled"
    (warning,) = result.warnings
    assert "'REASON_ADDED_IN_2027' is not one cancelkit knows for carriyo" in warning


# -- scope: all_pending -------------------------------------------------------------
ALL_PENDING = {
    "order_id": "ORD-1002",
    "fulfillment_order_id": "FO-1002-1",
    "reason": "OUT_OF_STOCK",
    "scope": "all_pending",
}


def logged_sandbox() -> tuple[Sandbox, list[str]]:
    lines: list[str] = []
    return Sandbox(cancelkit.PluginRegistry().emulators(), log=lines.append), lines


def test_all_pending_reads_the_order_then_lists_its_pending_items() -> None:
    """Core's lookup step: the order read first, then a cancel naming every pending item."""
    box, seen = logged_sandbox()
    with box, Client(config=box.client_config(), env={}) as client:
        result = client.send(ALL_PENDING, "carriyo")
        assert result.outcome == "cancelled"
        assert [(line.line_id, int(line.quantity)) for line in result.lines] == [
            ("line-open", 1),
            ("line-allocated", 1),
        ]
        key = box.emulators["carriyo"].item_key  # type: ignore[attr-defined]
        items = orders(box)["ORD-1002"]["fulfillment_orders"][0]["line_items"]
    statuses = {i[key]: i["status"] for i in items}
    assert statuses["line-open"] == statuses["line-allocated"] == "cancelled"
    assert statuses["line-picked"] == "picked" and statuses["line-fulfilled"] == "fulfilled"
    calls = [line.split(" -> ")[0] for line in seen if "/oauth/" not in line]
    assert calls == [
        "GET /carriyo/orders/ORD-1002?key=order_id",
        "POST /carriyo/orders/ORD-1002/fulfillment-orders/FO-1002-1/cancel?key=order_id",
    ]


def test_translate_shows_the_read_send_makes_first() -> None:
    call = cancelkit.translate(ALL_PENDING, "carriyo")
    assert (call.method, call.body) == ("GET", None)
    assert call.url == "https://api.carriyo.com/orders/ORD-1002?key=order_id"


def test_an_unknown_order_is_rejected_and_no_cancel_is_sent() -> None:
    box, seen = logged_sandbox()
    with box, Client(config=box.client_config(), env={}) as client:
        result = client.send({**ALL_PENDING, "order_id": "NO-SUCH-ORDER"}, "carriyo")
    assert result.outcome == "rejected" and result.http_status == 404
    assert result.message is not None and result.message.endswith("nothing was cancelled")
    assert not [line for line in seen if line.startswith("POST /carriyo/orders/")]


@pytest.mark.parametrize("fault", ["500", "reset", "html"])
def test_a_failed_read_is_rejected_never_unknown(fault: str) -> None:
    """The cancel never left, so the outcome is known: nothing was cancelled."""
    box, seen = logged_sandbox()
    with box, Client(config=box.client_config(), env={}, sleep=lambda s: None) as client:
        box.inject(fault, "carriyo", count=3)  # the read and its safe resends
        result = client.send(ALL_PENDING, "carriyo")
    assert result.outcome == "rejected"
    assert result.errors[0].code == "LOOKUP_FAILED"
    assert "nothing was cancelled" in (result.message or "")
    assert not [line for line in seen if line.startswith("POST /carriyo/orders/")]


def test_a_rate_limited_read_is_rate_limited() -> None:
    box, _ = logged_sandbox()
    policy = RetryPolicy(max_retries=0)
    with box, Client(config=box.client_config(), env={}, policy=policy) as client:
        box.inject("429", "carriyo", retry_after=7)
        result = client.send(ALL_PENDING, "carriyo")
    assert result.outcome == "rejected" and result.retry_after == 7
    assert result.errors[0].code == "RATE_LIMITED"


def test_all_pending_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "all-pending.json"
    by_reference = {**ALL_PENDING, "order_id": "SHOP-1002"}
    path.write_text(json.dumps({**by_reference, "options": {"key": "partner_order_reference"}}))
    result = CliRunner().invoke(main, ["send", "--sandbox", "-p", "carriyo", str(path)])
    assert result.exit_code == 0, result.output
    assert "line line-open  quantity 1  cancelled" in result.output
    # The same request again is held by the ledger; another (its own key) is refused.
    repeat = CliRunner().invoke(main, ["send", "--sandbox", "-p", "carriyo", str(path)])
    assert repeat.exit_code == 0 and "already sent at" in repeat.output
    path.write_text(json.dumps({**json.loads(path.read_text()), "idempotency_key": "again"}))
    again = CliRunner().invoke(main, ["send", "--sandbox", "-p", "carriyo", str(path)])
    assert again.exit_code == 2
    assert "has no line items in status open or allocated" in again.output


def test_the_read_uses_the_partner_reference_key_and_sums_split_items(sandbox: Sandbox) -> None:
    # 1 of line-kbd's 2 cancelled first: the item splits into an allocated 1 and a cancelled 1.
    first = {"order_id": "ORD-1001", "fulfillment_order_id": "FO-1001-1", "reason": "OTHER",
             "lines": [{"line_id": "line-kbd", "quantity": 1}]}  # fmt: skip
    rest = {**first, "order_id": "SHOP-1001", "scope": "all_pending", "lines": []}
    rest["options"] = {"key": "partner_order_reference"}
    with Client(config=sandbox.client_config(), env={}) as client:
        assert client.send(first, "carriyo").outcome == "cancelled"
        result = client.send(rest, "carriyo")
    assert result.outcome == "cancelled"
    assert [(line.line_id, int(line.quantity)) for line in result.lines] == [("line-kbd", 1)]


def test_nothing_pending_or_no_such_fulfillment_order_is_refused() -> None:
    request = load_request(ALL_PENDING)
    done = {"fulfillment_orders": [{"fulfillment_order_id": "FO-1002-1", "line_items": [
        {"line_item_id": "a", "quantity": 1, "status": "picked"},
        {"id": "b", "quantity": 2, "status": "cancelled"},
    ]}]}  # fmt: skip
    with pytest.raises(InvalidRequestError, match="has no line items in status open or allocated"):
        ADAPTER.with_pending_lines(request, done)
    with pytest.raises(InvalidRequestError, match="fulfillment_order_id: not in carriyo order"):
        ADAPTER.with_pending_lines(request, {"fulfillment_orders": []})
