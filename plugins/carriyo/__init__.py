"""Carriyo: cancel fulfillment order line items (synchronous, full order back)."""
