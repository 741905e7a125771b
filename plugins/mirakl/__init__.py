"""Mirakl Connect (seller API): asynchronous cancel actions."""
