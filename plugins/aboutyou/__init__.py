"""About You Sellers Center: asynchronous batch cancel of order items."""
