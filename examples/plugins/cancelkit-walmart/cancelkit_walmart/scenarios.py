"""Walmart cassette scenarios, recorded from the sandbox emulator.

Record them with ``cancelkit cassettes record walmart --out cassettes`` (from this
package's folder); the tests replay them with the network blocked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cancelkit.plugin import CancelResult, Scenario, ScenarioContext, WrongPlugin

PO = "1577914061094"


def request(
    *lines: tuple[str, int], po: str = PO, reason: str = "CUSTOMER_REQUEST"
) -> dict[str, Any]:
    """A canonical request for seeded lines of ``po`` (line 1, once, by default)."""
    return {
        "order_id": po,
        "reason": reason,
        "lines": [{"line_id": n, "quantity": q} for n, q in lines or (("1", 1),)],
    }


def _send(data: dict[str, Any]) -> Callable[[ScenarioContext], CancelResult]:
    return lambda ctx: ctx.client.send(data, "walmart")


def _with_fault(kind: str, **params: Any) -> Callable[[ScenarioContext], CancelResult]:
    def run(ctx: ScenarioContext) -> CancelResult:
        ctx.inject(kind, **params)
        return ctx.client.send(request(), "walmart")

    return run


def _cancel_one_unit_less(body: dict[str, Any]) -> None:
    # Stands in for a Walmart that applies fewer units than asked (the last line's).
    status = body["orderCancellation"]["orderLines"]["orderLine"][-1]["orderLineStatuses"]
    status["orderLineStatus"][0]["statusQuantity"]["amount"] = "1"


def _reason_outside_the_enum(body: dict[str, Any]) -> None:
    # The CA value, which old US clients still send [W-ca-ref].
    for line in body["orderCancellation"]["orderLines"]["orderLine"]:
        line["orderLineStatuses"]["orderLineStatus"][0]["cancellationReason"] = "CANCEL_BY_SELLER"


SCENARIOS = [
    Scenario("walmart", "cancelled", "one acknowledged line: 200, the order shows it Cancelled",
             _send(request()), "cancelled"),
    Scenario("walmart", "partial_quantity", "2 of 3 units of a line: the rest stays Acknowledged",
             _send(request(("2", 2))), "cancelled"),
    Scenario("walmart", "several_lines", "a Created and an Acknowledged line in one request",
             _send(request(("1", 1), ("5", 2), reason="OUT_OF_STOCK")), "cancelled"),
    Scenario("walmart", "partial", "the order shows fewer units cancelled than asked on one "
             "line: that line rejected, the result partial", _send(request(("1", 1), ("2", 2))),
             "partial", plugins=(WrongPlugin(_cancel_one_unit_less),)),
    Scenario("walmart", "shipped_line", "a shipped line: 400 INVALID_REQUEST_CONTENT, nothing "
             "cancelled", _send(request(("3", 1))), "rejected"),
    Scenario("walmart", "all_or_nothing", "an open and a shipped line: the whole request refused",
             _send(request(("1", 1), ("3", 1))), "rejected"),
    Scenario("walmart", "already_cancelled", "a cancelled line: 400", _send(request(("4", 1))),
             "rejected"),
    Scenario("walmart", "over_open_quantity", "2 units where 1 is open, 1 shipped: 400",
             _send(request(("6", 2))), "rejected"),
    Scenario("walmart", "unknown_po", "404 CONTENT_NOT_FOUND", _send(request(po="1000000000000")),
             "rejected"),
    Scenario("walmart", "contract_unknown_reason", "a reason outside the enum: 400 naming "
             "the field", _send(request()), "rejected",
             plugins=(WrongPlugin(_reason_outside_the_enum),)),
    Scenario("walmart", "odd_po", "a PO id with / ? # arrives as one path segment",
             _send(request(po="ODD/PO?#1")), "cancelled"),
    Scenario("walmart", "rate_limited_then_cancelled", "429 REQUEST_THRESHOLD_VIOLATED once, "
             "retried", _with_fault("429", retry_after=1), "cancelled"),
    Scenario("walmart", "rate_limited_exhausted", "429 three times: reported, not retried "
             "further", _with_fault("429", retry_after=1, count=3), "rejected"),
    Scenario("walmart", "token_refresh", "401 on the cancel: a new token, sent again",
             _with_fault("401"), "cancelled"),
    Scenario("walmart", "token_refused", "401 again with a new token: an authentication error",
             _with_fault("401", count=2), "AuthenticationError"),
    Scenario("walmart", "server_error_unknown", "500: unknown, sent once only",
             _with_fault("500"), "unknown"),
    Scenario("walmart", "html_unknown", "processed, then an HTML error page: unknown",
             _with_fault("html"), "unknown"),
]  # fmt: skip
