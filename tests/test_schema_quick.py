"""The schema's quick paths load exactly what marshmallow's full load does.

``core/schemas.py`` lets the usual input skip marshmallow's generic steps (quick
fields, lists of nested schemas built field by field). These tests load the same
inputs with the quick paths on and switched off (plain marshmallow), and require the
same request - values, Decimal exponents and types alike - or the same errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields

from cancelkit.core import schemas
from cancelkit.errors import InvalidRequestError


@contextmanager
def plain_marshmallow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every quick path off: each field and list is loaded by marshmallow itself."""
    with monkeypatch.context() as patch:
        patch.setattr(schemas._QuickDecimal, "deserialize", fields.Decimal.deserialize)
        patch.setattr(schemas._QuickString, "deserialize", fields.String.deserialize)
        patch.setattr(schemas._QuickList, "deserialize", fields.List.deserialize)
        patch.setattr(schemas, "_quick_request", lambda data: None)  # the guard and load
        yield


def outcome(data: Any) -> tuple[str, Any]:
    try:
        loaded = schemas.load_request(data)
    except InvalidRequestError as error:
        return "refused", [(e.path, e.message) for e in error.errors]
    return "loaded", repr(loaded)  # repr shows Decimal exponents and every type


def both(data: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[str, Any], tuple[str, Any]]:
    quick = outcome(data)
    with plain_marshmallow(monkeypatch):
        plain = outcome(data)
    return quick, plain


_good_number = st.one_of(
    st.integers(1, 10**6),
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.sampled_from(["1", "15.00", "2.50", " 3 ", "1e2", 7]),
)
_bad_number = st.sampled_from([-1, "x", "", None, True, "NaN", "sNaN", "1e40", 0, "0", [], 1.5, {}])
_number = st.one_of(_good_number, _good_number, _good_number, _bad_number)
_good_text = st.sampled_from(["a", "L-1", "USD", "CUSTOMER_REQUEST"])
_text = st.one_of(_good_text, _good_text, st.sampled_from(["", None, 1, "\u00e9", [], "OTHER"]))
_tax = st.fixed_dictionaries({"code": _text, "amount": _number}, optional={"extra": _text})
_taxes = st.one_of(st.lists(_tax, max_size=2), st.lists(_tax, max_size=2), _text)
_line = st.fixed_dictionaries(
    {"line_id": st.text(min_size=1, max_size=3), "quantity": _number},
    optional={
        "product_id": _text,
        "price": _number,
        "shipping_price": _number,
        "taxes": _taxes,
        "shipping_taxes": _taxes,
        "reason": st.sampled_from(["CUSTOMER_REQUEST", "OTHER", "bad", None, 3]),
        "platform_reason": _text,
        "unknown": _text,
    },
)
_request = st.fixed_dictionaries(
    {"lines": st.one_of(st.lists(_line, max_size=4), st.lists(_line, max_size=4), _text)},
    optional={
        "order_id": _text,
        "currency": st.sampled_from(["USD", "EUR", "usd", "XX1", None, 5]),
        "reason": st.sampled_from(["CUSTOMER_REQUEST", "nope", None]),
        "scope": st.sampled_from(["lines", "all_pending", "x", None]),
        "idempotency_key": _text,
        "options": st.dictionaries(st.text(max_size=2), _text, max_size=2),
    },
)


@settings(max_examples=600, deadline=None)
@given(data=_request)
def test_quick_paths_load_what_marshmallow_loads(data: Any) -> None:
    # hypothesis runs this many times with one monkeypatch: each run restores its own.
    with pytest.MonkeyPatch.context() as monkeypatch:
        quick, plain = both(data, monkeypatch)
    assert quick == plain


def test_a_usual_request_takes_the_quick_path_and_loads_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = {
        "line_id": "L-1",
        "quantity": 2,
        "price": "30.00",
        "shipping_price": Decimal("8.0"),
        "taxes": [{"code": "VAT", "amount": "1.50"}],
    }
    data = {"order_id": "O-1", "currency": "EUR", "reason": "CUSTOMER_REQUEST", "lines": [line]}
    calls: list[Any] = []
    original = fields.List.deserialize

    def counted(self: fields.List, *args: Any, **kwargs: Any) -> Any:
        if isinstance(args[0], list):  # a missing list just takes its default
            calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(fields.List, "deserialize", counted)
    loaded = schemas.load_request(data)
    assert calls == []  # no list went through marshmallow's full List(Nested(...))
    [got] = loaded.lines
    assert (got.quantity, got.price) == (Decimal(2), Decimal("30.00"))
    assert str(got.price) == "30.00" and str(got.shipping_price) == "8.0"  # exponents kept
    assert got.taxes == (schemas.Tax("VAT", Decimal("1.50")),)
    monkeypatch.undo()
    quick, plain = both(data, monkeypatch)
    assert quick == plain and quick[0] == "loaded"


def test_a_bad_item_is_reported_by_marshmallow_with_every_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [
        {"line_id": "a", "quantity": 1, "taxes": [{"code": "", "amount": "-1"}]},
        {"line_id": "b", "quantity": "x", "bogus": 1},
    ]
    quick, plain = both({"lines": lines}, monkeypatch)
    assert quick == plain
    assert quick == (
        "refused",
        [
            ("lines[0].taxes[0].code", "must not be empty"),
            ("lines[0].taxes[0].amount", "must not be negative"),
            ("lines[1].quantity", "must be a number"),
            ("lines[1].bogus", "unknown field"),
        ],
    )


# -- the request's own quick path: the input guard and the top-level schema in one walk --

# What the input guard (check_input) or the schema's validators refuse, mixed into
# otherwise usual requests: the quick path must hand every one of them to the full path.
_hostile = st.sampled_from(
    [
        "\ud800",
        "a\udfffb",
        "caf\u00e9",
        10**18,
        -(10**18),
        10**18 - 1,
        Decimal("NaN"),
        Decimal("-Infinity"),
        Decimal("1e18"),
        Decimal("1e-13"),
        Decimal("-0.5"),
        "1e18",
        "0.0000000000001",
        1.5,
        float("nan"),
        True,
        (),
        ("a",),
        {"x": 1},
        {"\ud800": 1},
        {},
        [[]],
        [],
    ]
)
_value = st.one_of(_number, _text, _hostile)
_usual_tax = st.fixed_dictionaries({"code": _good_text, "amount": _good_number})
_guarded_line = st.fixed_dictionaries(
    {
        "line_id": st.one_of(st.sampled_from(["L-1", "L-2", "L\u00e9"]), _hostile),
        "quantity": _value,
    },
    optional={
        "product_id": _value,
        "price": _value,
        "shipping_price": _value,
        "taxes": st.one_of(
            st.lists(_usual_tax, max_size=2),
            st.lists(st.fixed_dictionaries({"code": _value, "amount": _value}), max_size=2),
            st.lists(_usual_tax, max_size=2).map(tuple),
            _hostile,
        ),
        "reason": st.one_of(st.sampled_from(["CUSTOMER_REQUEST", "OTHER"]), _hostile),
        "platform_reason": _value,
    },
)
_guarded_request = st.fixed_dictionaries(
    {
        "lines": st.one_of(
            st.lists(_guarded_line, min_size=1, max_size=3), st.lists(_guarded_line, max_size=3)
        )
    },
    optional={
        "order_id": st.one_of(_good_text, _hostile),
        "currency": st.one_of(st.sampled_from(["USD", "EUR", "usd"]), _hostile),
        "reason": st.one_of(st.sampled_from(["CUSTOMER_REQUEST", "nope"]), _hostile),
        "scope": st.sampled_from(["lines", "all_pending", "x", None]),
        "idempotency_key": st.one_of(_good_text, _hostile),
        "fulfillment_order_id": st.one_of(_good_text, _hostile),
        "options": st.one_of(st.just({}), st.dictionaries(st.text(max_size=2), _value, max_size=2)),
        "unknown": _good_text,
    },
)


@settings(max_examples=800, deadline=None)
@given(data=_guarded_request)
def test_the_request_quick_path_refuses_what_the_guard_or_schema_refuses(data: Any) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        quick, plain = both(data, monkeypatch)
    assert quick == plain


def _built_in_code(draw: Any) -> Any:
    """A CancelRequest built in code, with any values (the dataclass checks nothing)."""
    lines = draw(st.lists(_guarded_line, min_size=1, max_size=3))
    built = []
    for line in lines:
        taxes = line.pop("taxes", ())
        if isinstance(taxes, (list, tuple)):
            taxes = tuple(schemas.Tax(**tax) if isinstance(tax, dict) else tax for tax in taxes)
        built.append(schemas.Line(**line, taxes=taxes))
    return schemas.CancelRequest(
        lines=tuple(built),
        order_id=draw(st.one_of(_good_text, _hostile)),
        currency=draw(st.sampled_from(["USD", "EUR", None, "\ud800", 5])),
        reason=draw(st.sampled_from(["CUSTOMER_REQUEST", None, "nope"])),
        options=draw(st.sampled_from([{}, {"a": 1}, {"\ud800": 1}])),
    )


@settings(max_examples=400, deadline=None)
@given(data=st.composite(_built_in_code)())
def test_a_request_built_in_code_loads_as_marshmallow_loads_it(data: Any) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        quick, plain = both(data, monkeypatch)
    assert quick == plain


def test_a_usual_request_skips_the_guard_and_the_schema_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = {"line_id": "L-1", "quantity": 1, "price": "15.00", "product_id": "P\u00e9"}
    data = {"order_id": "O-1", "currency": "EUR", "reason": "CUSTOMER_REQUEST", "lines": [line]}
    expected = repr(schemas.load_request(data))
    with monkeypatch.context() as patch:
        patch.setattr(schemas, "check_input", lambda data: pytest.fail("guard walked"))
        patch.setattr(schemas._REQUEST_SCHEMA, "load", lambda data: pytest.fail("schema load"))
        loaded = schemas.load_request(data)
        again = schemas.load_request(loaded)  # a loaded request, checked again: same path
    assert repr(loaded) == repr(again) == expected
    assert loaded.options == {} and loaded.scope == "lines"
    assert str(loaded.lines[0].price) == "15.00"


def test_what_the_quick_path_leaves_is_refused_with_marshmallow_words() -> None:
    line = {"line_id": "L-1", "quantity": 1}
    cases = {
        "lone surrogate": {"order_id": "\ud800", "lines": [line]},
        "duplicate line": {"lines": [line, dict(line)]},
        "all_pending with lines": {"scope": "all_pending", "lines": [line]},
        "huge integer": {"lines": [{**line, "quantity": 10**18}]},
        "too many lines": {
            "lines": [{"line_id": f"L{i}", "quantity": 1} for i in range(schemas.MAX_LINES + 1)]
        },
    }
    for name, data in cases.items():
        assert schemas._quick_request(data) is None, name
        with pytest.raises(InvalidRequestError):
            schemas.load_request(data)
