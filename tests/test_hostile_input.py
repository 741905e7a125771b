"""Hostile input is refused quickly and cleanly, and validation is the only door.

Lone surrogates, numbers too long to convert, integers longer than Python reads,
and JSON nested 100,000 deep: each is ``InvalidRequestError`` with a field path
(exit 2 on the command line), for every platform, never a crash or a ``validate``
that says ok before ``translate`` fails. A ``CancelRequest`` built in code passes
the same checks as JSON. Property tests throw arbitrary JSON values and mutated
examples at every platform.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.http import render
from cancelkit.core.inputcheck import MAX_DEPTH
from cancelkit.core.model import CancelRequest, Line, Tax
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.schemas import load_request
from cancelkit.errors import InvalidRequestError
from cancelkit.testing.hostile import mutation_slots

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PLATFORMS = ("mirakl", "salesforce", "salesforce-flow", "carriyo", "aboutyou")
#: The near-canonical bases: every example, by the platform it is written for.
BASES = {
    "mirakl": ["mirakl", "mirakl-shipped"],
    "salesforce": ["salesforce"],
    "salesforce-flow": ["salesforce-flow"],
    "carriyo": ["carriyo", "carriyo-out-of-stock"],
    "aboutyou": ["aboutyou", "aboutyou-item-ids"],
}
ALL_BASES = sorted(p.stem for p in EXAMPLES.glob("*.json"))
DEEP = 100_000

settings.register_profile(
    "hostile-input",
    deadline=None,  # no timed assertions: a slow example is reported, not failed
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = settings.get_profile("hostile-input")


@functools.cache
def example_text(name: str) -> str:
    return (EXAMPLES / f"{name}.json").read_text()


@functools.cache
def _parsed(name: str) -> dict[str, Any]:
    parsed: dict[str, Any] = jsonutil.loads(example_text(name))
    return parsed


def example(name: str) -> dict[str, Any]:
    """``examples/<name>.json`` as the command line reads it (a fresh copy)."""
    return copy.deepcopy(_parsed(name))


def nested(depth: int, leaf: Any = None) -> Any:
    """``[[[...leaf...]]]`` ``depth`` lists deep, built without recursion."""
    value = [] if leaf is None else leaf
    for _ in range(depth):
        value = [value]
    return value


# -- the hostile inputs -----------------------------------------------------------
#: name -> (where in the example, the raw JSON put there, the path refused)
HOSTILE: dict[str, tuple[tuple[Any, ...], str, str]] = {
    "surrogate in a value": (("lines", 0, "line_id"), r'"line-\ud800"', "lines[0].line_id"),
    "surrogate in a key": (("options",), r'{"\udc00": 1}', r"options.'\udc00'"),
    "surrogate in a reason": (("reason",), r'"\udfff"', "reason"),
    "quantity 1e5000": (("lines", 0, "quantity"), "1e5000", "lines[0].quantity"),
    "quantity 1e1000000": (("lines", 0, "quantity"), "1e1000000", "lines[0].quantity"),
    "quantity 1e-1000000": (("lines", 0, "quantity"), "1e-1000000", "lines[0].quantity"),
    "quantity as a string": (("lines", 0, "quantity"), '"1e1000000"', "lines[0].quantity"),
    "quantity of 5000 digits": (("lines", 0, "quantity"), "9" * 5000, "lines[0].quantity"),
    "price 1e1000000": (("lines", 0, "price"), "1e1000000", "lines[0].price"),
    "tax amount 1e5000": (
        ("lines", 0, "taxes"),
        '[{"code": "T", "amount": "1e5000"}]',
        "lines[0].taxes[0].amount",
    ),
    "order id of 5000 digits": (("order_id",), "1" * 5000, "order_id"),
    "line id of 5000 digits": (("lines", 0, "line_id"), "7" * 5000, "lines[0].line_id"),
    "nested 100,000 deep": (("options",), '{"x": ' + "[" * DEEP + "]" * DEEP + "}", "options.x"),
    "nested 40 deep": (("options",), '{"x": ' + "[" * 40 + "]" * 40 + "}", "options.x"),
}
#: Every command that reads a request (validate -p P, translate -p P, send --sandbox -p P).
COMMANDS = (["validate"], ["translate"], ["send", "--sandbox"])
#: Each hostile input, put into each platform's example.
CASES = [(platform, name) for platform in PLATFORMS for name in HOSTILE]


def hostile_text(platform: str, name: str) -> str:
    """The platform's example as JSON text, with the hostile fragment in place."""
    where, fragment, _ = HOSTILE[name]
    data = example(platform)
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = "@@HOSTILE@@"
    return jsonutil.dumps(data).replace('"@@HOSTILE@@"', fragment)


def hostile_data(platform: str, name: str) -> dict[str, Any]:
    """The same request as the library would get it (deep nesting built in code)."""
    if name == "nested 100,000 deep":
        data = example(platform)
        data["options"] = {"x": nested(DEEP)}
        return data
    parsed: dict[str, Any] = jsonutil.loads(hostile_text(platform, name))
    return parsed


def refused_paths(call: Callable[[], Any]) -> list[str]:
    with pytest.raises(InvalidRequestError) as caught:
        call()
    assert caught.value.errors
    return [error.path for error in caught.value.errors]


def assert_names(paths: list[str], expected: str) -> None:
    assert any(path == expected or path.startswith(expected + "[") for path in paths), paths


@pytest.mark.parametrize(("platform", "name"), CASES)
def test_the_library_refuses_hostile_input_with_a_field_path(platform: str, name: str) -> None:
    data = hostile_data(platform, name)
    client = Client(env={})
    assert_names(refused_paths(lambda: load_request(data)), HOSTILE[name][2])
    assert_names(refused_paths(lambda: client.prepare(data, platform)), HOSTILE[name][2])
    assert_names(refused_paths(lambda: client.translate(data, platform)), HOSTILE[name][2])


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Run the command line on a request file; CANCELKIT_DEBUG stays off (no traceback)."""

    def run(text: str, *args: str) -> Any:
        path = tmp_path / "request.json"
        path.write_text(text, encoding="utf-8")
        return CliRunner().invoke(main, [*args, str(path)])

    yield run


@pytest.mark.parametrize(("platform", "name"), CASES)
def test_the_command_line_refuses_hostile_input_with_exit_2(
    platform: str, name: str, run_cli: Callable[..., Any]
) -> None:
    text = hostile_text(platform, name)
    expected = HOSTILE[name][2]
    for command in COMMANDS:
        result = run_cli(text, *command, "-p", platform)
        assert result.exit_code == 2, (command, result.output)
        assert f"error: {expected}" in result.output, (command, result.output)
        assert "internal error" not in result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_deep_nesting_refusal_names_the_level(run_cli: Callable[..., Any]) -> None:
    result = run_cli(hostile_text("mirakl", "nested 100,000 deep"), "validate")
    assert result.exit_code == 2
    assert f"error: options.x{'[0]' * (MAX_DEPTH - 2)}: nested deeper than 32 levels" in (
        result.output
    )


def test_integer_literals_longer_than_python_reads_keep_their_field(
    run_cli: Callable[..., Any],
) -> None:
    result = run_cli(hostile_text("carriyo", "order id of 5000 digits"), "validate")
    assert result.exit_code == 2
    assert "error: order_id: number out of range" in result.output


def test_about_you_line_ids_too_long_for_an_item_id_are_refused() -> None:
    data = example("aboutyou")
    data["lines"][0]["line_id"] = "9" * 5000  # a string: only About You reads it as a number
    paths = refused_paths(lambda: Client(env={}).translate(data, "aboutyou"))
    assert paths == ["lines[0].line_id"]


def test_about_you_item_ids_of_thousands_of_digits_are_refused() -> None:
    text = example_text("aboutyou-item-ids").replace("2001", "2" * 5000)
    paths = refused_paths(lambda: Client(env={}).translate(jsonutil.loads(text), "aboutyou"))
    assert paths == ["options.item_ids.sku-TSHIRT-M[0]"]


def test_about_you_integer_item_ids_still_translate() -> None:
    call = Client(env={}).translate(example("aboutyou-item-ids"), "aboutyou")
    assert call.body == {"items": [{"id": 2001}, {"id": 2002}, {"id": 2003}]}


@pytest.mark.parametrize(
    "value", ["999999999999999999", "0.000000000001", "123456789012345678.123456789012"]
)
def test_numbers_within_the_bounds_pass(value: str) -> None:
    data = example("salesforce")
    data["lines"][0]["quantity"] = Decimal(value)
    call = Client(env={}).translate(data, "salesforce")
    assert call.body["fulfillmentOrderLineItemsToCancel"][0]["quantity"] == Decimal(value)


# -- the dataclass door -----------------------------------------------------------
def coded_request(**overrides: Any) -> CancelRequest:
    """A request built in code, valid for every platform but the values overridden."""
    lines = overrides.pop("lines", (Line("1001", Decimal(1)),))
    return CancelRequest(
        lines=lines,
        **{
            "order_id": "O-1",
            "fulfillment_order_id": "FO-1",
            "reason": "CUSTOMER_REQUEST",
            "currency": "EUR",
            **overrides,
        },
    )


NEGATIVE_AND_DUPLICATE = coded_request(lines=(Line("1001", Decimal(-3)), Line("1001", Decimal(1))))


def test_a_dataclass_request_is_checked_like_json() -> None:
    paths = refused_paths(lambda: load_request(NEGATIVE_AND_DUPLICATE))
    assert paths == ["lines[0].quantity", "lines[1].line_id"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_translate_refuses_a_bad_dataclass_request(platform: str) -> None:
    paths = refused_paths(lambda: Client(env={}).translate(NEGATIVE_AND_DUPLICATE, platform))
    assert "lines[0].quantity" in paths


@pytest.mark.parametrize("platform", PLATFORMS)
def test_send_refuses_a_bad_dataclass_request_and_nothing_reaches_the_sandbox(
    platform: str, sandbox: Sandbox, sandbox_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    dispatch = sandbox.dispatch

    def counted(request: Any) -> Any:
        seen.append(request)
        return dispatch(request)

    monkeypatch.setattr(sandbox, "dispatch", counted)
    paths = refused_paths(lambda: sandbox_client.send(NEGATIVE_AND_DUPLICATE, platform))
    assert "lines[0].quantity" in paths
    assert seen == []


def _cyclic() -> dict[str, Any]:
    loop: list[Any] = []
    loop.append(loop)
    return {"x": loop}


def _shared() -> dict[str, Any]:
    # 2**40 paths to one leaf: the walk must not follow each of them.
    level: list[Any] = []
    for _ in range(40):
        level = [level, level]
    return {"x": level}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (coded_request(lines=(Line("1001", "abc"),)), "lines[0].quantity"),
        (coded_request(lines=(Line("1001", True),)), "lines[0].quantity"),
        (coded_request(lines=(Line("1001", 10**5000),)), "lines[0].quantity"),
        (coded_request(lines=(Line("1001", Decimal("1e1000000")),)), "lines[0].quantity"),
        (coded_request(lines=(Line("1001", Decimal("NaN")),)), "lines[0].quantity"),
        (coded_request(lines=(Line("1001", float("inf")),)), "lines[0].quantity"),
        (coded_request(lines=(Line(7, Decimal(1)),)), "lines[0].line_id"),
        (coded_request(lines=(Line("1\ud800", Decimal(1)),)), "lines[0].line_id"),
        (coded_request(lines=[{"line_id": "1001", "quantity": 1}]), "lines[0]"),
        (coded_request(lines="1001"), "lines"),
        (coded_request(lines=None), "lines"),
        (coded_request(lines=()), "lines"),
        (
            coded_request(lines=(Line("1001", Decimal(1), taxes=({"code": "T"},)),)),
            "lines[0].taxes[0]",
        ),
        (
            coded_request(lines=(Line("1001", Decimal(1), taxes=(Tax("T", "-1"),)),)),
            "lines[0].taxes[0].amount",
        ),
        (coded_request(order_id=12), "order_id"),
        (coded_request(reason="BORED"), "reason"),
        (coded_request(scope="everything"), "scope"),
        (coded_request(options=["key"]), "options"),
        (coded_request(options={"x": nested(DEEP)}), "options.x"),
        (coded_request(options=_cyclic()), "options.x"),
        (coded_request(options=_shared()), "options.x"),
    ],
)
def test_wrong_types_in_a_dataclass_are_refused_with_a_field_path(
    request_: CancelRequest, expected: str
) -> None:
    assert_names(refused_paths(lambda: load_request(request_)), expected)


def test_a_valid_dataclass_request_loads_as_its_json_would() -> None:
    built = coded_request(lines=[Line("1001", "2", price=15, taxes=[Tax("T", "1.00")])])
    loaded = load_request(built)
    line = {
        "line_id": "1001",
        "quantity": "2",
        "price": 15,
        "taxes": [{"code": "T", "amount": "1.00"}],
    }
    assert loaded == load_request(
        {
            "order_id": "O-1",
            "fulfillment_order_id": "FO-1",
            "reason": "CUSTOMER_REQUEST",
            "currency": "EUR",
            "lines": [line],
        }
    )
    assert loaded.lines[0].quantity == Decimal(2) and isinstance(loaded.lines[0].taxes, tuple)
    assert load_request(loaded) == loaded


# -- properties -------------------------------------------------------------------
#: Numbers at and beyond the bounds, and the special ones (as Decimal and as strings).
ODD_NUMBERS = [
    "1e5000",
    "1e1000000",
    "-1e1000000",
    "1e-1000000",
    "0E+5000",
    "0E-5000",
    "-0",
    "1E+17",
    "1E+18",
    "999999999999999999",
    "1000000000000000000",
    "0.000000000001",
    "1e-13",
    "2.5",
    "-3",
    "NaN",
    "sNaN",
    "-Infinity",
]
with_surrogate = st.builds(
    lambda a, s, b: a + s + b,
    st.text(max_size=3),
    st.characters(categories=["Cs"]),
    st.text(max_size=3),
)
odd_numbers = st.one_of(
    st.sampled_from(ODD_NUMBERS).map(Decimal),
    st.sampled_from(ODD_NUMBERS),  # numeric strings, as Decimal fields read them
    st.integers(min_value=15, max_value=6000).map(lambda n: 10**n),
    st.just(5000).map(lambda digits: Decimal("9" * digits)),
)
#: What an attacker sends: lone surrogates, numbers too long to convert, deep nesting.
hostile = st.one_of(
    with_surrogate,
    odd_numbers,
    st.integers(min_value=MAX_DEPTH - 3, max_value=MAX_DEPTH + 8).map(nested),
)
ordinary = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["CUSTOMER_REQUEST", "OTHER", "all_pending", "lines", "EUR", "1001"]),
)
keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["line_id", "quantity", "price", "taxes", "item_ids", "key", "reason"]),
    with_surrogate,
)
#: Arbitrary JSON values (as parsed, or as built in code), some hostile leaves among them.
json_values = st.recursive(
    ordinary | hostile,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
#: Values a real request could hold (and ids that test the URL path), by JSON type,
#: so that mutated requests are often still valid and reach translate.
PLAUSIBLE_NUMBERS = [
    Decimal(1),
    Decimal(2),
    Decimal("0.75"),
    Decimal("1E+2"),
    Decimal("0.000000000001"),
    Decimal("999999999999999999"),
    Decimal("-0"),
    1,
    3,
    2001,
]
PLAUSIBLE_STRINGS = [
    "2",
    "15.00",
    "1001",
    "2001",
    "L-2",
    "line-kbd",
    "0a4xx00000000W0002",
    ".",
    "..",
    "a/b?c#d",
    "%2E%2E",
    "\u00fc\x00 ",
    "CUSTOMER_REQUEST",
    "OUT_OF_STOCK",
    "OTHER",
    "RETURN",
    "EUR",
    "USD",
    "all_pending",
    "lines",
    "partner_order_reference",
]
plausible = st.sampled_from([*PLAUSIBLE_NUMBERS, *PLAUSIBLE_STRINGS, [], {}, None])


def similar(value: Any) -> st.SearchStrategy[Any]:
    """A plausible value of the same JSON type as ``value``."""
    if isinstance(value, str):
        return st.sampled_from(PLAUSIBLE_STRINGS)
    if isinstance(value, (int, Decimal)):
        return st.sampled_from(PLAUSIBLE_NUMBERS)
    if isinstance(value, list):  # emptied, or its first item twice (duplicate lines)
        return st.sampled_from([[], copy.deepcopy(value + value[:1])])
    if isinstance(value, dict):
        return st.just({})
    return plausible


#: Where a mutation's value comes from, weighted: mostly like what was there.
VALUE_KINDS = ["similar"] * 4 + ["plausible", "arbitrary", "hostile"]


def _is_number(value: Any) -> bool:
    """A number, or a numeric string such as the examples' ``"15.00"``."""
    if isinstance(value, str):
        return value.replace(".", "", 1).isdigit()
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


#: Mutations, weighted: mostly a value replaced; often a number put out of range or
#: a lone surrogate put into a string.
ACTIONS = ["replace"] * 4 + ["number", "number", "text", "copy", "delete", "add"]


@st.composite
def near_canonical(draw: st.DrawFn, platform: str) -> Any:
    """An example (mostly the platform's own) with one to three fields mutated.

    Mostly one field, mostly replaced by a value like the one it held, so that
    many requests are still valid and go all the way to the wire; and often a
    quantity or amount set at or beyond the bounds, or an id with a lone surrogate.
    """
    data = example(draw(st.sampled_from(BASES[platform] * 8 + ALL_BASES)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        slots = list(mutation_slots(data))
        if not slots:
            break
        action = draw(st.sampled_from(ACTIONS))
        if action == "number":
            slots = [(c, k) for c, k in slots if _is_number(c[k])] or slots
        elif action == "text":
            slots = [(c, k) for c, k in slots if isinstance(c[k], str)] or slots
        container, key = draw(st.sampled_from(slots))
        kind = draw(st.sampled_from(VALUE_KINDS))
        value = {
            "similar": similar(container[key]),
            "plausible": plausible,
            "arbitrary": json_values,
            "hostile": hostile,
        }[kind]
        if action == "number":
            container[key] = draw(odd_numbers)
        elif action == "text":
            container[key] = draw(with_surrogate)
        elif action == "replace":
            container[key] = draw(value)
        elif action == "copy":  # a duplicate line, a line id where a quantity goes...
            source, source_key = draw(st.sampled_from(slots))
            container[key] = copy.deepcopy(source[source_key])
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(keys)] = draw(value)
        else:
            container.append(draw(value))
    return data


def assert_refused_or_translated(client: Client, data: Any, platform: str) -> None:
    """prepare and translate agree, and only ever raise InvalidRequestError."""
    try:
        load_request(data)
    except InvalidRequestError as error:
        assert error.errors
    try:
        client.prepare(data, platform)
        prepared = True
    except InvalidRequestError as error:
        assert error.errors
        prepared = False
    try:
        call = client.translate(data, platform)
    except InvalidRequestError:
        assert not prepared, "validate said ok, translate refused"
        event("refused")
        return
    assert prepared, "translate accepted what validate refused"
    event("translated")
    call.body_bytes()  # the body can go on the wire
    for fmt in ("json", "curl", "http"):
        render(call, fmt)


@pytest.fixture(scope="module")
def client() -> Client:
    return Client(env={})


@pytest.mark.parametrize("platform", PLATFORMS)
@settings(PROFILE, max_examples=150)
@given(data=json_values | hostile)
def test_any_json_value_is_refused_or_translated(client: Client, platform: str, data: Any) -> None:
    assert_refused_or_translated(client, data, platform)


@pytest.mark.parametrize("platform", PLATFORMS)
@settings(PROFILE, max_examples=300)
@given(data=st.data())
def test_any_near_canonical_request_is_refused_or_translated(
    client: Client, platform: str, data: st.DataObject
) -> None:
    assert_refused_or_translated(client, data.draw(near_canonical(platform)), platform)
