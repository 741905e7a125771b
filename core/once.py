"""Exactly once: which ledger entries may be sent again, and what a held send returns.

The ledger (:mod:`cancelkit.core.ledger`) claims each key before the call leaves;
these are the rules :meth:`Client.send` applies to a key the ledger already holds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from ..errors import FieldError, InvalidRequestError
from .model import CancelRequest, CancelResult, ResultError, lines_with_status

if TYPE_CHECKING:
    from .ledger.store import Claimed, Ledger, LedgerEntry

#: Outcomes that say the platform applied or took the cancel: never resent.
APPLIED = frozenset({"cancelled", "partial", "accepted"})
#: Error codes of results where nothing left for the cancel: sending it is not resending.
NOTHING_SENT_CODES = frozenset({"LOOKUP_FAILED"})


class ClaimTaken(Exception):
    """Raised just before a cancel call would leave: the key's claim is no longer this
    sender's (another took it over, or it was resolved), so this one must not send."""


class Departure:
    """How a claimed cancel leaves, as the ledger records it.

    The claim counts as leaving from the moment it is made (one durable write, not
    two, on the usual path where nothing waits). A wait before the call goes (the
    rate limiter: :meth:`waiting`, called before its first pause) first marks the
    claim held back, so a sender that dies waiting leaves a claim another may send;
    :meth:`leaving`, just before the bytes go, then marks it leaving again, which
    fails (:class:`ClaimTaken`) if another sender took it over meanwhile.
    """

    def __init__(self, ledger: Ledger, claim: Claimed):
        self._ledger, self._claim = ledger, claim
        self._held = False

    def waiting(self) -> None:
        """The call is about to wait before it leaves."""
        if not self._held:
            if not self._ledger.hold(self._claim):
                raise ClaimTaken(self._claim.key)
            self._held = True

    def leaving(self) -> None:
        """The call's bytes go now."""
        if self._held:
            if not self._ledger.leave(self._claim):
                raise ClaimTaken(self._claim.key)
            self._held = False


def may_send_again(entry: LedgerEntry, *, resend: bool, deduplicating: bool) -> bool:
    """True when a send of ``entry``'s key may go out (again).

    - ``resend``: the user said so, having checked the platform (``--resend``);
    - nothing was sent last time (``not_sent``; a failed read before the cancel);
    - the key is claimed but its call never left (the sender died waiting for the rate
      limiter, or is still waiting): taking the claim over is safe, because only one
      of the two senders can mark the call as leaving (:meth:`Ledger.leave`);
    - the platform refused it unprocessed and said a later resend may work
      (rate limited, a transient error: every error ``retryable``);
    - the outcome is unknown and the platform deduplicates identical requests
      (About You): the platform itself keeps a resend from applying twice.

    Never otherwise: a cancellation whose outcome is unknown is not resent. And not
    even with ``resend`` when the ledger knows it was applied or taken (cancelled,
    partial, accepted): InvalidRequestError naming ``resend``.
    """
    if resend and entry.outcome in APPLIED:
        raise InvalidRequestError(
            FieldError(
                "resend",
                f"the ledger holds key {entry.key} as {entry.outcome} "
                f"({entry.updated_at:%Y-%m-%d %H:%M:%S} UTC): it was applied, so nothing "
                "was sent; a new cancellation needs its own idempotency_key",
            )
        )
    if resend or entry.outcome == "not_sent" or entry.never_left:
        return True
    if entry.outcome == "rejected" and entry.answered and entry.result is not None:
        errors = entry.result.get("errors") or ()
        if errors and all(
            e.get("retryable") or e.get("code") in NOTHING_SENT_CODES for e in errors
        ):
            return True
    return entry.outcome == "unknown" and deduplicating


def held_result(entry: LedgerEntry, request: CancelRequest) -> CancelResult:
    """What a send of a key the ledger holds returns instead of sending.

    The recorded result (the latest status answer over the send's), with a warning
    that says when it was sent; an entry claimed with no answer is ``unknown``.
    """
    when = (entry.answered_at or entry.claimed_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    ledger = {"key": entry.key, "sent_at": entry.claimed_at.isoformat(), "held": True}
    if entry.in_flight:
        claimed = f"claimed at {entry.claimed_at:%Y-%m-%d %H:%M:%S} UTC by {entry.claimed_by}"
        if entry.left_at is None:  # another sender took it over and has not sent it yet
            why = f"{claimed}, which is to send it (not sent by this sender)"
        else:
            why = (
                f"{claimed}, sent at {entry.left_at:%H:%M:%S} UTC with no answer recorded ("
                + (entry.note or "being sent now, or that sender died")
                + ")"
            )
        if entry.left_at is None:  # nothing to check on the platform: it has not gone
            advice = "the same send later shows its outcome (or sends it, if that sender died)"
        else:
            advice = (
                f"NOT sent again. Check the order on {entry.platform}, then: "
                f"cancelkit ledger resolve {entry.key} --as cancelled|rejected, or --resend"
            )
        return CancelResult(
            platform=entry.platform,
            outcome="unknown",
            lines=lines_with_status(request, "unknown"),
            errors=(ResultError(message=why, code="OUTCOME_UNKNOWN"),),
            message=f"outcome unknown: {why}; {advice}",
            details={"ledger": ledger},
        )
    recorded = entry.canonical_result()
    if entry.outcome in ("cancelled", "rejected") and (
        recorded is None or recorded.outcome != entry.outcome
    ):  # settled by hand (``cancelkit ledger resolve``): the resolution is what holds
        settled: Literal["cancelled", "rejected"] = (
            "cancelled" if entry.outcome == "cancelled" else "rejected"
        )
        recorded = CancelResult(
            platform=entry.platform,
            outcome=settled,
            lines=lines_with_status(request, settled),
            message=entry.note or settled,
        )
    # Every answered entry has a result, and not_sent ones are sent again, never held.
    assert recorded is not None, entry.key
    note = f"already sent at {when} (ledger key {entry.key}); not sent again"
    return replace(
        recorded,
        warnings=(*recorded.warnings, note),
        details={**recorded.details, "ledger": ledger},
    )
