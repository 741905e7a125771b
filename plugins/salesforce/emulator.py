"""Salesforce Order Management emulator: fulfillment orders, cancel-item, the wrapping flow.

Documented behaviour it follows (seeds 000/001, shared/platforms/salesforce.md):

* ``POST /login/services/oauth2/token`` (client credentials) answers with an
  ``access_token`` and the org's ``instance_url`` (``.../salesforce/instance``).
* ``FulfillmentOrderLineItem.Quantity`` = ``OriginalQuantity`` minus what was
  cancelled; a cancel lowers ``Quantity`` (fractional quantities allowed).
* API calls without a live token get 401 ``[{"errorCode": "INVALID_SESSION_ID"}]``;
  versions below 48.0 and unknown fulfillment orders get 404 ``NOT_FOUND``; every
  API answer carries ``Sforce-Limit-Info: api-usage=N/100000``.

Where Salesforce does not document cancel-item's refusals, the emulator picks
one documented shape per case (so clients are exercised on each shape):

* more than remains -> 2xx ``{"success": false, "errors": [...]}`` (the doc: a
  success status "can still indicate processing errors");
* a line of another fulfillment order, or an unknown line -> 400 "Error with
  Output" as an object;
* a closed (Fulfilled) or cancelled fulfillment order -> 400 "Error with Output"
  inside an array;
* a body without ``fulfillmentOrderLineItemsToCancel`` -> 400 generic array.

A successful cancel answers 201 ``{"errors": [], "success": true}``.

The flow endpoint (``/actions/custom/flow/Cancelkit_Cancel_Fulfillment_Order_Items``)
applies the same rules and answers like an invocable action: 200 with
``isSuccess: true``, or 400 with ``isSuccess: false`` and the action's error.
The fulfillment order's Status is left alone when its lines reach 0 (whether
Salesforce changes it is not documented).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from cancelkit.plugin import Emulator, EmuRequest, EmuResponse, Fault

from .common import DEFAULT_LOGIN_URL, MINIMUM_API_VERSION
from .flow import (
    DEFAULT_FLOW_API_NAME,
    INPUT_FULFILLMENT_ORDER_ID,
    INPUT_LINE_ITEM_IDS,
    INPUT_QUANTITIES,
)

SANDBOX_CLIENT_ID = "sandbox-salesforce-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-salesforce-client-secret"
#: The org the sandbox stands for in recorded cassettes.
PRODUCTION_INSTANCE = "https://cancelkit-demo.my.salesforce.com"
DAILY_API_LIMIT = 100_000

#: Seeded fulfillment orders; examples/salesforce*.json cancel lines of these.
SEED_FULFILLMENT_ORDERS: dict[str, dict[str, Any]] = {
    "0a3xx0000000085AAA": {
        "Status": "Allocated",
        "StatusCategory": "ACTIVATED",
        "lines": {
            "0a4xx00000000W0001": {"Quantity": 3.0, "OriginalQuantity": 3.0},
            "0a4xx00000000W0002": {"Quantity": 2.0, "OriginalQuantity": 2.0},
        },
    },
    "0a3xx0000000086AAA": {
        "Status": "Fulfilled",
        "StatusCategory": "CLOSED",
        "lines": {
            "0a4xx00000000W0003": {"Quantity": 1.0, "OriginalQuantity": 1.0},
        },
    },
    "0a3xx0000000087AAA": {
        "Status": "Cancelled",
        "StatusCategory": "CANCELLED",
        "lines": {
            "0a4xx00000000W0004": {"Quantity": 0.0, "OriginalQuantity": 2.0},
        },
    },
    # Goods sold by weight: fractional quantities.
    "0a3xx0000000088AAA": {
        "Status": "Allocated",
        "StatusCategory": "ACTIVATED",
        "lines": {
            "0a4xx00000000W0005": {"Quantity": 2.5, "OriginalQuantity": 2.5},
        },
    },
}


class _Refusal(Exception):
    """A refused cancel: the status code and body the API answers with."""

    def __init__(self, status: int, payload: Any):
        self.status, self.payload = status, payload


class SalesforceEmulator(Emulator):
    """One Salesforce org serving both the ``salesforce`` and ``salesforce-flow`` plugins."""

    platform = "salesforce"
    serves: ClassVar[tuple[str, ...]] = ("salesforce", "salesforce-flow")
    #: The org's daily API limit is the one quota the sandbox emulates.
    faults: ClassVar[tuple[str, ...]] = (*Emulator.faults, "quota")
    production_bases: ClassVar[dict[str, str]] = {
        "login": DEFAULT_LOGIN_URL,
        "instance": PRODUCTION_INSTANCE,
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to :data:`SEED_FULFILLMENT_ORDERS`; no tokens; API usage at zero."""
        self.fulfillment_orders = copy.deepcopy(SEED_FULFILLMENT_ORDERS)
        self.tokens: list[str] = []
        self.api_usage = 0
        self.counter = 0

    def dump_state(self) -> dict[str, Any]:
        """Fulfillment orders, tokens and counters."""
        return {
            "fulfillment_orders": self.fulfillment_orders,
            "tokens": self.tokens,
            "api_usage": self.api_usage,
            "counter": self.counter,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`dump_state`."""
        self.fulfillment_orders = copy.deepcopy(dict(state["fulfillment_orders"]))
        self.tokens = list(state["tokens"])
        self.api_usage = int(state["api_usage"])
        self.counter = int(state["counter"])

    def client_settings(self, base_url: str) -> dict[str, str]:
        """Client credentials against the sandbox login URL; the token names the instance."""
        return {
            "login_url": f"{base_url}/login",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        }

    def is_token_request(self, request: EmuRequest) -> bool:
        """The OAuth2 endpoint."""
        return request.segments[:1] == ("login",)

    def fault_response(self, fault: Fault) -> EmuResponse | None:
        """Salesforce's own bodies for refusing faults."""
        if fault.kind == "401":
            return _array(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault.kind == "quota":
            return _array(
                403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", self._limit_header()
            )
        return None

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the token endpoint, cancel-item or the flow."""
        route = request.segments
        if route == ("login", "services", "oauth2", "token") and request.method == "POST":
            return self._token(request, base=request.base_url)
        if route[:3] != ("instance", "services", "data") or len(route) < 4:
            return _array(404, "NOT_FOUND", "The requested resource does not exist")
        if request.bearer() not in self.tokens:
            return _array(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.api_usage += 1
        version, rest = route[3], route[4:]
        try:
            supported = Decimal(version.removeprefix("v")) >= MINIMUM_API_VERSION
        except ArithmeticError:
            supported = False
        if not supported:
            return self._answer(
                _Refusal(404, _errors("NOT_FOUND", "The requested resource does not exist"))
            )
        try:
            match rest:
                case (
                    "commerce",
                    "fulfillment",
                    "fulfillment-orders",
                    fo_id,
                    "actions",
                    "cancel-item",
                ) if request.method == "POST":
                    return self._cancel_item(fo_id, request)
                case ("actions", "custom", "flow", flow_name) if request.method == "POST":
                    return self._flow(flow_name, request)
        except _Refusal as refusal:
            return self._answer(refusal)
        return self._answer(
            _Refusal(404, _errors("NOT_FOUND", "The requested resource does not exist"))
        )

    def _token(self, request: EmuRequest, base: str) -> EmuResponse:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return EmuResponse.json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            SANDBOX_CLIENT_ID,
            SANDBOX_CLIENT_SECRET,
        ):
            return EmuResponse.json(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        self.counter += 1
        token = f"sbx-salesforce-token-{self.counter}"
        self.tokens.append(token)
        return EmuResponse.json(
            200,
            {
                "access_token": token,
                "instance_url": f"{base}/instance",
                "id": f"{base}/login/id/00Dxx0000000001EAA/005xx0000000001AAA",
                "token_type": "Bearer",
                "issued_at": "1767225600000",
                "signature": "sandbox-signature",
            },
        )

    def _answer(self, refusal: _Refusal) -> EmuResponse:
        return EmuResponse.json(refusal.status, refusal.payload, self._limit_header())

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{DAILY_API_LIMIT}"}

    # -- cancel-item -----------------------------------------------------------
    def _cancel_item(self, fo_id: str, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            raise _Refusal(
                400, _errors("JSON_PARSER_ERROR", "The request body is not JSON")
            ) from None
        items = body.get("fulfillmentOrderLineItemsToCancel") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise _Refusal(
                400,
                _errors(
                    "INVALID_API_INPUT", "fulfillmentOrderLineItemsToCancel: required and not empty"
                ),
            )
        pairs = [
            (i.get("fulfillmentOrderLineItemId"), i.get("quantity"))
            for i in items
            if isinstance(i, dict)
        ]
        problem = self._apply(fo_id, pairs)
        if problem is not None:  # the documented 2xx that still reports errors
            return EmuResponse.json(
                201, {"errors": [problem], "success": False}, self._limit_header()
            )
        return EmuResponse.json(201, {"errors": [], "success": True}, self._limit_header())

    def _apply(self, fo_id: str, pairs: list[tuple[Any, Any]]) -> dict[str, str] | None:
        """Cancel all pairs or none. Raises _Refusal, or returns a processing error."""
        fo = self.fulfillment_orders.get(fo_id)
        if fo is None:
            raise _Refusal(404, _errors("NOT_FOUND", f"Fulfillment order {fo_id} not found"))
        if fo["StatusCategory"] in ("CLOSED", "CANCELLED"):
            raise _Refusal(
                400,
                [
                    _with_output(
                        f"Fulfillment order {fo_id} is {fo['Status']} and can't be changed",
                        "INVALID_STATUS",
                        "The fulfillment order status doesn't allow canceling items",
                    )
                ],
            )
        for line_id, quantity in pairs:
            if line_id not in fo["lines"]:
                other = next(
                    (k for k, v in self.fulfillment_orders.items() if line_id in v["lines"]), None
                )
                why = (
                    f"{line_id} belongs to fulfillment order {other}"
                    if other
                    else f"{line_id} is not a fulfillment order line item"
                )
                raise _Refusal(400, _with_output(why, "INVALID_ID_FIELD", why))
            if (
                not isinstance(quantity, (int, float))
                or isinstance(quantity, bool)
                or quantity <= 0
            ):
                raise _Refusal(
                    400,
                    _with_output(
                        "quantity must be greater than 0",
                        "INVALID_API_INPUT",
                        f"quantity for {line_id} must be greater than 0",
                    ),
                )
            left = fo["lines"][line_id]["Quantity"]
            if quantity > left:
                return {
                    "errorCode": "INVALID_QUANTITY",
                    "message": f"Can't cancel {quantity:g} of {line_id}: {left:g} remaining",
                }
        for line_id, quantity in pairs:
            fo["lines"][line_id]["Quantity"] -= quantity
        return None

    # -- the wrapping flow --------------------------------------------------------
    def _flow(self, flow_name: str, request: EmuRequest) -> EmuResponse:
        if flow_name != DEFAULT_FLOW_API_NAME:
            raise _Refusal(404, _errors("NOT_FOUND", f"flow {flow_name} not found"))
        try:
            inputs = request.json()["inputs"]
            [values] = inputs
            ids, quantities = values[INPUT_LINE_ITEM_IDS], values[INPUT_QUANTITIES]
            fo_id = values[INPUT_FULFILLMENT_ORDER_ID]
        except (ValueError, KeyError, TypeError):
            raise _Refusal(
                400,
                _errors(
                    "INVALID_INPUT",
                    "inputs: one input with fulfillmentOrderId, "
                    "fulfillmentOrderLineItemIds and quantities",
                ),
            ) from None
        try:
            if len(ids) != len(quantities):
                raise _Refusal(
                    400,
                    [
                        {
                            "errorCode": "INVALID_API_INPUT",
                            "message": "ids and quantities differ in length",
                        }
                    ],
                )
            problem = self._apply(fo_id, list(zip(ids, quantities, strict=True)))
        except _Refusal as refusal:
            problem = _first_error(refusal.payload)
        if problem is None:
            return EmuResponse.json(
                200,
                [
                    {
                        "actionName": flow_name,
                        "errors": None,
                        "isSuccess": True,
                        "outputValues": {"Flow__InterviewStatus": "Finished"},
                    }
                ],
                self._limit_header(),
            )
        message = (
            f"An error occurred when executing a flow interview. "
            f"Cancel Fulfillment Order Items: {problem['message']}"
        )
        return EmuResponse.json(
            400,
            [
                {
                    "actionName": flow_name,
                    "isSuccess": False,
                    "errors": [
                        {"statusCode": problem["errorCode"], "message": message, "fields": []}
                    ],
                    "outputValues": None,
                }
            ],
            self._limit_header(),
        )


def _errors(code: str, message: str) -> list[dict[str, str]]:
    """The generic Salesforce REST error array."""
    return [{"errorCode": code, "message": message}]


def _array(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> EmuResponse:
    return EmuResponse.json(status, _errors(code, message), headers)


def _with_output(message: str, code: str, detail: str) -> dict[str, Any]:
    """Connect REST "Error with Output" around a cancel-line-items output."""
    return {
        "enhancedErrorType": None,
        "message": message,
        "output": {"errors": [{"errorCode": code, "message": detail}], "success": False},
    }


def _first_error(payload: Any) -> dict[str, str]:
    item = payload[0] if isinstance(payload, list) else payload
    if "output" in item:
        first: dict[str, str] = item["output"]["errors"][0]
        return first
    return {"errorCode": item.get("errorCode", "UNKNOWN"), "message": item.get("message", "")}
