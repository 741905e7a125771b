"""Carriyo: ``POST /orders/{ref}/fulfillment-orders/{fo}/cancel?key=...``.

Source: seed 002 (cancel-fulfillment-order-line-items), shared/platforms part A.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, fields, validate

from cancelkit.plugin import (
    BEARER,
    MASK,
    Authenticator,
    CancelRequest,
    CancelResult,
    Capabilities,
    ClientCredentialsToken,
    ConfigurationError,
    FieldError,
    HttpCall,
    HttpResponse,
    InvalidRequestError,
    Line,
    LineResult,
    PlatformAdapter,
    ResultError,
    Setting,
    Settings,
    StaticHeaders,
    combined_outcome,
    join_url,
    json_headers,
    rejected_result,
)

BASE_URLS = {"production": "https://api.carriyo.com", "demo": "https://demo-api.carriyo.com"}

#: The key that names the order line item inside ``line_items[]``: the one place the
#: adapter decides it (the emulator reads its own from the published contract, so a
#: wrong key here fails the tests). UNCONFIRMED for the cancel operation: its item
#: schema ("Fulfillment Order Line Item Request", seed 002) is not expanded on the
#: page, and Carriyo's docs disagree on the sibling fulfill operation.
#: - ``line_item_id``: the Redoc request samples generated from the Orders OpenAPI
#:   document for fulfill and split, ``{"line_items": [{"line_item_id": "string",
#:   "quantity": 0}]}`` (shared/platforms part A).
#: - ``id``: the fulfill page's prose, "Each item needs id matching an order line
#:   item" (carriyo.com/docs/api/orders/operation/fulfill-order), and the hand-written
#:   recipe ``{"id": "line-kbd", "quantity": 1}``
#:   (carriyo.com/docs/recipes/fulfillment/fulfill-fulfillment-order/).
#: We follow the samples generated from the schema itself; prose and recipe are
#: written by hand, for another operation. Change this one constant (and the
#: contract, which cites the same sources) if your account answers otherwise.
LINE_ITEM_ID_KEY = "line_item_id"

#: Canonical reason -> Carriyo ``cancellation_reason``; anything else -> OTHER (warned).
REASON_MAP = {
    "CUSTOMER_REQUEST": "CUSTOMER_CANCELLATION",
    "OUT_OF_STOCK": "INVENTORY_OUT_OF_STOCK",
    "ALLOCATION_FAILED": "AUTO_ALLOCATION_FAILED",
    "STAFF_ERROR": "STAFF_ERROR",
    "PAYMENT_ISSUE": "PAYMENT_ISSUE",
    "OTHER": "OTHER",
}
PLATFORM_REASONS = (
    "CUSTOMER_CANCELLATION",
    "AUTO_ALLOCATION_FAILED",
    "INVENTORY_OUT_OF_STOCK",
    "STAFF_ERROR",
    "PAYMENT_ISSUE",
    "OTHER",
)
#: Fulfillment order line item statuses (carriyo.com/docs/api/orders/fulfillment-orders/).
LINE_ITEM_STATUSES = (
    "open",
    "allocated",
    "pick_in_progress",
    "picked",
    "pack_in_progress",
    "fulfilled",
    "cancelled",
    "closed",
)
#: The ones that can still be cancelled (seed 002).
CANCELLABLE_STATUSES = ("open", "allocated")

# ``scope: all_pending`` lists the pending items too. Two of three public sources
# require ``line_items`` on the cancel call: the operation page's "Request
# Requirements (All Required)" (seed 002) and Carriyo's MCP tool
# cancel_fulfillment_order_items ("line_items array Yes", carriyo.com/docs/mcp/tools/
# fulfillment-orders/cancel-fulfillment-order-items/); only the page's field text says
# "Omit to cancel all pending items". A body that lists the pending items satisfies all
# three, so the order is read first (GET /orders/{ref}, operation get-order: the
# lookup_call) and its open or allocated items are listed (complete).

#: Answer headers holding Carriyo's id for a request (``details["request_id"]``), the
#: first present wins. UNCONFIRMED: Carriyo's API conventions page names no request id
#: header. X-Request-Id is the common convention; X-Amzn-RequestId is what AWS API
#: Gateway sends, which Carriyo's x-api-key scheme suggests (an inference, not a fact).
REQUEST_ID_HEADERS = ("X-Request-Id", "X-Amzn-RequestId")

SETTINGS = (
    Setting("base_url", "API base URL; overrides environment", kind="url"),
    Setting("environment", "production or demo", "production"),
    Setting("tenant_id", "your Carriyo tenant", secret=True),
    Setting("api_key", "your Carriyo API key", secret=True),
    Setting("access_token", "a bearer token given directly", secret=True),
    Setting("client_id", "OAuth client id"),
    Setting("client_secret", "OAuth client secret", secret=True),
    Setting("timeout", "read timeout in seconds", kind="seconds"),
)


class CarriyoOptions(Schema):
    """``options`` for carriyo: which reference ``order_id`` holds."""

    class Meta:
        unknown = RAISE

    key = fields.String(
        load_default="order_id",
        validate=validate.OneOf(("order_id", "partner_order_reference")),
    )


def _base_url(settings: Settings) -> str:
    """``base_url`` if set, else the host of ``environment`` (production or demo)."""
    if settings.get("base_url"):
        return settings["base_url"]
    environment = settings["environment"]
    if environment not in BASE_URLS:
        raise ConfigurationError(
            f"carriyo: environment must be production or demo, not {environment!r}"
        )
    return BASE_URLS[environment]


class CarriyoAdapter(PlatformAdapter):
    """Carriyo fulfillment-order line-item cancel (synchronous)."""

    name = "carriyo"
    title = "Carriyo (fulfillment order cancel)"
    request_id_headers = REQUEST_ID_HEADERS
    options_schema: ClassVar[type[Schema]] = CarriyoOptions
    capabilities = Capabilities(
        mode="sync",
        fractional_quantity=False,
        reasons=REASON_MAP,
        platform_reasons=PLATFORM_REASONS,
        other_reason="OTHER",
        required_fields=("order_id", "fulfillment_order_id", "reason"),
        settings=SETTINGS,
        rate_limit="not documented; 429 and Retry-After handled generically",
        resend_safe=False,
        all_pending=True,
    )

    def problems(self, request: CancelRequest) -> list[FieldError]:
        """Base checks, plus: Carriyo takes one reason per call and needs the lines listed."""
        found = super().problems(request)
        if found:
            return found
        values = {self.reason_value(request, line) for line in request.lines}
        if len(values) > 1:
            found.append(
                FieldError(
                    "lines",
                    f"carriyo takes one cancellation reason per request, got "
                    f"{', '.join(sorted(v for v in values if v))}",
                )
            )
        return found

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``POST {base}/orders/{ref}/fulfillment-orders/{fo}/cancel?key=...``."""
        assert request.order_id and request.fulfillment_order_id and request.scope == "lines"
        body: dict[str, Any] = {
            "cancellation_reason": self.reason_value(request, request.lines[0]),
            # Always listed: required by two of the three sources (see above).
            "line_items": [
                {LINE_ITEM_ID_KEY: line.line_id, "quantity": int(line.quantity)}
                for line in request.lines
            ],
        }
        url = join_url(
            _base_url(settings),
            "orders",
            request.order_id,
            "fulfillment-orders",
            request.fulfillment_order_id,
            "cancel",
            query={"key": self.options(request)["key"]},
        )
        auth = {**BEARER, "tenant-id": MASK, "x-api-key": MASK}
        return HttpCall("POST", url, json_headers(auth), body)

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        """tenant-id and x-api-key always; bearer given directly or from ``/oauth/token``."""
        keys = {
            "tenant-id": settings.require("tenant_id"),
            "x-api-key": settings.require("api_key"),
        }
        if settings.get("access_token"):
            return StaticHeaders({**keys, "Authorization": f"Bearer {settings['access_token']}"})
        if not (settings.get("client_id") or settings.get("client_secret")):
            raise ConfigurationError(
                "carriyo: no credentials; set CANCELKIT_CARRIYO_ACCESS_TOKEN, or "
                "CANCELKIT_CARRIYO_CLIENT_ID and CANCELKIT_CARRIYO_CLIENT_SECRET"
            )
        return ClientCredentialsToken(
            f"{_base_url(settings).rstrip('/')}/oauth/token",
            {
                "client_id": settings.require("client_id"),
                "client_secret": settings.require("client_secret"),
            },
            encoding="json",
            platform=self.name,
            clock=clock,
            header=lambda token: {**keys, "Authorization": f"Bearer {token}"},
        )

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """200 -> per-line outcome from the returned order; 400/404 -> rejected."""
        status, payload = response.status, response.json()
        if status == 200 and isinstance(payload, Mapping):
            fulfillment_order = _find_fulfillment_order(payload, request.fulfillment_order_id)
            if fulfillment_order is not None:
                return self._from_order(request, payload, fulfillment_order)
            return self.unknown(request, "the answer does not contain the fulfillment order", 200)
        if 200 <= status < 300:
            return self.unknown(request, f"HTTP {status} without a readable order", status)
        return rejected_result(self.name, request, _error_items(payload, status), status)

    def _from_order(
        self, request: CancelRequest, order: Mapping[str, Any], fo: Mapping[str, Any]
    ) -> CancelResult:
        cancelled = _cancelled_quantities(fo)
        lines = tuple(
            self._line_outcome(line.line_id, line.quantity, cancelled, order)
            for line in request.lines
        )
        outcome = combined_outcome(lines)
        errors = tuple(e for line in lines for e in line.errors)
        return CancelResult(
            platform=self.name,
            outcome=outcome,
            lines=lines,
            errors=errors,
            http_status=200,
            message=f"fulfillment order {fo.get('fulfillment_order_id')} is now "
            f"{fo.get('status')}; order {order.get('status')}",
            details={
                "fulfillment_order_status": fo.get("status"),
                "order_status": order.get("status"),
            },
        )

    @staticmethod
    def _line_outcome(
        line_id: str, quantity: Decimal, cancelled: Mapping[str, Decimal], order: Mapping[str, Any]
    ) -> LineResult:
        # The fulfillment order's cancelled items are the evidence; the order line's
        # removed_quantities only confirms. A line without enough cancelled quantity
        # is never reported as cancelled.
        got = cancelled.get(line_id, Decimal(0))
        if got >= quantity:
            return LineResult(line_id, quantity, "cancelled")
        removed = _removed_quantity(order, line_id)
        why = (
            f"the returned order shows {got:g} of {quantity:g} cancelled on this "
            f"fulfillment order (removed_quantities: {removed:g})"
        )
        return LineResult(line_id, quantity, "rejected", (ResultError(why, "NOT_CANCELLED"),))

    def lookup_call(self, request: CancelRequest, settings: Settings) -> HttpCall | None:
        """For ``scope: all_pending``, the order read whose pending items to list."""
        return (
            self.pending_lines_call(request, settings) if request.scope == "all_pending" else None
        )

    def complete(self, request: CancelRequest, answer: HttpResponse) -> CancelRequest:
        """The ``all_pending`` request with the order's pending items listed."""
        order = answer.json()
        if not isinstance(order, Mapping):
            raise InvalidRequestError(
                FieldError(
                    "scope", f"carriyo answered the order read with no order: {answer.text[:80]!r}"
                )
            )
        return self.with_pending_lines(request, order)

    def pending_lines_call(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``GET {base}/orders/{ref}?key=...``: the order whose pending items to list.

        Operation get-order: 200 the full order, 404 not found
        (carriyo.com/docs/api/orders/operation/get-order).
        """
        assert request.order_id
        url = join_url(
            _base_url(settings),
            "orders",
            request.order_id,
            query={"key": self.options(request)["key"]},
        )
        auth = {**BEARER, "tenant-id": MASK, "x-api-key": MASK}
        return HttpCall("GET", url, json_headers(auth, body=False))

    def with_pending_lines(self, request: CancelRequest, order: Mapping[str, Any]) -> CancelRequest:
        """``request`` with scope ``lines``: every pending item of its fulfillment order.

        ``order`` is the answer to :meth:`pending_lines_call`. A line split over
        several items counts once, with their quantities added. Raises
        InvalidRequestError when the order has no such fulfillment order or nothing
        pending on it (a cancel would only be refused).
        """
        fo = _find_fulfillment_order(order, request.fulfillment_order_id)
        if fo is None:
            raise InvalidRequestError(
                FieldError("fulfillment_order_id", f"not in carriyo order {request.order_id}")
            )
        pending: dict[str, Decimal] = {}
        for item in fo.get("line_items") or ():
            if not isinstance(item, Mapping) or item.get("status") not in CANCELLABLE_STATUSES:
                continue
            line_id = _item_line_id(item)
            if line_id is not None:
                pending[line_id] = pending.get(line_id, Decimal(0)) + _number(item.get("quantity"))
        lines = tuple(Line(line_id, qty) for line_id, qty in pending.items() if qty > 0)
        if not lines:
            raise InvalidRequestError(
                FieldError(
                    "scope",
                    f"carriyo fulfillment order {request.fulfillment_order_id} has no line "
                    "items in status open or allocated",
                )
            )
        return replace(request, scope="lines", lines=lines)

    def how_to_check(self, request: CancelRequest) -> str:
        """The order, by the same reference and key."""
        key = request.options.get("key", "order_id")
        return (
            f"GET /orders/{request.order_id}?key={key} and look at fulfillment order "
            f"{request.fulfillment_order_id}'s line item statuses"
        )


def _find_fulfillment_order(
    order: Mapping[str, Any], fo_id: str | None
) -> Mapping[str, Any] | None:
    for fo in order.get("fulfillment_orders") or ():
        if isinstance(fo, Mapping) and fo.get("fulfillment_order_id") == fo_id:
            return fo
    return None


def _number(value: Any) -> Decimal:
    try:
        return (
            Decimal(str(value)) if value is not None and not isinstance(value, bool) else Decimal(0)
        )
    except ArithmeticError:
        return Decimal(0)


def _cancelled_quantities(fo: Mapping[str, Any]) -> dict[str, Decimal]:
    """line item id -> quantity in status ``cancelled`` on this fulfillment order."""
    totals: dict[str, Decimal] = {}
    for item in fo.get("line_items") or ():
        if not isinstance(item, Mapping) or item.get("status") != "cancelled":
            continue
        line_id = _item_line_id(item)
        if line_id is not None:
            totals[line_id] = totals.get(line_id, Decimal(0)) + _number(item.get("quantity"))
    return totals


def _item_line_id(item: Mapping[str, Any]) -> str | None:
    """The order line a fulfillment-order line item belongs to.

    The answer's item shape is UNCONFIRMED (seed 002 shows ``line_items: [...]``
    collapsed), so both candidate keys are read.
    """
    line_id = item.get(LINE_ITEM_ID_KEY) or item.get("id")
    return line_id if isinstance(line_id, str) else None


def _removed_quantity(order: Mapping[str, Any], line_id: str) -> Decimal:
    """The order line's ``removed_quantities``: a number, a list of records, or a map."""
    for line in order.get("line_items") or ():
        if isinstance(line, Mapping) and line.get("id") == line_id:
            removed = line.get("removed_quantities")
            if isinstance(removed, list):
                return sum(
                    (_number(r.get("quantity")) for r in removed if isinstance(r, Mapping)),
                    Decimal(0),
                )
            if isinstance(removed, Mapping):
                return sum((_number(v) for v in removed.values()), Decimal(0))
            return _number(removed)
    return Decimal(0)


def _error_items(payload: Any, status: int) -> tuple[ResultError, ...]:
    """Carriyo errors: ``errors: ["field : message"]``, ``error_details``, or ``message``."""
    found: list[ResultError] = []
    code = "NOT_FOUND" if status == 404 else f"HTTP_{status}"
    if isinstance(payload, Mapping):
        listed = payload.get("errors")
        for item in listed if isinstance(listed, list) else ():
            if isinstance(item, str):
                field, sep, message = item.partition(" : ")
                found.append(ResultError(message, code, field) if sep else ResultError(item, code))
        details = payload.get("error_details")
        for item in details if isinstance(details, list) else ():
            if isinstance(item, Mapping):
                found.append(
                    ResultError(
                        str(item.get("message") or item.get("description") or item),
                        str(item.get("code") or code),
                        str(item["field"]) if item.get("field") else None,
                    )
                )
            elif isinstance(item, str):
                found.append(ResultError(item, code))
        if not found and isinstance(payload.get("message"), str):
            found.append(ResultError(payload["message"], code))
    return tuple(found) or (ResultError(f"HTTP {status} without a Carriyo error body", code),)
