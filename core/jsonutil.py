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

try:  # the standard library's C encoder, as json.encoder takes it: importing json
    # itself would cost ``cancelkit translate`` 3 ms of start-up
    from _json import encode_basestring as _encode_string
    from _json import make_encoder as _make_encoder

    _C_ENCODER: Any = _make_encoder
except ImportError:  # a Python without it: simplejson writes everything
    _C_ENCODER = None

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
    text = _plain_wire(value)
    if text is None:
        text = simplejson.dumps(value, use_decimal=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


# The usual body - dicts with str keys, lists, tuples, str, int, float, bool, None and
# Decimal, every one of exactly these types - is written by the standard library's C
# encoder, about twice as fast as simplejson's, to the very same text: for exactly these
# types the two write the same JSON (a subclass - a named tuple, an int or str with its
# own methods - may not be: such a body, and anything that fails, goes to simplejson).
# Each Decimal is written as the string "\x00<str(d)>\x00" and its quotes and markers
# are then cut, leaving str(d) bare, as simplejson writes it; the cut is made only when
# every "\u0000" in the text is one of those markers.
_LEAVES = frozenset({str, int, float, bool, type(None), Decimal})
#: A walk longer than this (or a cycle) is left to simplejson.
_MOST_NODES = 100_000


def _plain_wire(value: Any) -> str | None:
    """``value`` as :func:`wire` writes it (before encoding), or None: use simplejson."""
    if _C_ENCODER is None or not _plain(value):
        return None
    decimals: list[None] = []

    def marked(item: Any) -> str:
        if type(item) is not Decimal or not item.is_finite():
            raise TypeError("not written here")  # simplejson refuses a NaN, says why
        decimals.append(None)
        return "\x00" + str(item) + "\x00"

    try:
        # markers None: _plain has walked the value to its end, so it holds no cycle.
        encode = _C_ENCODER(None, marked, _encode_string, None, ":", ",", False, False, False)
        text = "".join(encode(value, 0))
    except Exception:  # NaN, an int too long to write...: simplejson's own answer
        return None
    if text.count("\\u0000") != 2 * len(decimals):
        return None  # a string holds NUL (or the text \u0000): markers not told apart
    return text.replace('"\\u0000', "").replace('\\u0000"', "")


def _plain(value: Any) -> bool:
    """True when ``value`` is made only of the exact types the fast writer takes."""
    stack = [value]
    nodes = 0
    while stack:
        item = stack.pop()
        nodes += 1
        if nodes > _MOST_NODES:
            return False
        kind = type(item)
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str:
                    return False
                kind = type(child)
                if kind is dict or kind is list or kind is tuple:
                    stack.append(child)
                elif kind not in _LEAVES:
                    return False
        elif kind is list or kind is tuple:
            for child in item:
                kind = type(child)
                if kind is dict or kind is list or kind is tuple:
                    stack.append(child)
                elif kind not in _LEAVES:
                    return False
        elif kind not in _LEAVES:
            return False
    return True
