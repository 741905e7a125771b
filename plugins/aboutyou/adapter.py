"""About You Sellers Center: ``POST /orders/cancel`` and ``GET /results/cancel-orders``.

Source: seed 003 (OpenAPI 3.1 fragment), shared/platforms part B.

How canonical lines map to About You order items: an About You order item is one
unit, addressed by a positive integer id, and the cancel takes item ids only. So a
line is either one item (``line_id`` is the item id, ``quantity`` 1), or carries its
unit item ids in ``options.item_ids[line_id]`` (as many ids as ``quantity``).
"""

from __future__ import annotations

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
    FieldError,
    HttpCall,
    HttpResponse,
    LineResult,
    Outcome,
    PlatformAdapter,
    ResultError,
    Setting,
    Settings,
    SlidingWindowLimiter,
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
#: Documented per-API-key limits (requests per minute).
CANCEL_LIMIT_PER_MINUTE = 50
RESULTS_LIMIT_PER_MINUTE = 200
#: Results ``status`` -> canonical outcome while not completed.
PENDING_STATUSES = ("pending", "processing", "retry")

SETTINGS = (
    Setting("base_url", "API base URL", DEFAULT_BASE_URL, kind="url"),
    Setting(
        "api_key", "your Sellers Center API key (the sandbox key for the sandbox)", secret=True
    ),
    Setting("timeout", "read timeout in seconds", kind="seconds"),
    Setting("poll_interval", "first wait between result polls (send --wait)", "2", kind="seconds"),
)


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
    options_schema: ClassVar[type[Schema]] = AboutYouOptions
    capabilities = Capabilities(
        mode="async",
        fractional_quantity=False,
        settings=SETTINGS,
        rate_limit=(
            f"{CANCEL_LIMIT_PER_MINUTE} cancels and {RESULTS_LIMIT_PER_MINUTE} result "
            "polls per minute per API key, enforced client-side"
        ),
        # "Identical payloads from the same merchant within the deduplication window
        # return the existing in-flight ID instead of queuing a new batch."
        resend_safe=True,
        has_status=True,
    )

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

    def rate_limiter(self, call: HttpCall, settings: Settings) -> SlidingWindowLimiter | None:
        """50 cancels and 200 result polls per minute per API key, in this process."""
        key = settings.get("api_key") or ""
        if call.method == "POST":
            return shared_limiter(self.name, "cancel", key, CANCEL_LIMIT_PER_MINUTE, 60.0)
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
            return accepted_result(self.name, request, str(payload["batchRequestId"]), status)
        if 200 <= status < 300:
            return self.unknown(request, f"HTTP {status} without a batch id", status)
        message = payload.get("message") if isinstance(payload, Mapping) else None
        error = ResultError(str(message or f"HTTP {status}"), f"HTTP_{status}")
        return rejected_result(self.name, request, (error,), status)

    def normalise_status(self, tracking_id: str, response: HttpResponse) -> CancelResult:
        """pending/processing/retry -> accepted; completed -> per item; failed -> rejected."""
        status, payload = response.status, response.json()
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
        lines = tuple(
            _item_result(item) for item in payload.get("items") or () if isinstance(item, Mapping)
        )
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
            http_status=status,
            details={"batch_status": batch_status},
            message=f"batch {batch_status}",
        )

    def how_to_check(self, request: CancelRequest) -> str:
        """Resending is safe here; or look at the items."""
        return (
            "resend the same request (About You returns the in-flight batch for an "
            "identical payload), or GET /orders/ and look at the items' status"
        )


def _item_result(item: Mapping[str, Any]) -> LineResult:
    request_item = item.get("requestItem")
    item_id = request_item.get("id") if isinstance(request_item, Mapping) else None
    errors = tuple(ResultError(str(e), "ITEM_NOT_CANCELLED") for e in item.get("errors") or () if e)
    ok = item.get("success") is True
    return LineResult(
        str(item_id),
        Decimal(1),
        "cancelled" if ok else "rejected",
        () if ok else errors or (ResultError("not cancelled", "ITEM_NOT_CANCELLED"),),
    )
