"""Carriyo cassette scenarios, recorded from the sandbox emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cancelkit.plugin import (
    CancelResult,
    Scenario,
    ScenarioContext,
    WrongPlugin,
)

from .adapter import LINE_ITEM_ID_KEY


def request(
    fo: str = "FO-1001-1", *lines: tuple[str, int], order: str = "ORD-1001", **extra: Any
) -> dict[str, Any]:
    """A canonical carriyo request for seeded lines."""
    pairs = lines or (("line-kbd", 2),)
    return {
        "order_id": order,
        "fulfillment_order_id": fo,
        "reason": "CUSTOMER_REQUEST",
        "lines": [{"line_id": line_id, "quantity": qty} for line_id, qty in pairs],
        **extra,
    }


def _send(
    data: dict[str, Any], fault: str | None = None
) -> Callable[[ScenarioContext], CancelResult]:
    def run(ctx: ScenarioContext) -> CancelResult:
        if fault:
            ctx.inject(fault)
        return ctx.client.send(data, "carriyo")

    return run


def _key_id(body: dict[str, Any]) -> None:
    """The recipe's ``id`` instead of the contract's ``line_item_id``."""
    for item in body["line_items"]:
        item["id"] = item.pop(LINE_ITEM_ID_KEY)


def _no_line_items(body: dict[str, Any]) -> None:
    """The "omit to cancel all pending items" reading, which the contract refuses."""
    del body["line_items"]


def _undocumented_reason(body: dict[str, Any]) -> None:
    """Carriyo's Magento module's ORDER_CANCELLED, not in the documented enum."""
    body["cancellation_reason"] = "ORDER_CANCELLED"


SCENARIOS = [
    Scenario(
        "carriyo", "full_success", "every unit of a line cancelled", _send(request()), "cancelled"
    ),
    Scenario(
        "carriyo",
        "partial_success",
        "1 of 2 units cancelled",
        _send(request("FO-1001-1", ("line-kbd", 1))),
        "cancelled",
    ),
    Scenario(
        "carriyo",
        "by_partner_reference",
        "order found by partner_order_reference",
        _send(
            request(
                "FO-1001-2",
                ("line-cbl", 1),
                order="SHOP-1001",
                options={"key": "partner_order_reference"},
            )
        ),
        "cancelled",
    ),
    Scenario(
        "carriyo",
        "status_not_cancellable",
        "a picked line: 400",
        _send(request("FO-1001-1", ("line-mon", 1))),
        "rejected",
    ),
    Scenario("carriyo", "unknown_order", "404", _send(request(order="ORD-9999")), "rejected"),
    Scenario(
        "carriyo",
        "unknown_line",
        "a line not in the fulfillment order: 400",
        _send(request("FO-1001-1", ("line-cbl", 1))),
        "rejected",
    ),
    Scenario(
        "carriyo",
        "contract_wrong_item_key",
        "a plugin sending id, not line_item_id: 400 from the contract",
        _send(request()),
        "rejected",
        plugins=(WrongPlugin(_key_id),),
    ),
    Scenario(
        "carriyo",
        "contract_no_line_items",
        "a plugin omitting line_items: 400 from the contract",
        _send(request()),
        "rejected",
        plugins=(WrongPlugin(_no_line_items),),
    ),
    Scenario(
        "carriyo",
        "contract_unknown_reason",
        "a reason the contract does not list: 400 from the contract",
        _send(request()),
        "rejected",
        plugins=(WrongPlugin(_undocumented_reason),),
    ),
    Scenario(
        "carriyo",
        "token_refresh",
        "401: token refreshed once, resent",
        _send(request(), fault="401"),
        "cancelled",
    ),
    Scenario(
        "carriyo",
        "server_error_unknown",
        "500: unknown, sent once only",
        _send(request(), fault="500"),
        "unknown",
    ),
    Scenario(
        "carriyo",
        "all_pending",
        "scope all_pending: the order read, then its open and allocated items cancelled",
        _send(
            {
                "order_id": "ORD-1002",
                "fulfillment_order_id": "FO-1002-1",
                "reason": "OUT_OF_STOCK",
                "scope": "all_pending",
            }
        ),
        "cancelled",
    ),
]
