"""The canonical request and result (contract: see README "Canonical model").

Plain frozen dataclasses: what users build and read. Loading from JSON and
checking happen in :mod:`cancelkit.core.schemas`; platform-specific checks in each
adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

#: Canonical cancellation reasons; each platform maps them to its own enum.
REASONS: tuple[str, ...] = (
    "CUSTOMER_REQUEST",
    "OUT_OF_STOCK",
    "ALLOCATION_FAILED",
    "STAFF_ERROR",
    "PAYMENT_ISSUE",
    "RETURN",
    "ITEM_NOT_RECEIVED",
    "AGREEMENT",
    "DEFECT",
    "UNABLE_TO_DELIVER",
    "FRAUD",
    "OTHER",
)

#: A request with more lines than this is refused before anything is sent.
MAX_LINES = 10_000

#: What a request covers: the listed lines, or every pending line (platforms that can).
SCOPES: tuple[str, ...] = ("lines", "all_pending")

Outcome = Literal["cancelled", "accepted", "rejected", "partial", "unknown"]
LineStatus = Literal["cancelled", "pending", "rejected", "unknown"]

OUTCOMES: tuple[str, ...] = ("cancelled", "accepted", "rejected", "partial", "unknown")


@dataclass(frozen=True)
class Tax:
    """A tax amount to cancel, identified by the platform's tax code."""

    code: str
    amount: Decimal


@dataclass(frozen=True)
class Line:
    """One order line to cancel, and how much of it."""

    line_id: str
    quantity: Decimal
    product_id: str | None = None
    #: The amount being cancelled for this line's ``quantity``, excluding taxes and
    #: shipping; not a unit price (2 units at 15.00 each is ``30.00``).
    price: Decimal | None = None
    #: The shipping amount being cancelled for this line, excluding shipping taxes.
    shipping_price: Decimal | None = None
    taxes: tuple[Tax, ...] = ()
    shipping_taxes: tuple[Tax, ...] = ()
    reason: str | None = None
    platform_reason: str | None = None


@dataclass(frozen=True)
class CancelRequest:
    """One canonical "cancel these order lines" request, for any platform."""

    lines: tuple[Line, ...]
    order_id: str | None = None
    fulfillment_order_id: str | None = None
    reason: str | None = None
    platform_reason: str | None = None
    currency: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    scope: Literal["lines", "all_pending"] = "lines"

    def reason_for(self, line: Line | None) -> str | None:
        """The canonical reason that applies to ``line`` (the line's own wins)."""
        return (line.reason if line else None) or self.reason

    def platform_reason_for(self, line: Line | None) -> str | None:
        """The raw platform reason that applies to ``line``, if one was given."""
        return (line.platform_reason if line else None) or self.platform_reason

    def reasons(self) -> tuple[tuple[Line | None, str | None, str | None], ...]:
        """``(line, reason, platform_reason)`` that apply to each line, in one call.

        A request without lines (``scope: all_pending``) has one entry, for ``None``.
        """
        if not self.lines:
            return ((None, self.reason, self.platform_reason),)
        return tuple(
            (line, line.reason or self.reason, line.platform_reason or self.platform_reason)
            for line in self.lines
        )


@dataclass(frozen=True)
class ResultError:
    """An error reported by the platform (or by us, for rate limits and unknowns)."""

    message: str
    code: str | None = None
    field: str | None = None
    #: True when the same cancel may succeed if sent again later: nothing was applied
    #: and the cause passes (a rate limit, a platform's transient error).
    retryable: bool = False


@dataclass(frozen=True)
class LineResult:
    """What happened to one requested line."""

    line_id: str
    quantity: Decimal
    status: LineStatus
    errors: tuple[ResultError, ...] = ()


@dataclass(frozen=True)
class CancelResult:
    """The canonical answer of ``send`` and ``status``, whatever the platform said."""

    platform: str
    outcome: Outcome
    lines: tuple[LineResult, ...] = ()
    tracking_id: str | None = None
    errors: tuple[ResultError, ...] = ()
    warnings: tuple[str, ...] = ()
    http_status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    #: Platform extras worth keeping (rate-limit headers, raw status), never secrets.
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the platform cancelled or accepted the request."""
        return self.outcome in ("cancelled", "accepted")

    @property
    def retryable(self) -> bool:
        """True when nothing was cancelled and every error says a later resend may work."""
        return (
            self.outcome == "rejected"
            and bool(self.errors)
            and all(e.retryable for e in self.errors)
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical result as plain data: the JSON of ``cancelkit send --json``.

        Quantities and any decimal in ``details`` stay ``Decimal`` (money never passes
        through float): ``simplejson.dumps(result.to_dict(), use_decimal=True)`` writes
        them exactly. ``cancelkit.dump_result(result)`` is the same function.
        """
        from .schemas import dump_result  # marshmallow loads only when a result is dumped

        return dump_result(self)


def lines_with_status(request: CancelRequest, status: LineStatus) -> tuple[LineResult, ...]:
    """Every requested line with the same status: the common case for whole-call answers."""
    return tuple(LineResult(line.line_id, line.quantity, status) for line in request.lines)
