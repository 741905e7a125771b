"""The canonical request: every bad input refused with its field path and reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import cancelkit
from cancelkit.core.model import MAX_LINES
from cancelkit.core.schemas import dump_request, load_request
from cancelkit.errors import InvalidRequestError


def line(**overrides: Any) -> dict[str, Any]:
    return {"line_id": "L1", "quantity": 1, **overrides}


def request(**overrides: Any) -> dict[str, Any]:
    return {"order_id": "O1", "lines": [line()], **overrides}


def messages(data: Any) -> list[str]:
    with pytest.raises(InvalidRequestError) as caught:
        load_request(data)
    return [str(e) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"order_id": "O1"}, "lines: required"),
        (request(lines=[]), "lines: must contain at least one line"),
        (request(lines="L1"), "lines: not a valid list"),
        (request(lines=[line(quantity="two")]), "lines[0].quantity: must be a number"),
        (request(lines=[line(quantity=True)]), "lines[0].quantity: must be a number"),
        (request(lines=[line(quantity=0)]), "lines[0].quantity: must be greater than 0"),
        (request(lines=[line(quantity=-1)]), "lines[0].quantity: must be greater than 0"),
        (request(lines=[line(line_id=7)]), "lines[0].line_id: not a valid string"),
        (request(lines=[line(line_id="")]), "lines[0].line_id: must not be empty"),
        (request(lines=[line(), line()]), "lines[1].line_id: duplicate of lines[0].line_id"),
        (request(reason="BORED"), "reason: unknown reason 'BORED'"),
        (request(lines=[line(reason="BORED")]), "lines[0].reason: unknown reason 'BORED'"),
        (request(currency="usd"), "currency: 'usd' is not an ISO 4217 currency code"),
        (request(currency="ABC"), "currency: 'ABC' is not an ISO 4217 currency code"),
        (request(lines=[line(price="-1.00")]), "lines[0].price: must not be negative"),
        (
            request(lines=[line(price="ten")]),
            "lines[0].price: must be a number or a numeric string",
        ),
        (request(lines=[line(price="NaN")]), "lines[0].price: special numeric values"),
        (
            request(lines=[line(taxes=[{"code": "T", "amount": "-0.01"}])]),
            "lines[0].taxes[0].amount: must not be negative",
        ),
        (request(lines=[line(colour="red")]), "lines[0].colour: unknown field"),
        (request(surprise=1), "surprise: unknown field"),
        (request(options=[]), "options: not a valid mapping type"),
    ],
)
def test_bad_input_is_refused_with_path_and_reason(data: Any, expected: str) -> None:
    found = messages(data)
    assert any(m.startswith(expected) for m in found), found


@pytest.mark.parametrize(
    ("data", "expected"),
    [([], "an array"), ("x", "a string"), (None, "null"), (3, "a number")],
)
def test_input_that_is_not_an_object_is_refused(data: Any, expected: str) -> None:
    assert messages(data) == [f"the request must be a JSON object, not {expected}"]


def test_more_than_ten_thousand_lines_is_refused() -> None:
    lines = [line(line_id=f"L{i}") for i in range(MAX_LINES + 1)]
    assert messages(request(lines=lines)) == [
        f"lines: at most {MAX_LINES} lines per request, got {MAX_LINES + 1}"
    ]


def test_exactly_ten_thousand_lines_is_accepted() -> None:
    lines = [line(line_id=f"L{i}") for i in range(MAX_LINES)]
    assert len(load_request(request(lines=lines)).lines) == MAX_LINES


def test_every_problem_is_reported_at_once() -> None:
    found = messages(request(currency="XX", lines=[line(quantity=0, price="x")]))
    assert len(found) == 3


def test_money_is_decimal_and_exact() -> None:
    loaded = load_request(request(lines=[line(price="15.00", shipping_price=Decimal("8.10"))]))
    assert loaded.lines[0].price == Decimal("15.00")
    assert str(loaded.lines[0].price) == "15.00"
    assert dump_request(loaded)["lines"][0]["shipping_price"] == Decimal("8.10")


def test_platform_specific_needs_name_the_field_and_platform() -> None:
    data = {"lines": [line()]}
    with pytest.raises(InvalidRequestError) as caught:
        cancelkit.translate(data, "mirakl")
    found = {str(e) for e in caught.value.errors}
    assert "order_id: required by mirakl" in found
    assert "currency: required by mirakl" in found
    assert "lines[0].price: required by mirakl" in found
    assert "lines[0].shipping_price: required by mirakl" in found


def test_fractional_quantity_refused_where_platform_takes_integers(example: Any) -> None:
    data = example("mirakl")
    data["lines"][0]["quantity"] = Decimal("1.5")
    with pytest.raises(InvalidRequestError, match=r"lines\[0\].quantity: mirakl takes whole"):
        cancelkit.translate(data, "mirakl")


def test_unknown_option_is_refused(example: Any) -> None:
    data = example("mirakl")
    data["options"] = {"key": "order_id"}
    with pytest.raises(InvalidRequestError, match=r"options.key: unknown option for mirakl"):
        cancelkit.translate(data, "mirakl")


@pytest.mark.newer_than_contract
@pytest.mark.parametrize("platform", ["mirakl", "carriyo"])
def test_a_raw_platform_reason_the_platform_added_since_goes_out_with_a_warning(
    example: Any, platform: str
) -> None:
    """Platforms grow their reason enums; refusing a new value would block its users."""
    data = example(platform)
    data.pop("reason", None)
    data["platform_reason"] = "REASON_ADDED_IN_2027"
    client = cancelkit.Client()
    prepared = client.prepare(data, platform)
    body = client.translate(data, platform).body_bytes().decode()
    assert "REASON_ADDED_IN_2027" in body
    (warning,) = client.registry.platform(platform).warnings(prepared)
    assert "'REASON_ADDED_IN_2027' is not one cancelkit knows" in warning
    assert "sent as given" in warning


def test_canonical_reasons_stay_strict(example: Any) -> None:
    data = example("mirakl")
    data["lines"][0]["reason"] = "BORED"
    with pytest.raises(InvalidRequestError, match=r"lines\[0\]\.reason"):
        cancelkit.translate(data, "mirakl")


def test_a_platform_without_reasons_refuses_a_raw_one(example: Any) -> None:
    data = example("aboutyou")
    data["platform_reason"] = "ANYTHING"
    with pytest.raises(InvalidRequestError, match="platform_reason: aboutyou takes no"):
        cancelkit.translate(data, "aboutyou")


def test_unknown_platform_is_refused_with_the_known_ones(example: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown platform 'nope'; known: .*mirakl"):
        cancelkit.translate(example("mirakl"), "nope")


def test_scope_all_pending_takes_no_lines() -> None:
    loaded = load_request({"order_id": "O1", "scope": "all_pending"})
    assert (loaded.scope, loaded.lines) == ("all_pending", ())
    assert messages({"order_id": "O1", "scope": "all_pending", "lines": [line()]}) == [
        "lines: must be empty when scope is all_pending"
    ]
    assert messages({"order_id": "O1", "scope": "everything"})[0].startswith(
        "scope: must be one of"
    )


def test_all_pending_is_refused_where_the_platform_cannot(example: Any) -> None:
    data = example("mirakl")
    data["scope"] = "all_pending"
    del data["lines"]
    with pytest.raises(InvalidRequestError, match="scope: mirakl cannot cancel all pending"):
        cancelkit.translate(data, "mirakl")
