"""cancelkit plugin for Walmart Marketplace (US): cancel order lines."""
