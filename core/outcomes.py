"""Results shared by every platform: unknown outcomes and rate limits."""

from __future__ import annotations

import shlex

from .model import CancelRequest, CancelResult, LineResult, Outcome, ResultError, lines_with_status


def unknown_result(
    platform: str,
    request: CancelRequest,
    why: str,
    http_status: int | None,
    how_to_check: str,
    sends: int = 1,
    deduplicated: bool = False,
) -> CancelResult:
    """The request may or may not have been applied: say so, and how often it went out."""
    message = (
        f"outcome unknown: {why}. The cancellation {_times_sent(sends, platform, deduplicated)} "
        f"and may have been applied. To find out, {how_to_check}."
    )
    error = ResultError(message=why, code="OUTCOME_UNKNOWN")
    return CancelResult(
        platform=platform,
        outcome="unknown",
        lines=lines_with_status(request, "unknown"),
        errors=(error,),
        http_status=http_status,
        message=message,
        details={"sends": sends},
    )


def _times_sent(sends: int, platform: str, deduplicated: bool) -> str:
    if sends <= 1:
        return "was sent once; it was NOT resent"
    if deduplicated:
        return (
            f"was sent {sends} times ({platform} deduplicates identical requests, "
            "so it is applied at most once); it is NOT resent again"
        )
    return (
        f"was sent {sends} times (the platform refused the earlier attempts unprocessed: "
        "401 or 429); the last one was NOT resent"
    )


def lookup_failed_result(
    platform: str, request: CancelRequest, why: str, http_status: int | None
) -> CancelResult:
    """The read a cancel depends on failed, so the cancel was never sent."""
    return CancelResult(
        platform=platform,
        outcome="rejected",
        lines=lines_with_status(request, "rejected"),
        errors=(ResultError(message=why, code="LOOKUP_FAILED"),),
        http_status=http_status,
        message=f"the read before the cancel failed ({why}): nothing was cancelled",
    )


def rate_limited_result(
    platform: str, request: CancelRequest, http_status: int, retry_after: float | None
) -> CancelResult:
    """The platform refused to process the call for now: nothing was cancelled."""
    wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
    return CancelResult(
        platform=platform,
        outcome="rejected",
        lines=lines_with_status(request, "rejected"),
        errors=(
            ResultError(
                message=f"rate limited by {platform}{wait}", code="RATE_LIMITED", retryable=True
            ),
        ),
        http_status=http_status,
        retry_after=retry_after,
        message=f"rate limited: nothing was cancelled{wait}",
    )


def rejected_result(
    platform: str,
    request: CancelRequest,
    errors: tuple[ResultError, ...],
    http_status: int | None,
    message: str | None = None,
) -> CancelResult:
    """The platform refused the whole call: every line rejected, nothing cancelled."""
    return CancelResult(
        platform=platform,
        outcome="rejected",
        lines=lines_with_status(request, "rejected"),
        errors=errors,
        http_status=http_status,
        message=message or (errors[0].message if errors else f"rejected by {platform}"),
    )


def accepted_result(
    platform: str, request: CancelRequest, tracking_id: str, http_status: int
) -> CancelResult:
    """Queued by an asynchronous platform: every line pending, follow up by tracking id."""
    return CancelResult(
        platform=platform,
        outcome="accepted",
        tracking_id=tracking_id,
        lines=lines_with_status(request, "pending"),
        http_status=http_status,
        # The id comes from the platform: quoted, so a pasted command runs nothing else.
        message=(
            f"accepted; follow up with: cancelkit status -p {shlex.quote(platform)} "
            f"{shlex.quote(tracking_id)}"
        ),
    )


def combined_outcome(lines: tuple[LineResult, ...]) -> Outcome:
    """``cancelled`` when every line is, ``partial`` when some are, else ``rejected``."""
    done = sum(1 for line in lines if line.status == "cancelled")
    if lines and done == len(lines):
        return "cancelled"
    return "partial" if done else "rejected"
