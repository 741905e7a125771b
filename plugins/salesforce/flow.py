"""``salesforce-flow``: the Flow core action "Cancel Fulfillment Order Item".

Salesforce documents that Order Management core actions are invoked through
Connect REST or Apex, not the standard actions endpoint (shared/platforms/
salesforce.md §2). So this adapter calls an autolaunched flow that wraps the
core action ``cancelFulfillmentOrderItem``:
``POST {instance}/services/data/v{NN.N}/actions/custom/flow/{flow_api_name}``.
The flow's definition ships beside this module (``flows/``; deploy it with
``cancelkit salesforce flow-package DIR``). Its input and output variable names
are the constants below, kept here on purpose rather than read from the flow: the
sandbox's emulator and the tests read the flow, so a rename on either side fails.

The flow reports its own outcome: ``cancelled`` is true only when the core action
finished without a fault, else false with ``errorMessage``. A result is
``cancelled`` only on ``cancelled: true``; an answer without that output is
``unknown`` (never resent). A missing or inactive flow is a configuration error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any

from cancelkit.plugin import (
    CancelRequest,
    CancelResult,
    Capabilities,
    ConfigurationError,
    HttpCall,
    HttpResponse,
    ResultError,
    Settings,
    lines_with_status,
    path_segment,
    rejected_result,
)

from . import common

#: API name of the shipped flow (flows/Cancelkit_Cancel_Fulfillment_Order_Items.flow-meta.xml).
DEFAULT_FLOW_API_NAME = "Cancelkit_Cancel_Fulfillment_Order_Items"
FLOW_FILE = Path(__file__).parent / "flows" / f"{DEFAULT_FLOW_API_NAME}.flow-meta.xml"
#: The flow's input variables: primitives, since REST cannot pass Apex-defined types.
INPUT_FULFILLMENT_ORDER_ID = "fulfillmentOrderId"
INPUT_LINE_ITEM_IDS = "fulfillmentOrderLineItemIds"
INPUT_QUANTITIES = "quantities"
#: The flow's output variables, which it sets itself (no core action output is read).
OUTPUT_CANCELLED = "cancelled"
OUTPUT_ERROR_MESSAGE = "errorMessage"
#: Error codes of Salesforce's generic error array that mean "no such active flow".
FLOW_MISSING_CODES = frozenset({"NOT_FOUND", "INVALID_TYPE"})
#: A fault message that starts with an error code (``INVALID_QUANTITY: ...``).
_LEADING_CODE = re.compile(r"^([A-Z][A-Z0-9_]{2,}):\s*(.*)$", re.DOTALL)

SETTINGS = tuple(
    replace(s, default=DEFAULT_FLOW_API_NAME) if s.name == "flow_api_name" else s
    for s in common.SETTINGS
)

# normalise gets the answer, not the URL: the flow this thread last translated names
# the flow in a configuration error (send translates, then normalises, in one thread).
_translated_flow: ContextVar[str | None] = ContextVar("salesforce_flow_name", default=None)


class SalesforceFlowAdapter(common.SalesforceAdapter):
    """Salesforce Order Management through an autolaunched flow (invocable action)."""

    name = "salesforce-flow"
    title = "Salesforce Order Management (Flow core action, via an autolaunched flow)"
    capabilities = Capabilities(
        mode="sync",
        fractional_quantity=True,
        required_fields=("fulfillment_order_id",),
        settings=SETTINGS,
        rate_limit="org API limit (Sforce-Limit-Info); 403 REQUEST_LIMIT_EXCEEDED when spent",
        resend_safe=False,
    )

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``POST .../actions/custom/flow/{flow_api_name}`` with one flow input."""
        flow = settings.get("flow_api_name") or DEFAULT_FLOW_API_NAME
        _translated_flow.set(flow)
        url = f"{common.data_url(settings)}/actions/custom/flow/{path_segment(flow)}"
        body = {
            "inputs": [
                {
                    INPUT_FULFILLMENT_ORDER_ID: request.fulfillment_order_id,
                    INPUT_LINE_ITEM_IDS: [line.line_id for line in request.lines],
                    INPUT_QUANTITIES: [line.quantity for line in request.lines],
                }
            ]
        }
        return self.post(url, body)

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """The invocable-action answer, read through the flow's own ``cancelled`` output.

        Raises ConfigurationError when Salesforce says the flow does not exist or is
        not active (nothing ran, and only deploying or naming the flow fixes it).
        """
        payload = response.json()
        status = response.status
        outcome = _invocation(payload)
        if outcome is None:
            if _flow_missing(status, payload):
                raise ConfigurationError(self._missing_flow_message(response))
            if 200 <= status < 300:
                return self.unknown(request, f"HTTP {status} without an action result", status)
            return common.refused(self.name, request, response)
        if outcome.get("isSuccess") is True and status < 300:
            return self._read_outputs(request, outcome, status)
        errors = tuple(common.error_items({"errors": outcome.get("errors") or []})) or (
            ResultError("the flow reported isSuccess: false", "FLOW_FAILED"),
        )
        return rejected_result(self.name, request, errors, status)

    def _read_outputs(
        self, request: CancelRequest, outcome: Mapping[str, Any], status: int
    ) -> CancelResult:
        """``cancelled: true`` is the only proof; false is a refusal; absent is unknown."""
        outputs = outcome.get("outputValues")
        outputs = outputs if isinstance(outputs, Mapping) else {}
        cancelled = outputs.get(OUTPUT_CANCELLED)
        flow = outcome.get("actionName")
        if cancelled is True:
            return CancelResult(
                platform=self.name,
                outcome="cancelled",
                lines=lines_with_status(request, "cancelled"),
                http_status=status,
                message=f"flow {flow} cancelled the lines",
                details={"output_values": dict(outputs)},
            )
        if cancelled is False:
            error = _fault(outputs.get(OUTPUT_ERROR_MESSAGE))
            result = rejected_result(self.name, request, (error,), status)
            return replace(result, details={**result.details, "output_values": dict(outputs)})
        # Not the shipped flow's answer: whether the core action ran is not known.
        return self.unknown(
            request,
            f"flow {flow} finished without its Boolean output {OUTPUT_CANCELLED!r} "
            "(is the deployed flow the one cancelkit ships?)",
            status,
        )

    def _missing_flow_message(self, response: HttpResponse) -> str:
        flow = _translated_flow.get() or "named by CANCELKIT_SALESFORCE_FLOW_API_NAME"
        said = "; ".join(
            f"{e.code}: {e.message}" if e.code else e.message
            for e in common.error_items(response.json())
        )
        return (
            f"{self.name}: the org has no active autolaunched flow {flow} (HTTP "
            f"{response.status}{', ' + said if said else ''}); nothing was cancelled. Only an "
            "active flow can be invoked over REST: deploy and activate it (cancelkit salesforce "
            "flow-package DIR writes the project), or set CANCELKIT_SALESFORCE_FLOW_API_NAME to "
            "the API name of the flow you deployed"
        )

    def how_to_check(self, request: CancelRequest) -> str:
        """Same evidence as cancel-item, plus the flow's interview log."""
        return (
            f"query FulfillmentOrderLineItem Quantity for fulfillment order "
            f"{request.fulfillment_order_id}, or look at the flow's paused/failed interviews"
        )


def _invocation(payload: Any) -> Mapping[str, Any] | None:
    """The first invocable-action result in the answer, if it is one."""
    if isinstance(payload, list) and payload and isinstance(payload[0], Mapping):
        first = payload[0]
        if "isSuccess" in first:
            return first
    return None


def _flow_missing(status: int, payload: Any) -> bool:
    """Salesforce's own error array saying there is no such (active) flow."""
    if not 400 <= status < 500 or not isinstance(payload, list):
        return False
    codes = {item.get("errorCode") for item in payload if isinstance(item, Mapping)}
    return bool(codes & FLOW_MISSING_CODES)


def _fault(message: Any) -> ResultError:
    """The flow's ``errorMessage`` ($Flow.FaultMessage) as an error, its code if it leads."""
    text = str(message) if message else "the flow reported cancelled: false"
    match = _LEADING_CODE.match(text)
    if match:
        return ResultError(match.group(2) or text, match.group(1))
    return ResultError(text, "FLOW_FAULT")
