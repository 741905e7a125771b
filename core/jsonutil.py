"""JSON in and out with exact decimals.

Money must never pass through ``float``: ``15.00`` is read as ``Decimal('15.00')``
and written back as ``15.00``. simplejson does both natively (``use_decimal``),
which the standard library cannot do for output.
"""

from __future__ import annotations

from typing import Any

import simplejson


def loads(text: str | bytes) -> Any:
    """Parse JSON, reading every non-integer number as ``Decimal``."""
    return simplejson.loads(text, use_decimal=True)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Serialise for people: ``Decimal`` written exactly, optional indentation."""
    return simplejson.dumps(value, use_decimal=True, indent=indent, ensure_ascii=False)


def wire(value: Any) -> bytes:
    """Serialise a request body as it goes on the wire: compact UTF-8, exact decimals."""
    return simplejson.dumps(
        value, use_decimal=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
