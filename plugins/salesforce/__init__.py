"""Salesforce Order Management: Connect REST cancel-item, and the Flow core action."""
