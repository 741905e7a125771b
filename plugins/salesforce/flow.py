"""``salesforce-flow``: the Flow core action "Cancel Fulfillment Order Item".

Salesforce documents that Order Management core actions are invoked through
Connect REST or Apex, not the standard actions endpoint (shared/platforms/
salesforce.md §2). So this adapter calls an autolaunched flow that wraps the
core action ``cancelFulfillmentOrderItem``:
``POST {instance}/services/data/v{NN.N}/actions/custom/flow/{flow_api_name}``.
The flow's definition ships beside this module (``flows/``); its input names
are the constants below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from cancelkit.plugin import (
    CancelRequest,
    CancelResult,
    Capabilities,
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

SETTINGS = tuple(
    replace(s, default=DEFAULT_FLOW_API_NAME) if s.name == "flow_api_name" else s
    for s in common.SETTINGS
)


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
        """The invocable-action answer: ``[{"actionName", "errors", "isSuccess", ...}]``."""
        payload = response.json()
        status = response.status
        outcome = _invocation(payload)
        if outcome is None:
            if 200 <= status < 300:
                return self.unknown(request, f"HTTP {status} without an action result", status)
            return common.refused(self.name, request, response)
        if outcome.get("isSuccess") is True and status < 300:
            return CancelResult(
                platform=self.name,
                outcome="cancelled",
                lines=lines_with_status(request, "cancelled"),
                http_status=status,
                message=f"flow {outcome.get('actionName')} finished",
                details={"output_values": outcome.get("outputValues") or {}},
            )
        errors = tuple(common.error_items({"errors": outcome.get("errors") or []})) or (
            ResultError("the flow reported isSuccess: false", "FLOW_FAILED"),
        )
        return rejected_result(self.name, request, errors, status)

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
