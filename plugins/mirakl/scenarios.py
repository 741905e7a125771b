"""Mirakl Connect cassette scenarios, recorded from the sandbox emulator."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from cancelkit.plugin import (
    CancelRequest,
    CancelResult,
    HttpCall,
    PlatformAdapter,
    Scenario,
    ScenarioContext,
    Settings,
    hookimpl,
)

from .emulator import SEED_ORDERS

_ORDER = "0024_COMMERCIAL_ID-A"
_LINE = "0002_3202630-A-1"


def request(order_id: str = _ORDER, line_id: str = _LINE, quantity: int = 1) -> dict[str, Any]:
    """A canonical request for one seeded line (same shape as examples/mirakl.json)."""
    line = SEED_ORDERS.get(order_id, {}).get("lines", {}).get(line_id, {})
    return {
        "order_id": order_id,
        "reason": "CUSTOMER_REQUEST",
        "currency": SEED_ORDERS.get(order_id, {}).get("currency", "USD"),
        "lines": [
            {
                "line_id": line_id,
                "quantity": quantity,
                "product_id": line.get("product_id", "10000"),
                "price": "15.00",
                "shipping_price": "8.00",
                "taxes": [{"code": "Tax1", "amount": "1.00"}],
                "shipping_taxes": [{"code": "ShippingTax1", "amount": "3.00"}],
            }
        ],
    }


def _send(ctx: ScenarioContext, data: dict[str, Any] | None = None) -> CancelResult:
    return ctx.client.send(data or request(), "mirakl")


def _send_then_poll(data: dict[str, Any]) -> Callable[[ScenarioContext], CancelResult]:
    def run(ctx: ScenarioContext) -> CancelResult:
        accepted = ctx.client.send(data, "mirakl")
        assert accepted.tracking_id
        first = ctx.client.status("mirakl", accepted.tracking_id)
        assert first.outcome == "accepted", first
        return ctx.client.status("mirakl", accepted.tracking_id)

    return run


def _with_fault(kind: str, **params: Any) -> Callable[[ScenarioContext], CancelResult]:
    def run(ctx: ScenarioContext) -> CancelResult:
        ctx.inject(kind, **params)
        return _send(ctx)

    return run


class _DropPrice:
    """Takes over translation to send a body without ``price`` (provokes a 400)."""

    @hookimpl(tryfirst=True)
    def cancelkit_translate(
        self, request: CancelRequest, adapter: PlatformAdapter, settings: Settings
    ) -> HttpCall:
        call = adapter.translate(request, settings)
        body = copy.deepcopy(call.body)
        for item in body["cancelations"]:
            del item["price"]
        return type(call)(call.method, call.url, call.headers, body)


def _status_of_unknown_action(ctx: ScenarioContext) -> CancelResult:
    ctx.client.send(request(), "mirakl")  # obtains a token first, like real use
    return ctx.client.status("mirakl", "00000000-0000-0000-0000-000000000000")


SCENARIOS = [
    Scenario("mirakl", "accepted", "202 with an action id", _send, "accepted"),
    Scenario(
        "mirakl",
        "action_success",
        "accepted, PENDING once, then SUCCESS",
        _send_then_poll(request()),
        "cancelled",
    ),
    Scenario(
        "mirakl",
        "action_failed_wrong_state",
        "a shipped line: accepted, then FAILED with ORDER_IN_WRONG_STATE",
        _send_then_poll(request("0025_COMMERCIAL_ID-B", "0003_3202631-B-1")),
        "rejected",
    ),
    Scenario(
        "mirakl",
        "action_failed_quantity",
        "more than is left: FAILED, INVALID_INPUT",
        _send_then_poll(request(quantity=5)),
        "rejected",
    ),
    Scenario(
        "mirakl",
        "unknown_order",
        "404 Error body",
        lambda ctx: _send(ctx, request("NO-SUCH-ORDER", "NO-SUCH-LINE")),
        "rejected",
    ),
    Scenario(
        "mirakl",
        "invalid_body",
        "400 Error body with a field per error",
        _send,
        "rejected",
        plugins=(_DropPrice(),),
    ),
    Scenario(
        "mirakl",
        "rate_limited_then_accepted",
        "429 + Retry-After, retried once",
        _with_fault("429", retry_after=1),
        "accepted",
    ),
    Scenario(
        "mirakl",
        "rate_limited_exhausted",
        "429 three times: reported, not retried further",
        _with_fault("429", retry_after=1, count=3),
        "rejected",
    ),
    Scenario(
        "mirakl",
        "token_refresh",
        "401 on the cancel: token refreshed once, resent",
        _with_fault("401"),
        "accepted",
    ),
    Scenario(
        "mirakl",
        "server_error_unknown",
        "500: unknown outcome, sent once only",
        _with_fault("500"),
        "unknown",
    ),
    Scenario(
        "mirakl", "html_unknown", "an HTML error page: unknown", _with_fault("html"), "unknown"
    ),
    Scenario(
        "mirakl",
        "malformed_unknown",
        "truncated JSON: unknown",
        _with_fault("malformed"),
        "unknown",
    ),
    Scenario(
        "mirakl",
        "odd_order_id",
        "an order id with / ? # sent as one path segment",
        lambda ctx: _send(ctx, request("ODD/ID?#1", "ODD-1")),
        "accepted",
    ),
    Scenario(
        "mirakl",
        "action_not_found",
        "status of an unknown action id: 404",
        _status_of_unknown_action,
        "rejected",
    ),
]
