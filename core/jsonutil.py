"""JSON in and out with exact decimals.

Money must never pass through ``float``: ``15.00`` is read as ``Decimal('15.00')``
and written back as ``15.00``. simplejson does both natively (``use_decimal``),
which the standard library cannot do for output.

Hostile input fails as ``ValueError`` (what callers already treat as "not JSON"),
never as another exception: an integer literal too long for ``int`` is read as
``Decimal`` (so a schema can name the field that holds it), and nesting too deep
for the parser raises :class:`NestingError` naming where it went too deep.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import simplejson

from .inputcheck import MAX_DEPTH, too_deep_path

#: Integer literals longer than this are read as Decimal: Python refuses to read
#: integers of more than 4300 digits, and converting long ones costs quadratic time.
MAX_INT_LITERAL = 40


class NestingError(ValueError):
    """The JSON text nests containers deeper than the parser can follow."""

    def __init__(self, path: str):
        self.path = path
        self.reason = f"nested deeper than {MAX_DEPTH} levels"
        super().__init__(f"{path}: {self.reason}" if path else self.reason)


def _integer(literal: str) -> int | Decimal:
    return int(literal) if len(literal) <= MAX_INT_LITERAL else Decimal(literal)


def loads(text: str | bytes) -> Any:
    """Parse JSON, reading every non-integer number (and huge integers) as ``Decimal``."""
    try:
        return simplejson.loads(text, use_decimal=True, parse_int=_integer)
    except RecursionError:
        raise NestingError(too_deep_path(text)) from None
    except ArithmeticError:  # e.g. 1e1000000000000000000: beyond Decimal's exponent range
        raise ValueError("a number is out of range") from None


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Serialise for people: ``Decimal`` written exactly, optional indentation."""
    return simplejson.dumps(value, use_decimal=True, indent=indent, ensure_ascii=False)


def wire(value: Any) -> bytes:
    """Serialise a request body as it goes on the wire: compact UTF-8, exact decimals."""
    return simplejson.dumps(
        value, use_decimal=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
