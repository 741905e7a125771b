"""About You cassette scenarios, recorded from the sandbox emulator."""

from __future__ import annotations

from typing import Any

from cancelkit.plugin import CancelResult, Scenario, ScenarioContext


def request(*item_ids: int) -> dict[str, Any]:
    """One canonical line per About You item (line_id = item id, quantity 1)."""
    return {"lines": [{"line_id": str(item), "quantity": 1} for item in item_ids or (1001,)]}


def _accepted(ctx: ScenarioContext) -> CancelResult:
    return ctx.client.send(request(1001), "aboutyou")


def _mixed_results(ctx: ScenarioContext) -> CancelResult:
    accepted = ctx.client.send(request(1002, 1003, 1004, 9999), "aboutyou")
    return ctx.client.wait(accepted)


def _deduplicated_resend(ctx: ScenarioContext) -> CancelResult:
    # The first answer is lost (an HTML error page after the batch was queued):
    # the outcome is unknown, and since About You deduplicates identical payloads,
    # cancelkit resends once and gets the in-flight batch id back.
    ctx.inject("html")
    first = ctx.client.send(request(2001, 2002), "aboutyou")
    again = ctx.client.send(request(2001, 2002), "aboutyou")
    assert first.tracking_id and first.tracking_id == again.tracking_id, (first, again)
    return again


def _rate_limited(ctx: ScenarioContext) -> CancelResult:
    ctx.inject("429", count=3)
    return ctx.client.send(request(1001), "aboutyou")


def _unauthorized(ctx: ScenarioContext) -> CancelResult:
    ctx.inject("401")
    return ctx.client.send(request(1001), "aboutyou")


SCENARIOS = [
    Scenario("aboutyou", "accepted", "200 with a batch id", _accepted, "accepted"),
    Scenario(
        "aboutyou",
        "results_mixed",
        "pending, processing, completed: open item cancelled; shipped, cancelled "
        "and unknown items refused",
        _mixed_results,
        "partial",
    ),
    Scenario(
        "aboutyou",
        "deduplicated_resend",
        "unknown first answer, safe resend, identical payload -> same batch",
        _deduplicated_resend,
        "accepted",
    ),
    Scenario(
        "aboutyou",
        "rate_limited",
        "429 with X-RateLimit headers, bounded retries",
        _rate_limited,
        "rejected",
    ),
    Scenario("aboutyou", "unauthorized", "401 {message}", _unauthorized, "AuthenticationError"),
]
