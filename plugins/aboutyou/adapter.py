"""About You Sellers Center: ``POST /orders/cancel`` and ``GET /results/cancel-orders``.

Source: seed 003 (OpenAPI 3.1 fragment), shared/platforms part B.

How canonical lines map to About You order items: an About You order item is one
unit, addressed by a positive integer id, and the cancel takes item ids only. So a
line is either one item (``line_id`` is the item id, ``quantity`` 1), or carries its
unit item ids in ``options.item_ids[line_id]`` (as many ids as ``quantity``).

Resending. About You deduplicates identical payloads only while the first batch is
in flight ("within the deduplication window return the existing in-flight ID"), so
core's one automatic resend after an unknown outcome may start a second batch once
the first has completed; that batch's items then fail as already cancelled. Such an
item is reported ``cancelled`` with a warning, never ``rejected``; and a results 404
for a batch this adapter was just given is pending (``accepted``) for
:data:`RESULTS_NOT_FOUND_GRACE_SECONDS`, not final.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, fields, validate

from cancelkit.plugin import (
    MASK,
    Authenticator,
    CancelRequest,
    CancelResult,
    Capabilities,
    ConfigurationError,
    FieldError,
    HttpCall,
    HttpResponse,
    LineResult,
    Outcome,
    PlatformAdapter,
    RateLimiter,
    ResultError,
    Setting,
    Settings,
    StaticHeaders,
    accepted_result,
    combined_outcome,
    join_url,
    json_headers,
    rejected_result,
    shared_limiter,
)

DEFAULT_BASE_URL = "https://partner.aboutyou.com/api/v1"
API_KEY_HEADER = {"X-API-Key": MASK}
#: Documented per-API-key limits (requests per minute): "Rate limit: 50 requests per
#: minute" on Cancel Order Items (seed 003) and ``/results/*`` GET 200/min in the
#: rate-limiting table (docs.partner.aboutyou.com/api/getting-started/rate-limiting).
#: An account with another cancel limit says so in the ``cancel_limit`` setting.
CANCEL_LIMIT_PER_MINUTE = 50
RESULTS_LIMIT_PER_MINUTE = 200
#: ``cancel_limit``: LIMIT/SECONDS, whole cancels per a window of seconds.
_CANCEL_LIMIT = re.compile(r"([0-9]{1,9})/([0-9]{1,9}(?:\.[0-9]+)?)")
#: Results ``status`` -> canonical outcome while not completed.
PENDING_STATUSES = ("pending", "processing", "retry")
#: An item error meaning the item is cancelled already (by our own earlier send, or
#: before). About You documents item errors only as free text ("Error message if and
#: why the operation failed", CancelOrderResultItemSchema), so this matches wording,
#: either spelling; the live API's exact text is UNCONFIRMED.
ALREADY_CANCELLED = re.compile(r"\balready\s+(?:been\s+)?cancel+ed\b", re.IGNORECASE)
#: For how long (seconds) after About You gave us a batch id a results 404 for it
#: still means "not visible yet" (``accepted``) rather than lost (``unknown``). About
#: You documents no delay between queuing a batch and its results; two minutes is
#: many polls (200 a minute are allowed) and far longer than batches take to appear.
RESULTS_NOT_FOUND_GRACE_SECONDS = 120.0
#: Batch ids remembered per adapter (oldest forgotten first), for the grace above.
BATCHES_REMEMBERED = 10_000
#: The answer header holding About You's id for a request (``details["request_id"]``).
#: UNCONFIRMED: the Sellers Center OpenAPI (seed 003) and its rate-limiting page name
#: only X-RateLimit-Limit / X-RateLimit-Remaining; X-Request-Id is the common convention.
REQUEST_ID_HEADERS = ("X-Request-Id",)

SETTINGS = (
    Setting("base_url", "API base URL", DEFAULT_BASE_URL, kind="url"),
    Setting(
        "api_key", "your Sellers Center API key (the sandbox key for the sandbox)", secret=True
    ),
    Setting("timeout", "read timeout in seconds", kind="seconds"),
    Setting("poll_interval", "first wait between result polls (send --wait)", "2", kind="seconds"),
    # No default value here: unset means the documented CANCEL_LIMIT_PER_MINUTE per 60 s.
    Setting(
        "cancel_limit",
        f"cancels allowed per API key, LIMIT/SECONDS (default {CANCEL_LIMIT_PER_MINUTE}/60, "
        "the documented limit; set it if your account has another)",
    ),
)


def cancel_limit(settings: Settings) -> tuple[int, float]:
    """``(limit, window seconds)`` of the cancel endpoint: the ``cancel_limit`` setting,
    else the documented 50 per 60 s. ConfigurationError naming the setting if malformed."""
    value = (settings.get("cancel_limit") or "").strip()
    if not value:
        return CANCEL_LIMIT_PER_MINUTE, 60.0
    found = _CANCEL_LIMIT.fullmatch(value)
    limit, window = (int(found[1]), float(found[2])) if found else (0, 0.0)
    if not (limit >= 1 and 0 < window <= 86400):
        raise ConfigurationError(
            "aboutyou: setting cancel_limit (CANCELKIT_ABOUTYOU_CANCEL_LIMIT) must be "
            f"LIMIT/SECONDS, at least 1 cancel per 0 < SECONDS <= 86400, e.g. 50/60; "
            f"got {value[:40]!r}"
        )
    return limit, window


class AboutYouOptions(Schema):
    """``options`` for aboutyou: the unit item ids behind a line."""

    class Meta:
        unknown = RAISE

    item_ids = fields.Dict(
        keys=fields.String(),
        values=fields.List(
            fields.Integer(strict=True, validate=validate.Range(min=1)),
            validate=validate.Length(min=1),
        ),
        load_default=dict,
    )


#: Longest item id a ``line_id`` may spell: 18 digits, as for integers in the input
#: (options.item_ids), and never so long that ``int()`` refuses or crawls.
MAX_ITEM_ID_DIGITS = 18


def _as_item_id(text: str) -> int | None:
    """``"123"`` -> 123; anything that is not a positive integer -> None."""
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_ITEM_ID_DIGITS:
        return None
    return int(text) if int(text) >= 1 else None


class AboutYouAdapter(PlatformAdapter):
    """About You Sellers Center: asynchronous, deduplicated batch cancel."""

    name = "aboutyou"
    title = "About You Sellers Center (batch cancel)"
    request_id_headers = REQUEST_ID_HEADERS
    options_schema: ClassVar[type[Schema]] = AboutYouOptions
    capabilities = Capabilities(
        mode="async",
        fractional_quantity=False,
        settings=SETTINGS,
        rate_limit=(
            f"{CANCEL_LIMIT_PER_MINUTE} cancels (setting cancel_limit) and "
            f"{RESULTS_LIMIT_PER_MINUTE} result polls per minute per API key, "
            "enforced client-side"
        ),
        # "Identical payloads from the same merchant within the deduplication window
        # return the existing in-flight ID instead of queuing a new batch."
        resend_safe=True,
        has_status=True,
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: Times batch ids were given to us (this process only), read by ``clock``.
        self.clock = clock
        self._queued_at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    # -- lines -> items ----------------------------------------------------------
    def problems(self, request: CancelRequest) -> list[FieldError]:
        """Base checks, plus every line must map to positive integer item ids."""
        found = super().problems(request)
        if any(e.path.startswith("options") for e in found):
            return found
        mapping = self.options(request)["item_ids"]
        seen: dict[int, int] = {}
        for index, line in enumerate(request.lines):
            ids = mapping.get(line.line_id)
            if ids is None:
                item = _as_item_id(line.line_id)
                if item is None:
                    found.append(
                        FieldError(
                            f"lines[{index}].line_id",
                            f"{line.line_id!r} is not an About You order item id (a positive "
                            "integer); give the line's item ids in options.item_ids",
                        )
                    )
                    continue
                ids = [item]
            if Decimal(len(ids)) != line.quantity:
                found.append(
                    FieldError(
                        f"lines[{index}].quantity",
                        f"{line.quantity} does not match the {len(ids)} item id(s) of this line "
                        "(About You items are single units)",
                    )
                )
            for item in ids:
                if item in seen:
                    found.append(
                        FieldError(f"lines[{index}]", f"item {item} is also in lines[{seen[item]}]")
                    )
                seen.setdefault(item, index)
        unused = set(mapping) - {line.line_id for line in request.lines}
        found.extend(
            FieldError(f"options.item_ids.{key}", "no line has this line_id")
            for key in sorted(unused)
        )
        return found

    def item_ids(self, request: CancelRequest) -> list[int]:
        """Every item id the request cancels, in line order."""
        mapping = self.options(request)["item_ids"]
        ids: list[int] = []
        for line in request.lines:
            ids.extend(mapping.get(line.line_id) or [int(line.line_id)])
        return ids

    # -- the calls ------------------------------------------------------------
    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``POST {base}/orders/cancel`` with ``{"items": [{"id": ...}]}``."""
        return HttpCall(
            "POST",
            join_url(settings["base_url"], "orders", "cancel"),
            json_headers(API_KEY_HEADER),
            {"items": [{"id": item} for item in self.item_ids(request)]},
        )

    def status_call(self, tracking_id: str, settings: Settings) -> HttpCall:
        """``GET {base}/results/cancel-orders?batch_request_id=...``."""
        return HttpCall(
            "GET",
            join_url(
                settings["base_url"],
                "results",
                "cancel-orders",
                query={"batch_request_id": tracking_id},
            ),
            json_headers(API_KEY_HEADER, body=False),
        )

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        """The API key header."""
        return StaticHeaders({"X-API-Key": settings.require("api_key")})

    def rate_limiter(self, call: HttpCall, settings: Settings) -> RateLimiter | None:
        """50 cancels (or ``cancel_limit``) and 200 result polls per minute per API key
        (shared via limiter_url)."""
        key = settings.get("api_key") or ""
        if call.method == "POST":
            limit, window = cancel_limit(settings)
            return shared_limiter(self.name, "cancel", key, limit, window)
        return shared_limiter(self.name, "results", key, RESULTS_LIMIT_PER_MINUTE, 60.0)

    def poll_backoff(self) -> tuple[float, float]:
        """Polls stretch by half each time, up to 30 seconds."""
        return (1.5, 30.0)

    # -- answers -----------------------------------------------------------------
    def response_details(self, response: HttpResponse) -> dict[str, Any]:
        """``X-RateLimit-Limit`` / ``-Remaining`` of every answer, as integers."""
        found = {}
        for header, key in (
            ("X-RateLimit-Limit", "rate_limit_limit"),
            ("X-RateLimit-Remaining", "rate_limit_remaining"),
        ):
            value = response.header(header)
            if value is not None and value.strip().isdigit():
                found[key] = int(value)
        return found

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """200 batch id -> accepted; 400 -> rejected (core handles 429, 5xx, odd bodies)."""
        status, payload = response.status, response.json()
        if status == 200 and isinstance(payload, Mapping) and payload.get("batchRequestId"):
            batch_id = str(payload["batchRequestId"])
            self._remember(batch_id)
            return accepted_result(self.name, request, batch_id, status)
        if 200 <= status < 300:
            return self.unknown(request, f"HTTP {status} without a batch id", status)
        message = payload.get("message") if isinstance(payload, Mapping) else None
        error = ResultError(str(message or f"HTTP {status}"), f"HTTP_{status}")
        return rejected_result(self.name, request, (error,), status)

    def normalise_status(self, tracking_id: str, response: HttpResponse) -> CancelResult:
        """pending/processing/retry -> accepted; completed -> per item; failed -> rejected.

        An item that failed only because it is already cancelled counts as cancelled,
        with a warning. A 404 for a batch we were given less than
        :data:`RESULTS_NOT_FOUND_GRACE_SECONDS` ago is ``accepted`` (results not
        visible yet), later ``unknown``; a 404 for any other id is ``rejected``.
        """
        status, payload = response.status, response.json()
        if status == 404:
            since = self._since_queued(tracking_id)
            if since is not None:
                return self._not_found_yet(tracking_id, since)
        if status != 200 or not isinstance(payload, Mapping):
            message = payload.get("message") if isinstance(payload, Mapping) else None
            outcome: Outcome = "rejected" if status in (400, 404) else "unknown"
            return CancelResult(
                platform=self.name,
                outcome=outcome,
                tracking_id=tracking_id,
                http_status=status,
                errors=(ResultError(str(message or f"HTTP {status}"), f"HTTP_{status}"),),
                message=f"results unavailable (HTTP {status}); ask again later"
                if outcome == "unknown"
                else str(message or f"HTTP {status}"),
            )
        batch_status = str(payload.get("status"))
        items = payload.get("items")
        if not isinstance(items, list):  # an odd answer must not cost the result
            items = []
        read = [_item_result(item) for item in items if isinstance(item, Mapping)]
        lines = tuple(line for line, _ in read)
        warnings = tuple(warning for _, warning in read if warning)
        final: Outcome
        if batch_status in PENDING_STATUSES:
            final = "accepted"
        elif batch_status == "completed":
            final = combined_outcome(lines)
        elif batch_status == "failed":
            final = "rejected"
        else:
            final = "unknown"
        return CancelResult(
            platform=self.name,
            outcome=final,
            tracking_id=tracking_id,
            lines=lines,
            errors=tuple(e for line in lines for e in line.errors),
            warnings=warnings,
            http_status=status,
            details={"batch_status": batch_status},
            message=f"batch {batch_status}",
        )

    def _remember(self, batch_id: str) -> None:
        with self._lock:
            self._queued_at.pop(batch_id, None)
            self._queued_at[batch_id] = self.clock()
            while len(self._queued_at) > BATCHES_REMEMBERED:
                self._queued_at.popitem(last=False)

    def _since_queued(self, batch_id: str) -> float | None:
        """Seconds since About You gave us ``batch_id``; None if it never did (here)."""
        with self._lock:
            queued = self._queued_at.get(batch_id)
        return None if queued is None else max(self.clock() - queued, 0.0)

    def _not_found_yet(self, batch_id: str, since: float) -> CancelResult:
        """A results 404 for our own batch: pending within the grace, unknown after."""
        if since < RESULTS_NOT_FOUND_GRACE_SECONDS:
            return CancelResult(
                platform=self.name,
                outcome="accepted",
                tracking_id=batch_id,
                http_status=404,
                details={"batch_status": None},
                message=(
                    f"batch {batch_id} has no results yet (HTTP 404 {since:.0f} s after it "
                    "was queued); ask again"
                ),
            )
        return CancelResult(
            platform=self.name,
            outcome="unknown",
            tracking_id=batch_id,
            http_status=404,
            errors=(ResultError(f"no results for batch {batch_id}", "HTTP_404"),),
            message=(
                f"batch {batch_id} was queued {since:.0f} s ago but About You has no results "
                "for it (HTTP 404); GET /orders/ shows whether its items are cancelled"
            ),
        )

    def how_to_check(self, request: CancelRequest) -> str:
        """Resending is safe here; or look at the items."""
        return (
            "resend the same request (About You returns the in-flight batch for an "
            "identical payload; once that batch is done, items already cancelled are "
            "reported as cancelled), or GET /orders/ and look at the items' status"
        )


def _item_result(item: Mapping[str, Any]) -> tuple[LineResult, str | None]:
    """One item's line result, and a warning when "already cancelled" counted as done."""
    request_item = item.get("requestItem")
    item_id = request_item.get("id") if isinstance(request_item, Mapping) else None
    messages = [str(e) for e in item.get("errors") or () if e]
    if item.get("success") is True:
        return LineResult(str(item_id), Decimal(1), "cancelled"), None
    if messages and all(ALREADY_CANCELLED.search(m) for m in messages):
        # The goal state is reached: by our first send (whose answer we lost) or earlier.
        warning = f"item {item_id}: {'; '.join(messages)}; counted as cancelled"
        return LineResult(str(item_id), Decimal(1), "cancelled"), warning
    errors = tuple(ResultError(m, "ITEM_NOT_CANCELLED") for m in messages)
    return (
        LineResult(
            str(item_id),
            Decimal(1),
            "rejected",
            errors or (ResultError("not cancelled", "ITEM_NOT_CANCELLED"),),
        ),
        None,
    )
