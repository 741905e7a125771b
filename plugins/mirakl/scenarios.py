"""Mirakl Connect cassette scenarios, recorded from the sandbox emulator.

Status calls keep Mirakl's rule, at most one a minute per action id: a scenario
that polls again lets a minute pass first (``ctx.advance``), as a real caller would.
One scenario polls twice at once to show core pacing the second call itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cancelkit.plugin import (
    CancelResult,
    Scenario,
    ScenarioContext,
    WrongPlugin,
)

from .emulator import SEED_ORDERS

_ORDER = "0024_COMMERCIAL_ID-A"
_LINE = "0002_3202630-A-1"
#: v2-getActionStatus: "Maximum usage: Asynchronous: once per minute per action ID".
_STATUS_GAP = 60.0


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
    """Send, ask at once (PENDING), let the minute pass, ask again (finished)."""

    def run(ctx: ScenarioContext) -> CancelResult:
        accepted = ctx.client.send(data, "mirakl")
        assert accepted.tracking_id
        first = ctx.client.status("mirakl", accepted.tracking_id)
        assert first.outcome == "accepted", first
        ctx.advance(_STATUS_GAP)
        return ctx.client.status("mirakl", accepted.tracking_id)

    return run


def _polled_twice_at_once(ctx: ScenarioContext) -> CancelResult:
    # No time passes between the two calls here: core holds the second one back for
    # the rest of the minute (the emulator would answer 429 to an early call).
    accepted = ctx.client.send(request(), "mirakl")
    assert accepted.tracking_id
    assert ctx.client.status("mirakl", accepted.tracking_id).outcome == "accepted"
    return ctx.client.status("mirakl", accepted.tracking_id)


def _send_and_wait(ctx: ScenarioContext) -> CancelResult:
    return ctx.client.wait(ctx.client.send(request(), "mirakl"))


def _with_fault(kind: str, **params: Any) -> Callable[[ScenarioContext], CancelResult]:
    def run(ctx: ScenarioContext) -> CancelResult:
        ctx.inject(kind, **params)
        return _send(ctx)

    return run


def _drop_price(body: dict[str, Any]) -> None:
    for item in body["cancelations"]:
        del item["price"]


def _reason_outside_the_enum(body: dict[str, Any]) -> None:
    # A value Mirakl uses elsewhere (Adjustment.reason) but not in CancelRequest.reason.
    for item in body["cancelations"]:
        item["reason"] = "CHANNEL_SPECIFIC"


def _status_of_unknown_action(ctx: ScenarioContext) -> CancelResult:
    ctx.client.send(request(), "mirakl")  # obtains a token first, like real use
    return ctx.client.status("mirakl", "00000000-0000-0000-0000-000000000000")


SCENARIOS = [
    Scenario("mirakl", "accepted", "202 with an action id", _send, "accepted"),
    Scenario(
        "mirakl",
        "action_success",
        "accepted; PENDING at once; SUCCESS a minute later",
        _send_then_poll(request()),
        "cancelled",
    ),
    Scenario(
        "mirakl",
        "status_paced",
        "two status calls in a row: core waits out the minute before the second",
        _polled_twice_at_once,
        "cancelled",
    ),
    Scenario(
        "mirakl",
        "send_wait",
        "send --wait: the first poll, after the processing time, sees SUCCESS",
        _send_and_wait,
        "cancelled",
    ),
    Scenario(
        "mirakl",
        "action_failed_unavailable",
        "the sales channel is down: FAILED with UNAVAILABLE, reported retryable",
        _send_then_poll(request("0026_COMMERCIAL_ID-C", "0004_3202632-C-1")),
        "rejected",
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
        "no price (the contract requires it): 400 Error body with a field per error",
        _send,
        "rejected",
        plugins=(WrongPlugin(_drop_price),),
    ),
    Scenario(
        "mirakl",
        "contract_unknown_reason",
        "a reason outside the contract's enum: 400 Error naming cancelations[0].reason",
        _send,
        "rejected",
        plugins=(WrongPlugin(_reason_outside_the_enum),),
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
