"""Carriyo emulator: orders with fulfillment orders, the line-item cancel, OAuth tokens.

Documented rules it follows (seed 002, shared/platforms part A):

* Only fulfillment-order line items in ``open`` or ``allocated`` can be cancelled;
  ``pick_in_progress``, ``picked``, ``pack_in_progress``, ``fulfilled``, ``closed``
  and ``cancelled`` ones cannot.
* A cancel sets the cancelled quantity's status to ``cancelled`` with the reason,
  lowers the order line's ``quantity`` and adds to its ``removed_quantities``, and
  recalculates statuses. Omitting ``line_items`` cancels every pending item.
* The order is found by ``order_id`` or, with ``?key=partner_order_reference``, by
  that reference; unknown order or fulfillment order -> 404.
* Errors use the documented body ``{"status", "timestamp", "errors": ["field : message"]}``.
* ``POST /oauth/token`` with JSON ``client_id`` and ``client_secret``; missing ones get
  400 ``bad_request``, wrong ones 403 ``access_denied``. API calls need the bearer
  token (else 401) and the sandbox ``tenant-id`` and ``x-api-key`` (else 403).

Choices where Carriyo does not document the detail (UNCONFIRMED, emulator only):
a partial cancel splits the fulfillment-order line item into a remaining item and a
``cancelled`` item of the cancelled quantity; ``removed_quantities`` is a list of
``{"quantity", "reason", "fulfillment_order_id"}`` records; a fulfillment order whose
items are all cancelled becomes ``cancelled``, and an order whose fulfillment orders
are all cancelled becomes ``cancelled``. All line items of one call are cancelled,
or none.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from cancelkit.plugin import Emulator, EmuRequest, EmuResponse

from .adapter import (
    BASE_URLS,
    CANCELLABLE_STATUSES,
    LINE_ITEM_ID_KEY,
    LINE_ITEM_STATUSES,
    PLATFORM_REASONS,
)

SANDBOX_TENANT = "sandbox-tenant"
SANDBOX_API_KEY = "sandbox-carriyo-api-key"
SANDBOX_CLIENT_ID = "sandbox-carriyo-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-carriyo-client-secret"
TOKEN_LIFETIME = 86400
TIMESTAMP = "2026-01-01T00:00:00.000+00:00"


def _fo_line(line_id: str, quantity: int, status: str) -> dict[str, Any]:
    return {LINE_ITEM_ID_KEY: line_id, "quantity": quantity, "status": status}


#: Demo orders; examples/carriyo*.json cancel lines of these.
SEED_ORDERS: dict[str, dict[str, Any]] = {
    "ORD-1001": {
        "tenant": SANDBOX_TENANT,
        "order_id": "ORD-1001",
        "partner_order_reference": "SHOP-1001",
        "merchant": "DEMO",
        "status": "allocated",
        "line_items": [
            {"id": "line-kbd", "sku": "KBD-1", "quantity": 2, "removed_quantities": []},
            {"id": "line-mon", "sku": "MON-27", "quantity": 1, "removed_quantities": []},
            {"id": "line-cbl", "sku": "CBL-USB", "quantity": 3, "removed_quantities": []},
        ],
        "fulfillment_orders": [
            {
                "fulfillment_order_id": "FO-1001-1",
                "status": "allocated",
                "location_id": "WH-DXB",
                "line_items": [
                    _fo_line("line-kbd", 2, "allocated"),
                    _fo_line("line-mon", 1, "picked"),
                ],
            },
            {
                "fulfillment_order_id": "FO-1001-2",
                "status": "open",
                "line_items": [_fo_line("line-cbl", 3, "open")],
            },
        ],
    },
    # One fulfillment order holding every documented line item status.
    "ORD-1002": {
        "tenant": SANDBOX_TENANT,
        "order_id": "ORD-1002",
        "partner_order_reference": "SHOP-1002",
        "merchant": "DEMO",
        "status": "processing",
        "line_items": [
            {"id": f"line-{s}", "sku": s.upper(), "quantity": 1, "removed_quantities": []}
            for s in LINE_ITEM_STATUSES
        ],
        "fulfillment_orders": [
            {
                "fulfillment_order_id": "FO-1002-1",
                "status": "processing",
                "line_items": [_fo_line(f"line-{s}", 1, s) for s in LINE_ITEM_STATUSES],
            },
        ],
    },
}


class _Refusal(Exception):
    def __init__(self, status: int, *errors: str):
        self.status, self.errors = status, errors


class CarriyoEmulator(Emulator):
    """Stateful Carriyo Orders API: see the module docstring."""

    platform = "carriyo"
    production_bases: ClassVar[dict[str, str]] = {
        "orders": f"{BASE_URLS['production']}/orders",
        "oauth": f"{BASE_URLS['production']}/oauth",
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to :data:`SEED_ORDERS`; no tokens."""
        self.orders = copy.deepcopy(SEED_ORDERS)
        self.tokens: list[str] = []

    def dump_state(self) -> dict[str, Any]:
        """Orders and tokens."""
        return {"orders": self.orders, "tokens": self.tokens}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`dump_state`."""
        self.orders = copy.deepcopy(dict(state["orders"]))
        self.tokens = list(state["tokens"])

    def client_settings(self, base_url: str) -> dict[str, str]:
        """Point the carriyo adapter here, with the sandbox tenant, key and client."""
        return {
            "base_url": base_url,
            "tenant_id": SANDBOX_TENANT,
            "api_key": SANDBOX_API_KEY,
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        }

    def is_token_request(self, request: EmuRequest) -> bool:
        """The OAuth endpoint."""
        return request.segments[:1] == ("oauth",)

    def fault_response(self, fault: Any) -> EmuResponse | None:
        """Carriyo's error body for an expired token."""
        if fault.kind == "401":
            return _error(401, "Unauthorized")
        return None

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the token endpoint or the fulfillment-order cancel."""
        if request.segments == ("oauth", "token") and request.method == "POST":
            return self._token(request)
        if request.bearer() not in self.tokens:
            return _error(401, "Unauthorized")
        if (request.header("tenant-id"), request.header("x-api-key")) != (
            SANDBOX_TENANT,
            SANDBOX_API_KEY,
        ):
            return _error(403, "Forbidden: missing or invalid x-api-key or tenant-id")
        try:
            match request.segments:
                case ("orders", reference, "fulfillment-orders", fo_id, "cancel") if (
                    request.method == "POST"
                ):
                    return EmuResponse.json(200, self._cancel(reference, fo_id, request))
                case ("orders", reference) if request.method == "GET":
                    return EmuResponse.json(200, self._order(reference, request.query))
        except _Refusal as refusal:
            return _error(refusal.status, *refusal.errors)
        return _error(404, "Not found")

    def _token(self, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict) or not body.get("client_id") or not body.get("client_secret"):
            return EmuResponse.json(
                400,
                {
                    "error": "bad_request",
                    "error_description": "client_id and client_secret are required",
                },
            )
        if (body["client_id"], body["client_secret"]) != (SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET):
            return EmuResponse.json(
                403, {"error": "access_denied", "error_description": "Unauthorized"}
            )
        token = f"sbx-carriyo-token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return EmuResponse.json(
            200,
            {
                "access_token": token,
                "expires_in": TOKEN_LIFETIME,
                "token_type": "Bearer",
                "scope": f"tenant:{SANDBOX_TENANT} read:orders update:orders",
            },
        )

    def _order(self, reference: str, query: Mapping[str, str]) -> dict[str, Any]:
        key = query.get("key", "order_id")
        if key not in ("order_id", "partner_order_reference"):
            raise _Refusal(400, "key : must be one of order_id, partner_order_reference")
        for order in self.orders.values():
            if order.get(key) == reference:
                return order
        raise _Refusal(404, "Order or fulfillment order not found.")

    def _cancel(self, reference: str, fo_id: str, request: EmuRequest) -> dict[str, Any]:
        order = self._order(reference, request.query)
        fo = next(
            (f for f in order["fulfillment_orders"] if f["fulfillment_order_id"] == fo_id), None
        )
        if fo is None:
            raise _Refusal(404, "Order or fulfillment order not found.")
        try:
            body = request.json()
        except ValueError:
            raise _Refusal(400, "body : malformed JSON") from None
        reason = body.get("cancellation_reason") if isinstance(body, dict) else None
        if reason not in PLATFORM_REASONS:
            raise _Refusal(
                400, f"cancellation_reason : must be one of {', '.join(PLATFORM_REASONS)}"
            )
        wanted = self._wanted(fo, body.get("line_items"))
        for line_id, quantity in wanted:
            self._take(order, fo, line_id, quantity, reason)
        self._recalculate(order, fo)
        return order

    def _wanted(self, fo: dict[str, Any], items: Any) -> list[tuple[str, int]]:
        """Validate every requested item before changing anything (all or none)."""
        if items is None:  # omitted: every pending item
            wanted = [
                (i[LINE_ITEM_ID_KEY], i["quantity"])
                for i in fo["line_items"]
                if i["status"] in CANCELLABLE_STATUSES
            ]
            if not wanted:
                raise _Refusal(400, "line_items : no pending line items to cancel")
            return wanted
        if not isinstance(items, list) or not items:
            raise _Refusal(400, "line_items : must not be empty")
        wanted, problems = [], []
        for index, item in enumerate(items):
            where = f"line_items[{index}]"
            line_id = item.get(LINE_ITEM_ID_KEY) if isinstance(item, dict) else None
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if not isinstance(line_id, str):
                problems.append(f"{where}.{LINE_ITEM_ID_KEY} : must not be blank")
                continue
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                problems.append(f"{where}.quantity : must be greater than 0")
                continue
            present = [i for i in fo["line_items"] if i[LINE_ITEM_ID_KEY] == line_id]
            if not present:
                problems.append(
                    f"{where}.{LINE_ITEM_ID_KEY} : {line_id} is not in fulfillment "
                    f"order {fo['fulfillment_order_id']}"
                )
                continue
            pending = sum(i["quantity"] for i in present if i["status"] in CANCELLABLE_STATUSES)
            if pending == 0:
                status = present[0]["status"]
                hint = " (unfulfill it first)" if status == "fulfilled" else ""
                problems.append(
                    f"{where} : line item {line_id} is {status} and cannot be cancelled{hint}"
                )
            elif quantity > pending:
                problems.append(f"{where}.quantity : {quantity} exceeds the {pending} pending")
            else:
                wanted.append((line_id, quantity))
        if problems:
            raise _Refusal(400, *problems)
        return wanted

    @staticmethod
    def _take(
        order: dict[str, Any], fo: dict[str, Any], line_id: str, quantity: int, reason: str
    ) -> None:
        left = quantity
        for item in [
            i
            for i in fo["line_items"]
            if i[LINE_ITEM_ID_KEY] == line_id and i["status"] in CANCELLABLE_STATUSES
        ]:
            take = min(left, item["quantity"])
            if take == item["quantity"]:
                item.update(status="cancelled", cancellation_reason=reason)
            else:
                item["quantity"] -= take
                fo["line_items"].append(
                    {**_fo_line(line_id, take, "cancelled"), "cancellation_reason": reason}
                )
            left -= take
            if not left:
                break
        order_line = next(line for line in order["line_items"] if line["id"] == line_id)
        order_line["quantity"] -= quantity
        order_line["removed_quantities"].append(
            {
                "quantity": quantity,
                "reason": reason,
                "fulfillment_order_id": fo["fulfillment_order_id"],
            }
        )

    @staticmethod
    def _recalculate(order: dict[str, Any], fo: dict[str, Any]) -> None:
        if all(i["status"] == "cancelled" for i in fo["line_items"]):
            fo["status"] = "cancelled"
        if all(f["status"] == "cancelled" for f in order["fulfillment_orders"]):
            order["status"] = "cancelled"


def _error(status: int, *errors: str) -> EmuResponse:
    return EmuResponse.json(
        status, {"status": str(status), "timestamp": TIMESTAMP, "errors": list(errors)}
    )
