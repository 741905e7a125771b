"""Carriyo emulator: orders with fulfillment orders, the line-item cancel, OAuth tokens.

It judges every cancel body by Carriyo's published contract
(``contracts/carriyo-cancel-line-items.schema.json``, sources named inside), never
by the adapter: the reason enum, the line item key, and ``line_items`` being
required all come from that file, so a plugin that sends the wrong key, omits
``line_items`` or sends a reason the contract does not list gets Carriyo's 400.
Nothing here is imported from ``adapter.py``.

Documented rules it follows (seed 002, shared/platforms part A):

* Only fulfillment-order line items in ``open`` or ``allocated`` can be cancelled;
  ``pick_in_progress``, ``picked``, ``pack_in_progress``, ``fulfilled``, ``closed``
  and ``cancelled`` ones cannot.
* A cancel sets the cancelled quantity's status to ``cancelled`` with the reason,
  lowers the order line's ``quantity`` and adds to its ``removed_quantities``, and
  recalculates statuses.
* The order is found by ``order_id`` or, with ``?key=partner_order_reference``, by
  that reference (``GET /orders/{reference}`` too); unknown order or fulfillment
  order -> 404.
* Errors use the documented body ``{"status", "timestamp", "errors": ["field : message"]}``
  (carriyo.com/docs/api/conventions/).
* ``POST /oauth/token`` with JSON ``client_id`` and ``client_secret``; missing ones get
  400 ``bad_request``, wrong ones 403 ``access_denied``. API calls need a bearer
  token issued less than ``TOKEN_LIFETIME`` seconds ago on the sandbox clock (else
  401) and the sandbox ``tenant-id`` and ``x-api-key`` (else 403).

Choices where Carriyo does not document the detail (UNCONFIRMED, emulator only):
the body is checked against the contract before the order is looked up (as a
framework validating the body before the handler runs would); a missing field is
reported as ``"<field> : must not be null"``, other contract violations with the
validator's own message; fulfillment-order line items name their order line with
the same key the contract uses in requests; a partial cancel splits the
fulfillment-order line item into a remaining item and a ``cancelled`` item of the
cancelled quantity; ``removed_quantities`` is a list of
``{"quantity", "reason", "fulfillment_order_id"}`` records; a fulfillment order
whose items are all cancelled becomes ``cancelled``, and an order whose fulfillment
orders are all cancelled becomes ``cancelled``. All line items of one call are
cancelled, or none.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
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
    Violation,
)

#: The published request contract of the cancel operation, shipped beside the plugin.
CONTRACT_FILE = "contracts/carriyo-cancel-line-items.schema.json"
#: The production host: the Orders OpenAPI ``servers`` (carriyo.com/docs/oas/orders.yaml).
PRODUCTION = "https://api.carriyo.com"
#: Fulfillment-order line item statuses (carriyo.com/docs/api/orders/fulfillment-orders/).
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
#: "Only items in pending status (open or allocated) can be cancelled" (seed 002).
PENDING_STATUSES = ("open", "allocated")
#: The cancel's 404 (seed 002); get-order's is "Order not found." (its operation page).
FO_NOT_FOUND = "Order or fulfillment order not found."
#: The ``key`` query parameter: 'Enum: "order_id" "partner_order_reference"' (seed 002).
REFERENCE_KEYS = ("order_id", "partner_order_reference")

SANDBOX_TENANT = "sandbox-tenant"
SANDBOX_API_KEY = "sandbox-carriyo-api-key"
SANDBOX_CLIENT_ID = "sandbox-carriyo-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-carriyo-client-secret"
TOKEN_LIFETIME = 86400
#: The ``timestamp`` of every error: fixed, not the sandbox clock, because the cassette
#: recorder runs every platform on one clock, so a clock-derived stamp would differ
#: between recording one platform and recording all.
TIMESTAMP = "2026-01-01T00:00:00.000+00:00"


@functools.cache
def published_contract() -> Contract:
    """The contract shipped with the plugin (read and checked once per process)."""
    return Contract.packaged("cancelkit.plugins.carriyo", CONTRACT_FILE)


def item_key(contract: Contract) -> str:
    """The key that names the order line item in a cancel body, read from ``contract``.

    The one required property of ``FulfillmentOrderLineItemRequest`` besides
    ``quantity`` (``line_item_id`` in the shipped contract).
    """
    item = contract.schema["$defs"]["FulfillmentOrderLineItemRequest"]
    keys = [key for key in item["required"] if key != "quantity"]
    if len(keys) != 1:
        raise ValueError(f"{contract.name}: expected one line item key besides quantity: {keys}")
    return str(keys[0])


def seed_orders(key: str) -> dict[str, dict[str, Any]]:
    """The demo orders, fulfillment-order line items naming their line by ``key``.

    examples/carriyo*.json cancel lines of these.
    """

    def fo_line(line_id: str, quantity: int, status: str) -> dict[str, Any]:
        return {key: line_id, "quantity": quantity, "status": status}

    return {
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
                        fo_line("line-kbd", 2, "allocated"),
                        fo_line("line-mon", 1, "picked"),
                    ],
                },
                {
                    "fulfillment_order_id": "FO-1001-2",
                    "status": "open",
                    "line_items": [fo_line("line-cbl", 3, "open")],
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
                    "line_items": [fo_line(f"line-{s}", 1, s) for s in LINE_ITEM_STATUSES],
                },
            ],
        },
    }


def _refusal(status: int, *errors: str) -> Refusal:
    """Carriyo's documented error body: ``{"status", "timestamp", "errors": [...]}``."""
    return Refusal(status, {"status": str(status), "timestamp": TIMESTAMP, "errors": list(errors)})


class CarriyoEmulator(StatefulEmulator):
    """Stateful Carriyo Orders API: see the module docstring.

    ``contract`` is the published one by default; a test may pass a newer copy
    (say, with a reason value Carriyo added since) to emulate a platform that moved on.
    """

    platform = "carriyo"
    production_bases: ClassVar[dict[str, str]] = {
        "orders": f"{PRODUCTION}/orders",
        "oauth": f"{PRODUCTION}/oauth",
    }
    # Carriyo documents no request id header; the adapter reads the common one first.
    request_id_header = "X-Request-Id"

    #: Seeded by :meth:`reset` (the seed names lines by the contract's item key).
    orders: StateField[dict[str, dict[str, Any]]] = StateField(factory=dict)
    tokens = TokenIssuer(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        lifetime=TOKEN_LIFETIME,
        credentials=("json",),
        grant_type=None,
        unauthorized=_refusal(401, "Unauthorized"),
        missing_client=Refusal(
            400,
            {
                "error": "bad_request",
                "error_description": "client_id and client_secret are required",
            },
        ),
        invalid_client=Refusal(
            403, {"error": "access_denied", "error_description": "Unauthorized"}
        ),
        answer=lambda token, _: {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "token_type": "Bearer",
            "scope": f"tenant:{SANDBOX_TENANT} read:orders update:orders",
        },
    )

    def __init__(self, contract: Contract | None = None) -> None:
        self.contract = contract or published_contract()
        #: The line item key, as the contract names it (never the adapter's constant).
        self.item_key = item_key(self.contract)
        super().__init__()

    def reset(self) -> None:
        """Back to the seeded demo orders; no tokens."""
        super().reset()
        self.orders = seed_orders(self.item_key)

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

    def fault_response(self, fault: Fault) -> EmuResponse | None:
        """Carriyo's error body for an expired token."""
        if fault.kind == "401":
            return _refusal(401, "Unauthorized").response
        return None

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the token endpoint, the order, or the fulfillment-order cancel."""
        if request.segments == ("oauth", "token") and request.method == "POST":
            return self.tokens.issue(request)
        self.tokens.check(request)
        if (request.header("tenant-id"), request.header("x-api-key")) != (
            SANDBOX_TENANT,
            SANDBOX_API_KEY,
        ):
            raise _refusal(403, "Forbidden: missing or invalid x-api-key or tenant-id")
        match request.segments:
            case ("orders", reference, "fulfillment-orders", fo_id, "cancel") if (
                request.method == "POST"
            ):
                return EmuResponse.json(200, self._cancel(reference, fo_id, request))
            case ("orders", reference) if request.method == "GET":
                return EmuResponse.json(200, self._order(reference, request.query))
        raise _refusal(404, "Not found")

    def _order(
        self, reference: str, query: Mapping[str, str], missing: str = "Order not found."
    ) -> dict[str, Any]:
        """The order by ``?key=``; 404 texts: get-order's, or the cancel's (seed 002)."""
        key = query.get("key", "order_id")
        if key not in REFERENCE_KEYS:
            raise _refusal(400, f"key : must be one of {', '.join(REFERENCE_KEYS)}")
        for order in self.orders.values():
            if order.get(key) == reference:
                return order
        raise _refusal(404, missing)

    def _cancel(self, reference: str, fo_id: str, request: EmuRequest) -> dict[str, Any]:
        body = self.contract.checked_body(
            request,
            not_json=_refusal(400, "body : malformed JSON"),
            refuse=lambda violations: _refusal(400, *contract_errors(violations)),
        )
        order = self._order(reference, request.query, FO_NOT_FOUND)
        fo = next(
            (f for f in order["fulfillment_orders"] if f["fulfillment_order_id"] == fo_id), None
        )
        if fo is None:
            raise _refusal(404, FO_NOT_FOUND)
        reason = body["cancellation_reason"]
        wanted = self._wanted(fo, body["line_items"])
        for line_id, quantity in wanted.items():
            self._take(order, fo, line_id, quantity, reason)
        self._recalculate(order, fo)
        return order

    def _wanted(self, fo: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, int]:
        """Line id -> quantity, every item checked before anything changes (all or none).

        The contract has vouched for the shape; these are the business rules.
        """
        key = self.item_key
        wanted: dict[str, int] = {}
        problems = []
        for index, item in enumerate(items):
            where = f"line_items[{index}]"
            line_id, quantity = item[key], item["quantity"]
            present = [i for i in fo["line_items"] if i[key] == line_id]
            if not present:
                problems.append(
                    f"{where}.{key} : {line_id} is not in fulfillment "
                    f"order {fo['fulfillment_order_id']}"
                )
                continue
            pending = sum(i["quantity"] for i in present if i["status"] in PENDING_STATUSES)
            # One line listed twice counts once, in total.
            asked = wanted.get(line_id, 0) + quantity
            if pending == 0:
                status = present[0]["status"]
                hint = " (unfulfill it first)" if status == "fulfilled" else ""
                problems.append(
                    f"{where} : line item {line_id} is {status} and cannot be cancelled{hint}"
                )
            elif asked > pending:
                problems.append(f"{where}.quantity : {asked} exceeds the {pending} pending")
            else:
                wanted[line_id] = asked
        if problems:
            raise _refusal(400, *problems)
        return wanted

    def _take(
        self, order: dict[str, Any], fo: dict[str, Any], line_id: str, quantity: int, reason: str
    ) -> None:
        key = self.item_key
        left = quantity
        for item in [
            i for i in fo["line_items"] if i[key] == line_id and i["status"] in PENDING_STATUSES
        ]:
            take = min(left, item["quantity"])
            if take == item["quantity"]:
                item.update(status="cancelled", cancellation_reason=reason)
            else:
                item["quantity"] -= take
                fo["line_items"].append(
                    {
                        key: line_id,
                        "quantity": take,
                        "status": "cancelled",
                        "cancellation_reason": reason,
                    }
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


def contract_errors(violations: Sequence[Violation]) -> list[str]:
    """Contract violations as Carriyo's ``"field : message"`` error strings.

    The shape is documented ("partner_shipment_reference : must not be blank",
    carriyo.com/docs/api/conventions/); the wording per violation is not. A missing
    field is named itself, "must not be null" (the Bean Validation family the
    documented example belongs to); other violations keep the validator's message.
    """
    return [
        f"{v.target} : must not be null" if v.missing else f"{v.field} : {v.message}"
        for v in violations
    ]
