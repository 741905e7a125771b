"""About You cassette scenarios, recorded from the sandbox emulator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cancelkit.plugin import (
    CancelResult,
    HttpCall,
    PlatformAdapter,
    Scenario,
    ScenarioContext,
    WrongPlugin,
    hookimpl,
)

#: How late the resend leaves in ``resend_after_completion``: a first answer lost to
#: the read timeout (30 s, core's default) comes back long after a batch completes.
_LOST_ANSWER_SECONDS = 30.0


def request(*item_ids: int) -> dict[str, Any]:
    """One canonical line per About You item (line_id = item id, quantity 1)."""
    return {"lines": [{"line_id": str(item), "quantity": 1} for item in item_ids or (1001,)]}


def _accepted(ctx: ScenarioContext) -> CancelResult:
    return ctx.client.send(request(1001), "aboutyou")


def _mixed_results(ctx: ScenarioContext) -> CancelResult:
    accepted = ctx.client.send(request(1002, 1003, 1004, 9999), "aboutyou")
    assert accepted.tracking_id
    # Asked at once, the batch is pending; wait polls until it completed.
    assert ctx.client.status("aboutyou", accepted.tracking_id).details["batch_status"] == "pending"
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


class _LateResend:
    """Moves the sandbox clock on just before the second cancel POST goes out.

    Stands for a first answer that took long to fail: by the time core resends,
    the first batch has completed, so the resend is a new batch.
    """

    def __init__(self) -> None:
        self.advance: Callable[[float], None] = lambda seconds: None
        self.posts = 0

    @hookimpl
    def cancelkit_before_send(
        self, call: HttpCall, adapter: PlatformAdapter
    ) -> Mapping[str, str] | None:
        if call.method == "POST":
            self.posts += 1
            if self.posts == 2:
                self.advance(_LOST_ANSWER_SECONDS)
        return None


_LATE_RESEND = _LateResend()


def _resend_after_completion(ctx: ScenarioContext) -> CancelResult:
    # The first batch cancels 2001 and 2002, but its answer is lost; core's one resend
    # leaves after that batch completed, so it is a new batch whose items fail as
    # already cancelled - which counts as cancelled (with warnings), not rejected.
    _LATE_RESEND.advance, _LATE_RESEND.posts = ctx.advance, 0
    ctx.inject("html")
    accepted = ctx.client.send(request(2001, 2002), "aboutyou")
    assert accepted.outcome == "accepted", accepted
    final = ctx.client.wait(accepted)
    assert final.outcome == "cancelled" and len(final.warnings) == 2, final
    return final


def _item_id_misnamed(body: dict[str, Any]) -> None:
    for item in body["items"]:
        item["item_id"] = item.pop("id")


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
        "pending at once, then processing, completed: open item cancelled, already "
        "cancelled item counted as cancelled; shipped and unknown items refused",
        _mixed_results,
        "partial",
    ),
    Scenario(
        "aboutyou",
        "deduplicated_resend",
        "unknown first answer, safe resend while in flight, identical payload -> same batch",
        _deduplicated_resend,
        "accepted",
    ),
    Scenario(
        "aboutyou",
        "resend_after_completion",
        "unknown first answer, resend after the first batch completed: a new batch whose "
        "items are already cancelled -> cancelled with warnings",
        _resend_after_completion,
        "cancelled",
        plugins=(_LATE_RESEND,),
    ),
    Scenario(
        "aboutyou",
        "contract_wrong_item_key",
        "items[].item_id instead of id (the contract requires id): 400 {message}",
        lambda ctx: ctx.client.send(request(1001), "aboutyou"),
        "rejected",
        plugins=(WrongPlugin(_item_id_misnamed),),
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
