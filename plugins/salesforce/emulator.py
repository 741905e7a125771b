"""Salesforce Order Management emulator: fulfillment orders, cancel-item, the wrapping flow.

It judges requests by Salesforce's published contracts, never by the plugin (it
imports nothing from the adapters):

* cancel-item bodies by ``contracts/salesforce-cancel-item.schema.json`` (written
  from "Fulfillment Order Line Items To Cancel Input", seed 000); a failing body
  gets 400 with Salesforce's error array, one ``{"errorCode", "message"}`` per
  violation;
* flow invocations by the shipped flow itself (``flows/*.flow-meta.xml``, read by
  :mod:`.flowdef`): only its ``isInput`` variables are accepted, each with its
  type, and ``outputValues`` holds its ``isOutput`` variables. A failing input gets
  the invocable-action answer for that input (``isSuccess: false``, ``errors``
  of ``{"statusCode", "message", "fields"}``); a flow the org does not have, or has
  inactive, gets 404 ``NOT_FOUND``. The core action inside the flow checks what
  the flow built against the same cancel-item contract (its input is the same
  representation).

Documented behaviour it follows (seeds 000/001, shared/platforms/salesforce.md):

* ``POST /login/services/oauth2/token`` (client credentials) answers with an
  ``access_token`` and the org's ``instance_url`` (``.../salesforce/instance``);
  in cassettes both stand for the org's My Domain, the only host that serves the
  client credentials flow.
* ``FulfillmentOrderLineItem.Quantity`` = ``OriginalQuantity`` minus what was
  cancelled; a cancel lowers ``Quantity`` (fractional quantities allowed).
* API calls without a live token (one expires after :data:`SESSION_LIFETIME` on
  the sandbox clock) get 401 ``[{"errorCode": "INVALID_SESSION_ID"}]``;
  versions below 48.0 and unknown fulfillment orders get 404 ``NOT_FOUND``; every
  API answer carries ``Sforce-Limit-Info: api-usage=N/100000``.
* Only an active autolaunched flow can be invoked ("Flow Actions", Actions
  Developer Guide); the response holds ``Flow__InterviewStatus`` and the flow's
  output variables.

Where Salesforce does not document cancel-item's refusals, the emulator picks
one documented shape per case (so clients are exercised on each shape):

* more than remains -> 2xx ``{"success": false, "errors": [...]}`` (the doc: a
  success status "can still indicate processing errors");
* a line of another fulfillment order, or an unknown line -> 400 "Error with
  Output" as an object;
* a closed (Fulfilled) or cancelled fulfillment order -> 400 "Error with Output"
  inside an array;
* a body the contract refuses -> 400 generic array, ``INVALID_API_INPUT``
  (``JSON_PARSER_ERROR`` when it is not JSON). The codes are the emulator's.

A successful cancel answers 201 ``{"errors": [], "success": true}``.

The flow runs as the shipped flow does: lists of different lengths end with
``cancelled: false``; any refusal of the core action (including ``success:
false``) takes the fault path, ``cancelled: false`` and ``errorMessage`` =
``"<errorCode>: <message>"`` (the emulator's rendering of ``$Flow.FaultMessage``);
otherwise ``cancelled: true``. The interview itself finishes: 200 ``isSuccess:
true``. The fulfillment order's Status is left alone when its lines reach 0
(whether Salesforce changes it is not documented).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
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

from .flowdef import FlowDefinition, FlowVariable, shipped_flows

SANDBOX_CLIENT_ID = "sandbox-salesforce-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-salesforce-client-secret"
#: The org the sandbox stands for in recorded cassettes: its My Domain, which serves
#: both the token endpoint and the API.
PRODUCTION_INSTANCE = "https://cancelkit-demo.my.salesforce.com"
DAILY_API_LIMIT = 100_000
#: Seconds a token lives (sandbox clock). The token answer states none; this is the
#: org's default session timeout (Setup > Session Settings: 2 hours).
SESSION_LIFETIME = 2 * 3600
#: Seed 000: cancel-item's "Available version 48.0".
FIRST_API_VERSION = Decimal("48.0")
#: The published request body of cancel-item, which is also the core action's input.
CANCEL_ITEM = Contract.packaged(
    "cancelkit.plugins.salesforce", "contracts/salesforce-cancel-item.schema.json"
)
#: The flows the emulated org has deployed: the ones cancelkit ships.
FLOWS: dict[str, FlowDefinition] = shipped_flows()
#: The core action's input parameter that takes the fulfillment order id (seed 001's
#: "Fulfillment Order Id"; API name as in the SOM StartUp Kit flow).
ACTION_FULFILLMENT_ORDER_ID = "fulfillmentOrderId"
#: What the shipped flow reports when its two lists differ in length (its own literal).
COUNT_MISMATCH = "fulfillmentOrderLineItemIds and quantities must have the same length"


def _errors(code: str, message: str) -> list[dict[str, str]]:
    """The generic Salesforce REST error array."""
    return [{"errorCode": code, "message": message}]


_NOT_JSON = Refusal(400, _errors("JSON_PARSER_ERROR", "The request body is not JSON"))

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


def _deployed_flows() -> dict[str, str]:
    """Flow API name -> its status in the org, as deployed (only ``Active`` ones run)."""
    return {name: flow.status for name, flow in FLOWS.items()}


def _flow_statuses(raw: Any) -> dict[str, str]:
    """Saved flow statuses; a state saved before they were kept: as deployed."""
    return dict(raw) if raw else _deployed_flows()


class SalesforceEmulator(StatefulEmulator):
    """One Salesforce org serving both the ``salesforce`` and ``salesforce-flow`` plugins."""

    platform = "salesforce"
    serves: ClassVar[tuple[str, ...]] = ("salesforce", "salesforce-flow")
    #: The org's daily API limit is the one quota the sandbox emulates.
    faults: ClassVar[tuple[str, ...]] = (*StatefulEmulator.faults, "quota")
    # The client credentials flow is served only on the org's My Domain, so the
    # sandbox's login URL stands for it too (never login.salesforce.com).
    production_bases: ClassVar[dict[str, str]] = {
        "login": PRODUCTION_INSTANCE,
        "instance": PRODUCTION_INSTANCE,
    }
    # Seen on real Salesforce answers, not documented (the adapter reads it first).
    request_id_header = "X-SFDC-Request-Id"

    fulfillment_orders = StateField(SEED_FULFILLMENT_ORDERS)
    tokens = TokenIssuer(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        lifetime=SESSION_LIFETIME,
        unauthorized=Refusal(401, _errors("INVALID_SESSION_ID", "Session expired or invalid")),
        unsupported_grant=Refusal(
            400,
            {"error": "unsupported_grant_type", "error_description": "grant type not supported"},
        ),
        invalid_client=Refusal(
            400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        ),
        answer=lambda token, request: {
            "access_token": token,
            "instance_url": f"{request.base_url}/instance",
            "id": f"{request.base_url}/login/id/00Dxx0000000001EAA/005xx0000000001AAA",
            "token_type": "Bearer",
            "issued_at": "1767225600000",
            "signature": "sandbox-signature",
        },
    )
    api_usage = StateField(0)
    flows = StateField(factory=_deployed_flows, required=False, load=_flow_statuses)

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
            return self.tokens.issue(request)
        if route[:3] != ("instance", "services", "data") or len(route) < 4:
            raise Refusal(404, _errors("NOT_FOUND", "The requested resource does not exist"))
        self.tokens.check(request)
        self.api_usage += 1
        try:
            return self._api(route[3], route[4:], request)
        except Refusal as refusal:  # every API answer says the usage, refusals too
            raise refusal.with_headers(self._limit_header()) from None

    def _api(self, version: str, rest: tuple[str, ...], request: EmuRequest) -> EmuResponse:
        try:
            supported = Decimal(version.removeprefix("v")) >= FIRST_API_VERSION
        except ArithmeticError:
            supported = False
        if supported:
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
        raise Refusal(404, _errors("NOT_FOUND", "The requested resource does not exist"))

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{DAILY_API_LIMIT}"}

    # -- cancel-item -----------------------------------------------------------
    def _cancel_item(self, fo_id: str, request: EmuRequest) -> EmuResponse:
        body = CANCEL_ITEM.checked_body(request, refuse=_contract_refusal, not_json=_NOT_JSON)
        problem = self._apply(fo_id, _pairs(body))
        if problem is not None:  # the documented 2xx that still reports errors
            return EmuResponse.json(
                201, {"errors": [problem], "success": False}, self._limit_header()
            )
        return EmuResponse.json(201, {"errors": [], "success": True}, self._limit_header())

    def _apply(self, fo_id: Any, pairs: list[tuple[str, float]]) -> dict[str, str] | None:
        """Cancel all pairs or none. Raises Refusal, or returns a processing error.

        ``pairs`` come from a body that met the cancel-item contract.
        """
        fo = self.fulfillment_orders.get(fo_id) if isinstance(fo_id, str) else None
        if fo is None:
            raise Refusal(404, _errors("NOT_FOUND", f"Fulfillment order {fo_id} not found"))
        if fo["StatusCategory"] in ("CLOSED", "CANCELLED"):
            raise Refusal(
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
                raise Refusal(400, _with_output(why, "INVALID_ID_FIELD", why))
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
        flow = FLOWS.get(flow_name)
        if flow is None or self.flows.get(flow_name) != "Active":
            # Only active autolaunched flows are invocable actions; others do not exist.
            raise Refusal(404, _errors("NOT_FOUND", "The requested resource does not exist"))
        try:
            body = request.json()
        except ValueError:
            raise _NOT_JSON.copy() from None
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs or set(body) != {"inputs"}:
            raise Refusal(
                400,
                _errors(
                    "JSON_PARSER_ERROR",
                    'The request body must be {"inputs": [...]}, one object per interview',
                ),
            )
        # One interview per input, one answer per input, in order.
        answers = [self._interview(flow, values) for values in inputs]
        status = 200 if all(a["isSuccess"] for a in answers) else 400
        return EmuResponse.json(status, answers, self._limit_header())

    def _interview(self, flow: FlowDefinition, values: Any) -> dict[str, Any]:
        """Run the shipped flow once on one input: its answer item."""
        problems = _input_problems(flow, values)
        if problems:
            return {
                "actionName": flow.api_name,
                "errors": problems,
                "isSuccess": False,
                "outputValues": None,
            }
        assert isinstance(values, dict)
        shape = _FlowShape.of(flow)
        ids = values.get(shape.line_item_ids) or []
        quantities = values.get(shape.quantities) or []
        outputs: dict[str, Any] = {shape.cancelled: False, shape.message: None}
        if len(ids) != len(quantities):
            outputs[shape.message] = COUNT_MISMATCH
        else:
            fault = self._core_action(values.get(shape.fulfillment_order_id), ids, quantities)
            if fault is None:
                outputs[shape.cancelled] = True
            else:  # the fault path: $Flow.FaultMessage
                outputs[shape.message] = f"{fault['errorCode']}: {fault['message']}"
        return {
            "actionName": flow.api_name,
            "errors": None,
            "isSuccess": True,
            "outputValues": {**outputs, "Flow__InterviewStatus": "Finished"},
        }

    def _core_action(
        self, fo_id: Any, ids: list[Any], quantities: list[Any]
    ) -> dict[str, str] | None:
        """``cancelFulfillmentOrderItem`` on what the flow built; its fault, if any."""
        body = {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": i, "quantity": q}
                for i, q in zip(ids, quantities, strict=True)
            ]
        }
        try:
            CANCEL_ITEM.check(body, _contract_refusal)
            return self._apply(fo_id, _pairs(body))
        except Refusal as refusal:
            return _first_error(refusal.payload)


class _FlowShape:
    """Which of a flow's variables play which part, read from the flow alone.

    The fulfillment order id is what the flow gives the core action's
    ``fulfillmentOrderId``; the line item ids and quantities are its String and
    Number collection inputs; the outcome is its Boolean output and the message
    its String output.
    """

    def __init__(self, flow: FlowDefinition):
        [action] = [a for a in flow.action_calls if a.action_type == "cancelFulfillmentOrderItem"]
        self.fulfillment_order_id = action.inputs[ACTION_FULFILLMENT_ORDER_ID]
        self.line_item_ids = _only(flow.inputs.values(), "String", collection=True)
        self.quantities = _only(flow.inputs.values(), "Number", collection=True)
        self.cancelled = _only(flow.outputs.values(), "Boolean", collection=False)
        self.message = _only(flow.outputs.values(), "String", collection=False)

    @classmethod
    def of(cls, flow: FlowDefinition) -> _FlowShape:
        """The shape of ``flow`` (read once per flow)."""
        if flow.api_name not in _SHAPES:
            _SHAPES[flow.api_name] = cls(flow)
        return _SHAPES[flow.api_name]


_SHAPES: dict[str, _FlowShape] = {}


def _only(variables: Iterable[FlowVariable], data_type: str, *, collection: bool) -> str:
    """The name of the one variable of this type (a flow with none or two is refused)."""
    [name] = [
        v.name for v in variables if (v.data_type, v.is_collection) == (data_type, collection)
    ]
    return name


#: Flow data type -> the JSON values REST accepts for it (bool is not a Number).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "Number": (int, float),
    "Currency": (int, float),
    "Boolean": (bool,),
}


def _input_problems(flow: FlowDefinition, values: Any) -> list[dict[str, Any]]:
    """Why the flow cannot take ``values``, per input (empty when it can).

    Unknown names and values of the wrong type are refused; a missing input is
    null in the interview, as in Flow.
    """
    if not isinstance(values, dict):
        return [_input_error("INVALID_INPUT", "Each input must be a JSON object", [])]
    problems = []
    for name, value in values.items():
        variable = flow.inputs.get(name)
        if variable is None:
            problems.append(
                _input_error(
                    "INVALID_INPUT",
                    f"{name} isn't an input variable of flow {flow.api_name}; its inputs: "
                    f"{', '.join(sorted(flow.inputs))}",
                    [name],
                )
            )
        elif value is not None and not _fits(variable, value):
            kind = (
                f"a list of {variable.data_type}"
                if variable.is_collection
                else f"a {variable.data_type}"
            )
            problems.append(
                _input_error("INVALID_TYPE", f"The value for {name} must be {kind}", [name])
            )
    return problems


def _fits(variable: FlowVariable, value: Any) -> bool:
    accepted = _JSON_TYPES.get(variable.data_type)
    if accepted is None:  # Apex-defined, SObject...: not passable over REST
        return False

    def one(item: Any) -> bool:
        if isinstance(item, bool) and bool not in accepted:
            return False
        return isinstance(item, accepted)

    if variable.is_collection:
        return isinstance(value, list) and all(one(item) for item in value)
    return one(value)


def _input_error(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    """One item of an invocable action's ``errors``."""
    return {"statusCode": code, "message": message, "fields": fields}


def _contract_refusal(violations: Sequence[Violation]) -> Refusal:
    """A body the cancel-item contract refuses: 400, one error per violation."""
    return Refusal(
        400,
        [
            {"errorCode": "INVALID_API_INPUT", "message": f"{v.field}: {v.message}"}
            for v in violations
        ],
    )


def _pairs(body: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(line item id, quantity) from a body that met the contract."""
    return [
        (item["fulfillmentOrderLineItemId"], item["quantity"])
        for item in body["fulfillmentOrderLineItemsToCancel"]
    ]


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
