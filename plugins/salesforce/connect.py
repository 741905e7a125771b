"""``salesforce``: Connect REST ``fulfillment-orders/{id}/actions/cancel-item``.

Source: seed 000 ("Fulfillment Orders, Cancel Item"), shared/platforms/salesforce.md §1.
"""

from __future__ import annotations

from cancelkit.plugin import (
    CancelRequest,
    CancelResult,
    Capabilities,
    HttpCall,
    HttpResponse,
    Settings,
    lines_with_status,
    path_segment,
    rejected_result,
)

from . import common


class SalesforceConnectAdapter(common.SalesforceAdapter):
    """Salesforce Order Management, Connect REST cancel-item (synchronous)."""

    name = "salesforce"
    title = "Salesforce Order Management (Connect REST cancel-item)"
    capabilities = Capabilities(
        mode="sync",
        # FulfillmentOrderLineItem quantities are Doubles on Salesforce.
        fractional_quantity=True,
        required_fields=("fulfillment_order_id",),
        settings=common.SETTINGS,
        rate_limit="org API limit (Sforce-Limit-Info); 403 REQUEST_LIMIT_EXCEEDED when spent",
        resend_safe=False,
    )

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """``POST .../fulfillment-orders/{id}/actions/cancel-item``."""
        assert request.fulfillment_order_id is not None
        url = (
            f"{common.data_url(settings)}/commerce/fulfillment/fulfillment-orders/"
            f"{path_segment(request.fulfillment_order_id)}/actions/cancel-item"
        )
        body = {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": line.line_id, "quantity": line.quantity}
                for line in request.lines
            ]
        }
        return self.post(url, body)

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """2xx ``success`` true/false, Error with Output, generic error arrays."""
        status = response.status
        if not 200 <= status < 300:
            return common.refused(self.name, request, response)
        payload = response.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("success"), bool):
            return self.unknown(request, f"HTTP {status} without a readable result", status)
        if payload["success"]:
            return CancelResult(
                platform=self.name,
                outcome="cancelled",
                lines=lines_with_status(request, "cancelled"),
                http_status=status,
                message=f"cancelled on fulfillment order {request.fulfillment_order_id}",
            )
        # The documented twist: a success status whose body reports processing errors.
        errors = common.error_items(payload)
        message = None if errors else "Salesforce reported success: false"
        return rejected_result(self.name, request, errors, status, message)

    def how_to_check(self, request: CancelRequest) -> str:
        """Quantity = OriginalQuantity - cancelled quantity on each line item."""
        return (
            f"query FulfillmentOrderLineItem Quantity and OriginalQuantity for fulfillment order "
            f"{request.fulfillment_order_id} (Quantity falls by what was cancelled)"
        )
