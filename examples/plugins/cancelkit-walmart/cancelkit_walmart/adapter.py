"""Walmart Marketplace (US): ``POST /v3/orders/{purchaseOrderId}/cancel``.

Facts and their sources: shared/platforms/walmart.md; the keys in brackets
([W-ref], [HSL]...) are that file's. Where Walmart's documents disagree or say
nothing, the choice is one constant below, with its reason; the package README
lists them all.

A cancel is synchronous: a 200 returns the updated order, and each requested line
counts as cancelled only when that order shows at least the requested quantity of
it in status ``Cancelled``.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from cancelkit.plugin import (
    MASK,
    Authenticator,
    CancelRequest,
    CancelResult,
    Capabilities,
    ClientCredentialsToken,
    FieldError,
    HttpCall,
    HttpResponse,
    LineResult,
    PlatformAdapter,
    RateLimiter,
    ResultError,
    Setting,
    Settings,
    combined_outcome,
    join_url,
    json_headers,
    rejected_result,
    shared_limiter,
)

#: Production host [W-ref][W-guide]; Walmart's own sandbox is https://sandbox.walmartapis.com.
DEFAULT_BASE_URL = "https://marketplace.walmartapis.com"
#: Every business call carries the token here, raw, with no ``Bearer`` prefix [W-token-guide].
#: The raw form is inferred: the spec models it as an apiKey header [HSL auth].
TOKEN_HEADER = "WM_SEC.ACCESS_TOKEN"
CORRELATION_HEADER = "WM_QOS.CORRELATION_ID"
SERVICE_HEADER = "WM_SVC.NAME"
#: ``WM_SVC.NAME``: "Walmart Service Name"; every sample sends this value [W-ref][W-guide].
SERVICE_NAME = "Walmart Marketplace"
CHANNEL_HEADER = "WM_CONSUMER.CHANNEL.TYPE"
#: Seconds an access token lives when the answer does not say: 15 minutes [W-token-guide].
TOKEN_LIFETIME = 900.0
#: "At most 100 order lines per request" [W-faq-orders].
MAX_LINES_PER_REQUEST = 100
#: Cancel order lines: 60 requests a minute. DOCUMENTED-SECONDHAND: read in a third-party
#: copy of Walmart's US rate-limit table [RL-TSV], not on Walmart's own page.
CANCELS_PER_MINUTE = 60
#: ``statusQuantity.unitOfMeasurement``. CHOICE: the enum takes ``EACH`` and ``EA``
#: [HSL]; the guide sample and every response use ``EACH`` [W-guide], so we send that.
UNIT_OF_MEASUREMENT = "EACH"
#: The whole ``cancellationReason`` enum [HSL] (there is no "other" value).
CANCELLATION_REASONS = (
    "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
    "SELLER_CANCEL_PRICING_ERROR",
    "SELLER_CANCEL_OUT_OF_STOCK",
    "SELLER_CANCEL_FRAUD_STOP_SHIPMENT",
    "SELLER_CANCEL_ADDRESS_NOT_SERVICEABLE",
)
#: Canonical reason -> Walmart value, where one is faithful [W-reasons]. Core refuses
#: the others, listing these; SELLER_CANCEL_PRICING_ERROR has no canonical twin and is
#: sent as ``platform_reason``.
REASON_MAP = {
    "CUSTOMER_REQUEST": "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
    "OUT_OF_STOCK": "SELLER_CANCEL_OUT_OF_STOCK",
    "UNABLE_TO_DELIVER": "SELLER_CANCEL_ADDRESS_NOT_SERVICEABLE",
    # "Only if there is confirmation that the order was fraudulent" [W-reasons].
    "FRAUD": "SELLER_CANCEL_FRAUD_STOP_SHIPMENT",
}
#: Rate headers read from every answer, case-insensitively: the calls left in the window,
#: and when it refills (format undocumented: kept as given). Documented for Walmart's
#: supplier APIs [W-rate-supplier]; that Marketplace sends them is inferred.
TOKEN_COUNT_HEADER = "X-Current-Token-Count"
REPLENISHMENT_HEADER = "X-Next-Replenishment-Time"
#: A quantity as Walmart writes it (a string such as "1"); anything else counts as none.
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
_SEQUENTIAL = uuid.UUID("8a3d0c52-1f7e-4b6a-9c1d-5e2f7a9b3c40")

SETTINGS = (
    Setting("base_url", "API base URL", DEFAULT_BASE_URL, kind="url"),
    Setting("client_id", "Client ID (Developer Portal, API keys)"),
    Setting("client_secret", "Client Secret", secret=True),
    Setting("consumer_channel_type", "WM_CONSUMER.CHANNEL.TYPE, solution providers only"),
    Setting("timeout", "read timeout in seconds", kind="seconds"),
    Setting(
        "correlation_ids",
        "random (a new UUID per call, as Walmart asks) or sequential (reproducible "
        "sandbox recordings only)",
        "random",
    ),
)


def correlation_ids(mode: str | None) -> Callable[[], str]:
    """A source of ``WM_QOS.CORRELATION_ID`` values: random UUIDs, or numbered ones."""
    if mode != "sequential":
        return lambda: str(uuid.uuid4())
    numbers = itertools.count(1)
    return lambda: str(uuid.uuid5(_SEQUENTIAL, str(next(numbers))))


class WalmartToken(ClientCredentialsToken):
    """Walmart's Token API, and a fresh correlation id on every attempt of every call."""

    def __init__(self, settings: Settings, clock: Callable[[], float], platform: str) -> None:
        self._ids = correlation_ids(settings.get("correlation_ids"))
        super().__init__(
            join_url(settings["base_url"], "v3", "token"),
            {"grant_type": "client_credentials"},
            platform=platform,
            clock=clock,
            header=lambda token: {TOKEN_HEADER: token},
            default_lifetime=TOKEN_LIFETIME,
            # Basic base64(clientId:clientSecret), form grant_type [W-auth-faq][HSL auth].
            basic_auth=(settings.require("client_id"), settings.require("client_secret")),
            token_headers=lambda: {
                "Accept": "application/json",
                SERVICE_HEADER: SERVICE_NAME,
                CORRELATION_HEADER: self._ids(),
            },
        )

    def rebase(self, call: HttpCall) -> HttpCall:
        """The call with its own correlation id: "a unique ID which identifies each API call"."""
        return replace(call, headers={**call.headers, CORRELATION_HEADER: self._ids()})


class WalmartAdapter(PlatformAdapter):
    """Walmart Marketplace (US) seller-fulfilled orders: cancel order lines, synchronously."""

    name = "walmart"
    title = "Walmart Marketplace US (cancel order lines)"
    capabilities = Capabilities(
        mode="sync",
        fractional_quantity=False,
        reasons=REASON_MAP,
        platform_reasons=CANCELLATION_REASONS,
        required_fields=("order_id", "reason"),
        settings=SETTINGS,
        rate_limit=(
            f"{CANCELS_PER_MINUTE} cancels a minute per client id, enforced client-side "
            "(documented second-hand); 429 REQUEST_THRESHOLD_VIOLATED retried by core"
        ),
    )

    def problems(self, request: CancelRequest) -> list[FieldError]:
        """Core's checks, plus Walmart's 100 lines per request."""
        found = super().problems(request)
        if len(request.lines) > MAX_LINES_PER_REQUEST:
            found.append(
                FieldError(
                    "lines",
                    f"walmart takes at most {MAX_LINES_PER_REQUEST} order lines per request, "
                    f"not {len(request.lines)}; send them as several requests",
                )
            )
        return found

    def warnings(self, request: CancelRequest) -> list[str]:
        """Core's warnings, plus the stock side effect of SELLER_CANCEL_OUT_OF_STOCK."""
        sent = {raw or REASON_MAP.get(reason or "") for _, reason, raw in request.reasons()}
        side_effect = (
            "SELLER_CANCEL_OUT_OF_STOCK makes Walmart mark the item out of stock in that "
            "warehouse until you replenish its inventory"
        )
        return super().warnings(request) + (
            [side_effect] if "SELLER_CANCEL_OUT_OF_STOCK" in sent else []
        )

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``POST {base}/v3/orders/{purchaseOrderId}/cancel`` with ``orderCancellation``.

        ``WM_QOS.CORRELATION_ID`` here is an example: each attempt gets its own.
        """
        assert request.order_id is not None
        headers = {
            TOKEN_HEADER: MASK,
            CORRELATION_HEADER: str(uuid.uuid4()),
            SERVICE_HEADER: SERVICE_NAME,
        }
        if settings.get("consumer_channel_type"):
            headers[CHANNEL_HEADER] = settings["consumer_channel_type"]
        lines = [
            {
                "lineNumber": line.line_id,
                "orderLineStatuses": {
                    "orderLineStatus": [
                        {
                            "status": "Cancelled",
                            "cancellationReason": self.reason_value(request, line),
                            "statusQuantity": {
                                "unitOfMeasurement": UNIT_OF_MEASUREMENT,
                                "amount": str(int(line.quantity)),  # a string in every sample
                            },
                        }
                    ]
                },
            }
            for line in request.lines
        ]
        return HttpCall(
            "POST",
            join_url(settings["base_url"], "v3", "orders", request.order_id, "cancel"),
            json_headers(headers),
            {"orderCancellation": {"orderLines": {"orderLine": lines}}},
        )

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        """The Token API with the client id and secret (HTTP Basic)."""
        return WalmartToken(settings, clock, self.name)

    def rate_limiter(self, call: HttpCall, settings: Settings) -> RateLimiter | None:
        """60 cancels a minute per client id, in this process."""
        key = settings.get("client_id") or ""
        return shared_limiter(self.name, "cancel", key, CANCELS_PER_MINUTE, 60.0)

    def response_details(self, response: HttpResponse) -> dict[str, Any]:
        """The rate headers, when present: the count as an integer, the time as given."""
        found: dict[str, Any] = {}
        count = (response.header(TOKEN_COUNT_HEADER) or "").strip()
        if count.isascii() and count.isdigit() and len(count) <= 12:
            found["rate_limit_remaining"] = int(count)
        refill = (response.header(REPLENISHMENT_HEADER) or "").strip()
        if refill and len(refill) <= 40 and refill.isprintable():
            found["rate_limit_replenished_at"] = refill
        return found

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """200 order -> per line; an error body (either documented shape) -> rejected."""
        status, payload = response.status, response.json()
        order = payload.get("order") if isinstance(payload, Mapping) else None
        if status == 200 and isinstance(order, Mapping):
            return self._from_order(request, order)
        if 200 <= status < 300:
            return self.unknown(request, f"HTTP {status} without the updated order", status)
        return rejected_result(self.name, request, error_items(payload, status), status)

    def _from_order(self, request: CancelRequest, order: Mapping[str, Any]) -> CancelResult:
        returned = _order_lines(order)
        lines = []
        for line in request.lines:
            got = cancelled_quantity(returned.get(line.line_id))
            if got >= line.quantity:
                lines.append(LineResult(line.line_id, line.quantity, "cancelled"))
                continue
            why = (
                f"the returned order shows {got:g} of {line.quantity:g} cancelled on line "
                f"{line.line_id}" + ("" if line.line_id in returned else " (line not in it)")
            )
            error = ResultError(why, "NOT_CANCELLED", f"lines[{len(lines)}]")
            lines.append(LineResult(line.line_id, line.quantity, "rejected", (error,)))
        done = sum(line.status == "cancelled" for line in lines)
        return CancelResult(
            platform=self.name,
            outcome=combined_outcome(tuple(lines)),
            lines=tuple(lines),
            errors=tuple(e for line in lines for e in line.errors),
            http_status=200,
            message=f"{done} of {len(lines)} lines cancelled",
            details={"purchase_order_id": str(order.get("purchaseOrderId"))},
        )

    def how_to_check(self, request: CancelRequest) -> str:
        """Read the order: lines already ``Cancelled`` were applied (a resend is refused)."""
        return (
            f"GET /v3/orders/{request.order_id} and read each line's orderLineStatuses "
            "(Walmart refuses to cancel a line twice, so check before resending)"
        )


def _order_lines(order: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``order.orderLines.orderLine[]`` by ``lineNumber``."""
    container = order.get("orderLines")
    items = container.get("orderLine") if isinstance(container, Mapping) else None
    if not isinstance(items, list):
        return {}
    return {str(i.get("lineNumber")): i for i in items if isinstance(i, Mapping)}


def cancelled_quantity(order_line: Mapping[str, Any] | None) -> Decimal:
    """The sum of ``statusQuantity.amount`` over the line's ``Cancelled`` status entries."""
    container = order_line.get("orderLineStatuses") if order_line else None
    entries = container.get("orderLineStatus") if isinstance(container, Mapping) else None
    total = Decimal(0)
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or entry.get("status") != "Cancelled":
            continue
        quantity = entry.get("statusQuantity")
        amount = quantity.get("amount") if isinstance(quantity, Mapping) else None
        if isinstance(amount, (str, int, Decimal)) and _AMOUNT.fullmatch(str(amount)):
            total += Decimal(str(amount))
    return total


def error_items(payload: Any, status: int) -> tuple[ResultError, ...]:
    """Errors in either shape Walmart uses: ``errors[]`` [W-errors-us] or
    ``errors.error[]`` [HSL-i29]; ``message``, else ``description``/``info``."""
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    if isinstance(errors, Mapping):
        errors = errors.get("error")
    if isinstance(errors, Mapping):  # one error, not in a list
        errors = [errors]
    found = []
    for item in errors if isinstance(errors, list) else ():
        if not isinstance(item, Mapping):
            continue
        code = str(item["code"]) if item.get("code") else None
        text = item.get("message") or item.get("description") or item.get("info") or code
        field = str(item["field"]) if item.get("field") else None
        found.append(ResultError(str(text or f"HTTP {status}"), code, field))
    return tuple(found) or (ResultError(f"HTTP {status} without an error body", f"HTTP_{status}"),)
