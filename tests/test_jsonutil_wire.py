"""``jsonutil.wire`` writes exactly what simplejson writes, whichever writer runs.

The usual body is written by the standard library's C encoder (see
``core/jsonutil.py``); anything else by simplejson, today's writer. These tests
require the same bytes - or the same exception - as simplejson for any value:
plain JSON, exact decimals of every kind, the marker's own characters inside
strings, and the types the fast writer must leave to simplejson (subclasses,
named tuples, NaN, odd keys).
"""

from __future__ import annotations

import enum
from collections import OrderedDict, namedtuple
from decimal import Decimal
from typing import Any

import simplejson
from hypothesis import given, settings
from hypothesis import strategies as st

from cancelkit.core import jsonutil


def simplejson_wire(value: Any) -> bytes:
    """The writer ``wire`` used before the fast path (and still falls back to)."""
    return simplejson.dumps(
        value, use_decimal=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def outcome(write: Any, value: Any) -> tuple[str, Any]:
    try:
        return "written", write(value)
    except Exception as error:  # the same refusal, worded the same
        return "refused", (type(error).__name__, str(error))


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    def __str__(self) -> str:
        return "other"


class Number(int):
    def __repr__(self) -> str:
        return "other"


class Real(float):
    pass


class Exact(Decimal):
    pass


Pair = namedtuple("Pair", "left right")

_marker_text = st.sampled_from(
    ["\x00", "\\u0000", '"\\u0000', '\\u0000"', "\x00\x00", "\x001\x00", '"', "\\", "\n"]
)
_text = st.one_of(st.text(max_size=6), _marker_text, st.text(alphabet='\x00\\u0"1', max_size=8))
_decimal = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("15.00"), Decimal("-0"), Decimal("1E+2"), Decimal("1e-30")]),
)
_float = st.one_of(
    st.floats(), st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e16, 0.1])
)
_plain_leaf = st.one_of(_text, st.integers(), _float, st.booleans(), st.none(), _decimal, _decimal)
_odd_leaf = st.one_of(
    st.just(Colour.RED),
    st.builds(Text, _text),
    st.builds(Number, st.integers(-5, 5)),
    st.builds(Real, st.floats()),
    st.builds(Exact, st.sampled_from(["1.50", "NaN"])),
    st.builds(Pair, _plain_leaf, _plain_leaf),
    st.just(b"bytes"),
    st.just(object()),
)
_key = st.one_of(
    _text,
    _text,
    _text,
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.floats(),
    st.decimals(places=2, allow_nan=False, allow_infinity=False),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_text, children, max_size=4),
        st.dictionaries(_key, children, max_size=3),
        st.dictionaries(_text, children, max_size=2).map(OrderedDict),
    )


_usual = st.recursive(_plain_leaf, _containers, max_leaves=20)
_any = st.recursive(st.one_of(_plain_leaf, _plain_leaf, _odd_leaf), _containers, max_leaves=20)


@settings(max_examples=1500, deadline=None)
@given(value=st.one_of(_usual, _any))
def test_wire_writes_what_simplejson_writes(value: Any) -> None:
    assert outcome(jsonutil.wire, value) == outcome(simplejson_wire, value)


@settings(max_examples=300, deadline=None)
@given(value=_usual)
def test_the_fast_writer_alone_agrees_or_steps_aside(value: Any) -> None:
    # Whatever it writes itself is simplejson's text; None hands the value over.
    fast = jsonutil._plain_wire(value)
    if fast is not None:
        assert outcome(lambda v: fast.encode("utf-8"), value) == outcome(simplejson_wire, value)


def test_a_usual_body_takes_the_fast_writer_with_exact_decimals() -> None:
    body = {
        "cancelations": [
            {
                "order_line_id": "L-1",
                "quantity": 2,
                "price": {"amount": Decimal("15.00"), "currency": "EUR"},
                "taxes": [{"code": "VAT", "amount": {"amount": Decimal("1E+2")}}],
                "note": 'é "quoted" \\ \n',
                "gone": None,
                "flag": True,
            }
        ]
    }
    fast = jsonutil._plain_wire(body)
    assert fast is not None  # the standard library wrote it
    assert '"amount":15.00,' in fast and '"amount":1E+2}' in fast
    assert jsonutil.wire(body) == simplejson_wire(body)


def test_what_the_fast_writer_cannot_tell_apart_goes_to_simplejson() -> None:
    for value in (
        {"a": Pair(1, 2)},  # simplejson writes a named tuple as an object
        {"a": Decimal("NaN")},  # refused by simplejson, with its words
        {"a": "\x00", "b": Decimal("1")},  # a NUL like the marker's
        {1: Decimal("2")},  # a key simplejson converts its own way
        {"a": Colour.RED},
        {"a": [float("nan")]},  # simplejson refuses NaN; the standard library would not
        (Text("x"), Number(1), Real(0.5), Exact("1.5")),
    ):
        assert jsonutil._plain_wire(value) is None
        assert outcome(jsonutil.wire, value) == outcome(simplejson_wire, value)


def test_a_cycle_is_refused_as_simplejson_refuses_it() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert jsonutil._plain_wire(loop) is None
    assert outcome(jsonutil.wire, loop)[0] == "refused"
    assert outcome(jsonutil.wire, loop) == outcome(simplejson_wire, loop)
