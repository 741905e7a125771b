"""Walmart Marketplace (US) emulator: the Token API and "Cancel order lines".

It judges by Walmart's published contract and documented rules, never by the
adapter (nothing is imported from ``adapter.py``). Keys in brackets are the
sources in shared/platforms/walmart.md.

* ``POST /v3/token``: ``Authorization: Basic base64(id:secret)`` and the form
  ``grant_type=client_credentials`` [W-auth-faq] get ``{access_token, token_type,
  expires_in: 900}`` [HSL auth]; tokens expire on the sandbox clock.
* Every other call needs a live ``WM_SEC.ACCESS_TOKEN`` (else 401 ``UNAUTHORIZED``),
  then ``WM_SVC.NAME`` and ``WM_QOS.CORRELATION_ID`` (else 400
  ``MISSING_REQUEST_HEADER``) [W-ref][W-errors-table].
* More than :data:`CANCELS_PER_MINUTE` cancels in any minute of the sandbox clock:
  429 ``REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API`` [RL-TSV][W-rate]. Answers carry
  ``X-Current-Token-Count`` and ``X-Next-Replenishment-Time`` (epoch ms).
* ``POST /v3/orders/{purchaseOrderId}/cancel``: a body that breaks the contract
  (``contracts/``, copied from Walmart's OpenAPI) gets 400
  ``INVALID_REQUEST_CONTENT.GMP_ORDER_API``, one error per violation; an unknown
  PO 404 ``CONTENT_NOT_FOUND.GMP_ORDER_API``. Each line must exist, ask for
  ``Cancelled`` [HSL], name a whole amount, and have that much still open
  (``Created`` or ``Acknowledged``: "only cancel order lines that have not been
  shipped" [W-guide]); a shipped or cancelled line is refused [W-troubleshoot].
  At most 100 lines [W-faq-orders]. Success: 200 ``{"order"}``, the updated order
  whose lines carry ``Cancelled`` status entries with their reason [HSL][W-reasons].

Chosen, not documented: refusals are all-or-nothing (one bad line refuses the
request, nothing is cancelled, every bad line is named), errors use the observed
``errors.error[]`` shape [HSL-i29], and the open quantity is cancelled
``Created`` units first.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from cancelkit.plugin import (
    Contract,
    EmuRequest,
    EmuResponse,
    Fault,
    Refusal,
    StateField,
    StatefulEmulator,
    TokenIssuer,
)

CONTRACT = Contract.packaged(
    "cancelkit_walmart", "contracts/walmart-cancel-order-lines.schema.json"
)
PRODUCTION_BASE = "https://marketplace.walmartapis.com"
SANDBOX_CLIENT_ID = "sandbox-walmart-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-walmart-client-secret"
REQUIRED_HEADERS = ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID")
CANCELS_PER_MINUTE = 60
MAX_LINES = 100
OPEN = ("Created", "Acknowledged")


def _line(sku: str, *statuses: tuple[str, int]) -> dict[str, Any]:
    return {"sku": sku, "statuses": [{"status": s, "amount": n} for s, n in statuses]}


#: Demo purchase orders; walmart.example.json cancels line 1 of the first.
SEED_ORDERS: dict[str, dict[str, Any]] = {
    "1577914061094": {
        "customerOrderId": "5571600820432",
        "lines": {
            "1": _line("TENT-4P", ("Acknowledged", 1)),
            "2": _line("LANTERN", ("Acknowledged", 3)),
            "3": _line("STOVE", ("Shipped", 1)),
            "4": _line("MUG", ("Cancelled", 1)),
            "5": _line("CHAIR", ("Created", 2)),
            "6": _line("COOLER", ("Acknowledged", 1), ("Shipped", 1)),
        },
    },
    # An id holding / ? # must arrive as one path segment.
    "ODD/PO?#1": {"customerOrderId": "5571600820433", "lines": {"1": _line("ODD", ("Created", 1))}},
}


def error(status: int, code: str, description: str, field: str | None = None) -> Refusal:
    """Walmart's observed error body, ``{"errors": {"error": [...]}}`` [HSL-i29]."""
    return errors(status, [(code, description, field)])


def errors(status: int, items: list[tuple[str, str, str | None]]) -> Refusal:
    """One error body naming several problems."""
    category = "REQUEST" if status == 429 else "DATA" if status < 500 else "SYSTEM"
    return Refusal(
        status,
        {"errors": {"error": [
            {"code": code, **({"field": field} if field else {}), "description": text,
             "info": "Request content is invalid." if status == 400 else text,
             "severity": "ERROR", "category": category, "causes": [],
             "errorIdentifiers": {"entry": []}}
            for code, text, field in items
        ]}},
    )  # fmt: skip


class WalmartEmulator(StatefulEmulator):
    """Stateful Walmart Marketplace: see the module docstring for its rules."""

    platform = "walmart"
    production_bases: ClassVar[dict[str, str]] = {"api": PRODUCTION_BASE}
    orders = StateField(SEED_ORDERS)
    tokens = TokenIssuer(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        lifetime=900,
        credentials=("basic",),
        header="WM_SEC.ACCESS_TOKEN",
        scheme=None,
        unauthorized=error(401, "UNAUTHORIZED", "missing, malformed or expired access token"),
        invalid_client=error(401, "UNAUTHORIZED", "invalid client id or secret"),
        unsupported_grant=error(400, "INVALID_REQUEST_PARAM", "unsupported grant_type"),
    )
    #: Sandbox times of the cancels in the last minute (the rate window; not saved).
    cancels: StateField[deque[float]] = StateField(factory=deque, kept=False)

    def client_settings(self, base_url: str) -> dict[str, str]:
        """The sandbox client credentials; numbered correlation ids, so recordings reproduce."""
        return {
            "base_url": f"{base_url}/api",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "correlation_ids": "sequential",
        }

    def is_token_request(self, request: EmuRequest) -> bool:
        """The Token API."""
        return request.segments == ("api", "v3", "token")

    def handle(self, request: EmuRequest) -> EmuResponse:
        """Token, then the checks every call passes, then the cancel."""
        if self.is_token_request(request) and request.method == "POST":
            return self.tokens.issue(request)
        self.tokens.check(request)
        missing = [h for h in REQUIRED_HEADERS if not (request.header(h) or "").strip()]
        if missing:
            raise errors(400, [("MISSING_REQUEST_HEADER", f"{h} is required", h) for h in missing])
        match request.segments:
            case ("api", "v3", "orders", po, "cancel") if request.method == "POST":
                self._take_a_cancel(request.now)
                try:
                    response = self._cancel(po, request)
                except Refusal as refusal:
                    raise refusal.with_headers(self._rate(request.now)) from None
                rate = self._rate(request.now)
                return EmuResponse(response.status, response.body, {**response.headers, **rate})
        raise error(404, "URI_NOT_FOUND", "no such resource")

    def _take_a_cancel(self, now: float) -> None:
        while self.cancels and self.cancels[0] <= now - 60.0:
            self.cancels.popleft()
        if len(self.cancels) >= CANCELS_PER_MINUTE:
            refusal = error(429, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "too many requests")
            raise refusal.with_headers(self._rate(now))
        self.cancels.append(now)

    def _rate(self, now: float) -> dict[str, str]:
        refill = (self.cancels[0] + 60.0) if self.cancels else now
        return {
            "X-Current-Token-Count": str(max(CANCELS_PER_MINUTE - len(self.cancels), 0)),
            "X-Next-Replenishment-Time": str(int(refill * 1000)),
        }

    def _cancel(self, po: str, request: EmuRequest) -> EmuResponse:
        def refuse(violations: Any) -> Refusal:
            return errors(400, [(_INVALID, v.message, v.target) for v in violations])

        body = CONTRACT.checked_body(
            request, refuse=refuse, not_json=error(400, "MALFORMED_REQUEST_CONTENT", "not JSON")
        )
        order = self.orders.get(po)
        if order is None:
            raise error(404, "CONTENT_NOT_FOUND.GMP_ORDER_API", f"PO {po} not found")
        asked = ((body.get("orderCancellation") or {}).get("orderLines") or {}).get("orderLine")
        if not asked or len(asked) > MAX_LINES:
            raise error(400, _INVALID, f"give 1 to {MAX_LINES} order lines", "orderLine")
        wanted: dict[str, tuple[int, str]] = {}
        problems = []
        for item in asked:
            number = item["lineNumber"]
            for status in item["orderLineStatuses"]["orderLineStatus"]:
                amount = status["statusQuantity"]["amount"]
                whole = amount.isascii() and amount.isdigit() and int(amount) > 0
                if status["status"] != "Cancelled" or not whole:
                    problems.append(
                        f"line {number}: status must be Cancelled, amount a whole number"
                    )
                    continue
                total = wanted.get(number, (0, ""))[0] + int(amount)
                wanted[number] = (total, status["cancellationReason"])
        for number, (amount, _) in wanted.items():
            line = order["lines"].get(number)
            if line is None:
                problems.append(f"line number {number} is not on PO {po}")
                continue
            left = sum(s["amount"] for s in line["statuses"] if s["status"] in OPEN)
            if amount > left:
                states = ", ".join(f"{s['amount']} {s['status']}" for s in line["statuses"])
                problems.append(
                    f"Line: {number} of PO: {po} cannot cancel {amount}: {left} open ({states})"
                )
        if not wanted and not problems:
            problems.append("no order line status to cancel")
        if problems:  # all or nothing: one bad line refuses the request
            raise errors(400, [(_INVALID, text, "orderLine") for text in problems])
        for number, (amount, reason) in wanted.items():
            _move(order["lines"][number], amount, reason)
        return EmuResponse.json(200, {"order": _render(po, order)})

    def fault_response(self, fault: Fault) -> EmuResponse | None:
        """Walmart's own bodies for a 429, a 401, a 500 and a 503."""
        retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        known = {
            "429": ("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "too many requests"),
            "401": ("UNAUTHORIZED", "access token expired"),
            "500": ("SYSTEM_ERROR", "internal error"),
            "503": ("SYSTEM_ERROR", "service unavailable"),
        }
        if fault.kind not in known:
            return None
        refusal = error(int(fault.kind), *known[fault.kind])
        return refusal.with_headers(retry if fault.kind in ("429", "503") else {}).response


_INVALID = "INVALID_REQUEST_CONTENT.GMP_ORDER_API"


def _move(line: dict[str, Any], amount: int, reason: str) -> None:
    """Cancel ``amount`` open units of ``line``, Created ones first: a new status entry."""
    left = amount
    for state in OPEN:
        for entry in line["statuses"]:
            take = min(entry["amount"], left) if entry["status"] == state else 0
            entry["amount"], left = entry["amount"] - take, left - take
    line["statuses"] = [s for s in line["statuses"] if s["amount"] > 0]
    line["statuses"].append({"status": "Cancelled", "amount": amount, "cancellationReason": reason})


def _render(po: str, order: dict[str, Any]) -> dict[str, Any]:
    """The ``GetOrderResponse.order`` of a PO, as the cancel answers it [HSL]."""

    def quantity(amount: int) -> dict[str, str]:
        return {"unitOfMeasurement": "EACH", "amount": str(amount)}

    lines = []
    for number, line in order["lines"].items():
        statuses = [
            {"status": s["status"], "statusQuantity": quantity(s["amount"])}
            | ({"cancellationReason": s["cancellationReason"]} if "cancellationReason" in s else {})
            for s in line["statuses"]
        ]
        lines.append({
            "lineNumber": number,
            "item": {"productName": line["sku"].title(), "sku": line["sku"]},
            "orderLineQuantity": quantity(sum(s["amount"] for s in line["statuses"])),
            "orderLineStatuses": {"orderLineStatus": statuses},
        })  # fmt: skip
    return {
        "purchaseOrderId": po,
        "customerOrderId": order["customerOrderId"],
        "orderLines": {"orderLine": lines},
    }
