"""No answer body, however odd, makes a normaliser raise: every adapter, every status."""

from __future__ import annotations

from typing import Any

import pytest

from cancelkit import PluginRegistry
from cancelkit.core.http import HttpResponse
from cancelkit.core.model import OUTCOMES
from cancelkit.core.schemas import load_request

ODD_BODIES = [
    "",
    " ",
    "null",
    "true",
    "0",
    "[]",
    "{}",
    "[1, 2]",
    '"text"',
    "[null]",
    "[[]]",
    '{"success": "yes"}',
    '{"errors": "x"}',
    '{"errors": [1, null, "a"]}',
    '{"code": null}',
    '[{"output": 5}]',
    '[{"isSuccess": true}]',
    '[{"isSuccess": false, "errors": "x"}]',
    '{"status": 7}',
    '{"action_id": 12}',
    "<html><body>oops</body></html>",
    '{"trunc',
    "\u00ff\u00fe binary-ish",
]
STATUSES = [200, 201, 202, 204, 400, 404, 409, 422, 429, 500, 502, 503]
ADAPTERS = PluginRegistry().platforms()

REQUEST = load_request(
    {
        "order_id": "O-1",
        "fulfillment_order_id": "FO-1",
        "currency": "EUR",
        "reason": "CUSTOMER_REQUEST",
        "lines": [{"line_id": "L-1", "quantity": 1, "price": "1.00", "shipping_price": "0"}],
    }
)


@pytest.mark.parametrize("platform", sorted(ADAPTERS))
def test_normalise_never_raises(platform: str) -> None:
    adapter = ADAPTERS[platform]
    for status in STATUSES:
        for body in ODD_BODIES:
            response = HttpResponse(status, {"Retry-After": "soon"}, body)
            result = adapter.normalise(REQUEST, response)
            # 5xx, 429 and unreadable bodies never reach normalise (core classifies
            # them: tests/test_reliability.py); whatever does must not make it raise.
            assert result.outcome in OUTCOMES, (status, body)


@pytest.mark.parametrize(
    "platform", sorted(p for p, a in ADAPTERS.items() if a.capabilities.has_status)
)
def test_normalise_status_never_raises(platform: str) -> None:
    adapter = ADAPTERS[platform]
    for status in STATUSES:
        for body in ODD_BODIES:
            result: Any = adapter.normalise_status("T-1", HttpResponse(status, {}, body))
            assert result.outcome in OUTCOMES, (status, body)
