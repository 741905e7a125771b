"""Salesforce cassette scenarios (both plugins), recorded from the sandbox emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cancelkit.plugin import CancelResult, Scenario, ScenarioContext

FO = "0a3xx0000000085AAA"


def request(fo: str = FO, *lines: tuple[str, Any]) -> dict[str, Any]:
    """A canonical request for seeded fulfillment order lines."""
    pairs = lines or (("0a4xx00000000W0001", 1),)
    return {
        "fulfillment_order_id": fo,
        "lines": [{"line_id": line_id, "quantity": qty} for line_id, qty in pairs],
    }


def _send(
    platform: str, data: dict[str, Any], fault: str | None = None
) -> Callable[[ScenarioContext], CancelResult]:
    def run(ctx: ScenarioContext) -> CancelResult:
        if fault:
            ctx.inject(fault)
        return ctx.client.send(data, platform)

    return run


def _scenarios(platform: str, prefix: str) -> list[Scenario]:
    def s(
        name: str, description: str, data: dict[str, Any], outcome: str, fault: str | None = None
    ) -> Scenario:
        return Scenario(
            "salesforce", f"{prefix}{name}", description, _send(platform, data, fault), outcome
        )

    return [
        s(
            "success",
            "two whole lines cancelled",
            request(FO, ("0a4xx00000000W0001", 3), ("0a4xx00000000W0002", 2)),
            "cancelled",
        ),
        s(
            "partial_quantity",
            "1 of 3 cancelled",
            request(FO, ("0a4xx00000000W0001", 1)),
            "cancelled",
        ),
        s(
            "fractional_quantity",
            "0.75 of 2.5 (a Double quantity)",
            request("0a3xx0000000088AAA", ("0a4xx00000000W0005", "0.75")),
            "cancelled",
        ),
        s(
            "more_than_remains",
            "more than remains: refused (cancel-item: success false in a 2xx)",
            request(FO, ("0a4xx00000000W0002", 5)),
            "rejected",
        ),
        s(
            "line_of_another_fo",
            "a line of another fulfillment order: 400",
            request(FO, ("0a4xx00000000W0003", 1)),
            "rejected",
        ),
        s(
            "closed_fo",
            "a fulfilled (closed) fulfillment order: 400 Error with Output array",
            request("0a3xx0000000086AAA", ("0a4xx00000000W0003", 1)),
            "rejected",
        ),
        s(
            "unknown_fo",
            "an unknown fulfillment order: 404",
            request("0a3xx0000000999AAA", ("0a4xx00000000W0001", 1)),
            "rejected",
        ),
        s(
            "token_refresh",
            "401 INVALID_SESSION_ID: token refreshed once, resent",
            request(),
            "cancelled",
            fault="401",
        ),
        s(
            "server_error_unknown",
            "500: unknown, sent once only",
            request(),
            "unknown",
            fault="500",
        ),
        s(
            "request_limit",
            "403 REQUEST_LIMIT_EXCEEDED: rate limited",
            request(),
            "rejected",
            fault="quota",
        ),
    ]


SCENARIOS = _scenarios("salesforce", "") + _scenarios("salesforce-flow", "flow_")
