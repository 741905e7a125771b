"""Mirakl Connect: ``POST /v2/orders/{order_id}/cancel`` and action status.

Source: seed 004 and the published OpenAPI document (``v2-cancelOrderLines``,
``v2-getActionStatus``; https://developer.mirakl.com/_bundle/content/product/connect/rest/connect/openapi3.yaml);
facts in shared/platforms part C.

Money. A line's ``price`` is the amount for the cancelled quantity, excluding taxes
and shipping - not a unit price: ``CancelRequest.price`` is "Product price to
cancel, excluding taxes and shipping price", and Mirakl records a cancelation as an
``Adjustment`` whose ``price`` is "Product unit price multiplied by the quantity
adjusted, excluding taxes and shipping price". ``shipping_price`` is likewise the
shipping amount to cancel, excluding shipping taxes; ``taxes`` / ``shipping_taxes``
are the tax amounts to cancel. All four are sent as given, never multiplied.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cancelkit.plugin import (
    BEARER,
    Authenticator,
    CancelRequest,
    CancelResult,
    Capabilities,
    ClientCredentialsToken,
    ConfigurationError,
    HttpCall,
    HttpResponse,
    Outcome,
    PlatformAdapter,
    ResultError,
    Setting,
    Settings,
    StaticHeaders,
    Tax,
    accepted_result,
    join_url,
    json_headers,
    rejected_result,
)

DEFAULT_BASE_URL = "https://miraklconnect.com/api"
DEFAULT_TOKEN_URL = "https://auth.mirakl.net/oauth/token"

#: Canonical reason -> Mirakl Connect ``CancelRequest.reason``. Mirakl has no
#: "other" value, so every canonical reason missing here is refused.
REASON_MAP = {
    "CUSTOMER_REQUEST": "CUSTOMER_CANCELATION",
    "OUT_OF_STOCK": "OUT_OF_STOCK",
    "RETURN": "RETURN",
    "ITEM_NOT_RECEIVED": "ITEM_NOT_RECEIVED",
    "AGREEMENT": "AGREEMENT",
    "DEFECT": "DEFECT",
    "UNABLE_TO_DELIVER": "UNABLE_TO_DELIVER",
}

#: ``ActionErrorResponse.code`` values that say the channel could not process the
#: action now (throttled, down, an unexpected failure) rather than that the cancel
#: is wrong: the same cancel may be sent again later. The spec lists the codes
#: without meanings; these three are the transient ones by name.
RETRYABLE_ACTION_ERRORS = frozenset({"TOO_MANY_REQUEST", "UNAVAILABLE", "UNEXPECTED"})

#: Action status (``ActionResponse.status``) -> canonical outcome.
ACTION_OUTCOMES: dict[str, Outcome] = {
    "PENDING": "accepted",
    "SUCCESS": "cancelled",
    "FAILED": "rejected",
}
_LINE_STATUS = {"accepted": "pending", "cancelled": "cancelled", "rejected": "rejected"}

#: The answer header holding Mirakl's id for a request (``details["request_id"]``).
#: UNCONFIRMED: neither the Connect OpenAPI (its only response header is a download's
#: Content-Disposition) nor the Connect pages we read name one; X-Request-Id is the
#: common convention. Change it here once Mirakl support names theirs.
REQUEST_ID_HEADERS = ("X-Request-Id",)

SETTINGS = (
    Setting("base_url", "API base URL", DEFAULT_BASE_URL, kind="url"),
    Setting("access_token", "a bearer token given directly", secret=True),
    Setting("client_id", "OAuth2 client id"),
    Setting("client_secret", "OAuth2 client secret", secret=True),
    # Seller tokens are seen with ``audience`` (the seller company id) in public
    # clients; the Connect API page does not say. Sent only when set (UNCONFIRMED).
    Setting("audience", "OAuth2 audience (seller company id), if your account needs it"),
    Setting("token_url", "OAuth2 token endpoint", DEFAULT_TOKEN_URL, kind="url"),
    Setting("timeout", "read timeout in seconds", kind="seconds"),
    # The spec allows at most one status call per minute per action id.
    Setting("poll_interval", "seconds between status polls (send --wait)", "60", kind="seconds"),
)


class MiraklConnectAdapter(PlatformAdapter):
    """Mirakl Connect seller API: asynchronous cancel actions."""

    name = "mirakl"
    title = "Mirakl Connect"
    request_id_headers = REQUEST_ID_HEADERS
    capabilities = Capabilities(
        mode="async",
        fractional_quantity=False,
        reasons=REASON_MAP,
        platform_reasons=tuple(dict.fromkeys(REASON_MAP.values())),
        required_fields=(
            "order_id",
            "currency",
            "reason",
            "lines[].price",
            "lines[].shipping_price",
        ),
        settings=SETTINGS,
        rate_limit="429 with Retry-After honoured; status at most once a minute per action",
        resend_safe=False,
        has_status=True,
        # v2-getActionStatus: "Maximum usage: Asynchronous: once per minute per action ID".
        status_interval=60.0,
    )

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``POST {base}/v2/orders/{order_id}/cancel`` with ``cancelations[]``.

        ``price`` / ``shipping_price`` go out as the amounts to cancel for the line's
        quantity (see the module docstring), in the request's currency.
        """
        assert request.order_id is not None and request.currency is not None
        currency = request.currency

        def money(amount: Decimal | None) -> dict[str, Any]:
            return {"amount": amount, "currency": currency}

        def taxes(items: tuple[Tax, ...]) -> list[dict[str, Any]]:
            return [{"code": t.code, "amount": money(t.amount)} for t in items]

        cancelations = []
        for line in request.lines:
            item: dict[str, Any] = {"order_line_id": line.line_id}
            if line.product_id is not None:
                item["product_id"] = line.product_id
            item.update(
                quantity=int(line.quantity),
                reason=self.reason_value(request, line),
                price=money(line.price),
                shipping_price=money(line.shipping_price),
            )
            if line.taxes:
                item["taxes"] = taxes(line.taxes)
            if line.shipping_taxes:
                item["shipping_taxes"] = taxes(line.shipping_taxes)
            cancelations.append(item)
        return HttpCall(
            "POST",
            join_url(settings["base_url"], "v2", "orders", request.order_id, "cancel"),
            json_headers(BEARER),
            {"cancelations": cancelations},
        )

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        """A bearer token given directly, else OAuth2 client credentials (form-encoded)."""
        if settings.get("access_token"):
            return StaticHeaders({"Authorization": f"Bearer {settings['access_token']}"})
        if not (settings.get("client_id") or settings.get("client_secret")):
            raise ConfigurationError(
                "mirakl: no credentials; set CANCELKIT_MIRAKL_ACCESS_TOKEN, or "
                "CANCELKIT_MIRAKL_CLIENT_ID and CANCELKIT_MIRAKL_CLIENT_SECRET"
            )
        fields = {
            "grant_type": "client_credentials",
            "client_id": settings.require("client_id"),
            "client_secret": settings.require("client_secret"),
        }
        if settings.get("audience"):
            fields["audience"] = settings["audience"]
        return ClientCredentialsToken(
            settings["token_url"], fields, platform=self.name, clock=clock
        )

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """202 -> accepted (action id); 400/404 Error -> rejected.

        Core has already dealt with 429, 5xx, redirects and unreadable bodies.
        """
        payload = response.json()
        status = response.status
        if status == 202 and isinstance(payload, dict) and payload.get("action_id"):
            return accepted_result(self.name, request, str(payload["action_id"]), status)
        if 400 <= status < 500 and isinstance(payload, dict) and "code" in payload:
            message = str(payload.get("message") or payload["code"])
            return rejected_result(self.name, request, _error_items(payload), status, message)
        if 400 <= status < 500:
            error = ResultError(f"HTTP {status} without an Error body", f"HTTP_{status}")
            return rejected_result(self.name, request, (error,), status)
        # A 2xx without an action id: we cannot tell what happened.
        return self.unknown(request, f"unexpected HTTP {status} answer from Mirakl", status)

    def how_to_check(self, request: CancelRequest) -> str:
        """Where a person looks after an unknown outcome."""
        return (
            f"look at order {request.order_id} (GET /v2/orders?order_ids=...): "
            "its lines' quantities and adjustments show applied cancelations"
        )

    def status_call(self, tracking_id: str, settings: Settings) -> HttpCall:
        """``GET {base}/v2/orders/actions/{action_id}``."""
        return HttpCall(
            "GET",
            join_url(settings["base_url"], "v2", "orders", "actions", tracking_id),
            json_headers(BEARER, body=False),
        )

    def normalise_status(self, tracking_id: str, response: HttpResponse) -> CancelResult:
        """PENDING -> accepted, SUCCESS -> cancelled, FAILED -> rejected with its codes.

        A transient action error (:data:`RETRYABLE_ACTION_ERRORS`) is marked
        ``retryable``; when every error is, the result is ``retryable`` and its message
        says the same cancel may be sent again later (nothing was cancelled).
        """
        payload = response.json()
        status = response.status
        state = payload.get("status") if isinstance(payload, dict) else None
        if status == 200 and isinstance(state, str) and state in ACTION_OUTCOMES:
            outcome = ACTION_OUTCOMES[payload["status"]]
            errors = tuple(
                ResultError(
                    str(e.get("message", "")),
                    str(e.get("code")) if e.get("code") else None,
                    retryable=e.get("code") in RETRYABLE_ACTION_ERRORS,
                )
                for e in payload.get("errors") or ()
                if isinstance(e, dict)
            )
            details: dict[str, Any] = {
                "action_status": payload["status"],
                "updated_at": payload.get("updated_at"),
            }
            message = f"action {payload['status']}"
            if outcome == "rejected" and errors and all(e.retryable for e in errors):
                transient = sorted({e.code or "" for e in errors})
                message += (
                    f" with transient error {', '.join(transient)}: nothing was cancelled; "
                    "the same cancel may be sent again later"
                )
            return CancelResult(
                platform=self.name,
                outcome=outcome,
                tracking_id=tracking_id,
                errors=errors,
                http_status=status,
                message=message,
                details=details,
            )
        if status in (400, 404) and isinstance(payload, dict) and "code" in payload:
            return CancelResult(
                platform=self.name,
                outcome="rejected",
                tracking_id=tracking_id,
                errors=_error_items(payload),
                http_status=status,
                message=f"action {tracking_id} not found"
                if status == 404
                else payload.get("message"),
            )
        return CancelResult(
            platform=self.name,
            outcome="unknown",
            tracking_id=tracking_id,
            http_status=status,
            message=f"unexpected HTTP {status} answer to the status call; ask again later",
        )


def _error_items(payload: dict[str, Any]) -> tuple[ResultError, ...]:
    """Mirakl ``Error``: one result error per ``errors[]`` item, else the top level."""
    code = str(payload.get("code")) if payload.get("code") is not None else None
    items = [e for e in payload.get("errors") or () if isinstance(e, dict)]
    if not items:
        return (ResultError(str(payload.get("message", "")), code),)
    return tuple(
        ResultError(
            str(e.get("message", "")), code, str(e["field"]) if e.get("field") is not None else None
        )
        for e in items
    )
