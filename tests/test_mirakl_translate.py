"""Mirakl Connect translation: URL, auth placeholder, body, reasons, contract."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import contract_schema

import cancelkit
from cancelkit.core.http import render
from cancelkit.core.model import REASONS
from cancelkit.errors import InvalidRequestError
from cancelkit.plugins.mirakl.adapter import REASON_MAP as MIRAKL_REASONS

CONTRACT = contract_schema("mirakl", "mirakl-connect.schema.json")


def assert_valid_on_the_wire(call: cancelkit.HttpCall) -> dict[str, Any]:
    """Validate the body as sent (parsed back from the wire bytes) against the schema."""
    wire = json.loads(call.body_bytes())
    jsonschema.validate(wire, CONTRACT)
    return wire


def test_call_matches_the_contract(example: Any) -> None:
    call = cancelkit.translate(example("mirakl"), "mirakl")
    assert call.method == "POST"
    assert call.url == "https://miraklconnect.com/api/v2/orders/0024_COMMERCIAL_ID-A/cancel"
    assert call.headers["Authorization"] == "Bearer ***"
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == {
        "cancelations": [
            {
                "order_line_id": "0002_3202630-A-1",
                "product_id": "10000",
                "quantity": 1,
                "reason": "CUSTOMER_CANCELATION",
                "price": {"amount": Decimal("15.00"), "currency": "USD"},
                "shipping_price": {"amount": Decimal("8.00"), "currency": "USD"},
                "taxes": [
                    {"code": "Tax1", "amount": {"amount": Decimal("1.00"), "currency": "USD"}}
                ],
                "shipping_taxes": [
                    {
                        "code": "ShippingTax1",
                        "amount": {"amount": Decimal("3.00"), "currency": "USD"},
                    }
                ],
            }
        ]
    }
    assert_valid_on_the_wire(call)


def test_money_is_emitted_exactly(example: Any) -> None:
    data = example("mirakl")
    data["lines"][0]["price"] = "0.10"
    data["lines"][0]["shipping_price"] = Decimal("1234567890.123456789")
    wire = cancelkit.translate(data, "mirakl").body_bytes().decode()
    assert '"price":{"amount":0.10,' in wire
    assert '"amount":1234567890.123456789' in wire


@pytest.mark.parametrize(
    ("order_id", "segment"),
    [
        ("../x", "..%2Fx"),
        ("a/b", "a%2Fb"),
        ("?q=1", "%3Fq%3D1"),
        ("#frag", "%23frag"),
        ("..", "%2E%2E"),
        ("50% off", "50%25%20off"),
    ],
)
def test_order_id_is_one_encoded_path_segment(example: Any, order_id: str, segment: str) -> None:
    data = example("mirakl")
    data["order_id"] = order_id
    call = cancelkit.translate(data, "mirakl")
    assert call.url == f"https://miraklconnect.com/api/v2/orders/{segment}/cancel"


def test_base_url_is_configurable(example: Any) -> None:
    call = cancelkit.translate(
        example("mirakl"), "mirakl", config={"mirakl": {"base_url": "http://127.0.0.1:9/m/"}}
    )
    assert call.url == "http://127.0.0.1:9/m/v2/orders/0024_COMMERCIAL_ID-A/cancel"


def test_base_url_from_environment(example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://mirakl.example.test/api")
    call = cancelkit.translate(example("mirakl"), "mirakl")
    assert call.url.startswith("https://mirakl.example.test/api/v2/orders/")


@pytest.mark.parametrize("canonical", sorted(MIRAKL_REASONS))
def test_every_faithful_reason_maps_and_validates(example: Any, canonical: str) -> None:
    data = example("mirakl")
    data["reason"] = canonical
    wire = assert_valid_on_the_wire(cancelkit.translate(data, "mirakl"))
    assert wire["cancelations"][0]["reason"] == MIRAKL_REASONS[canonical]


@pytest.mark.parametrize("canonical", sorted(set(REASONS) - set(MIRAKL_REASONS)))
def test_reason_without_faithful_value_is_refused(example: Any, canonical: str) -> None:
    data = example("mirakl")
    data["reason"] = canonical
    with pytest.raises(InvalidRequestError) as caught:
        cancelkit.translate(data, "mirakl")
    message = str(caught.value)
    assert f"reason: {canonical} has no faithful mirakl equivalent" in message
    assert "lines[0]" not in message
    assert "accepted: CUSTOMER_REQUEST, OUT_OF_STOCK, RETURN" in message


def test_line_reason_overrides_request_reason(example: Any) -> None:
    data = example("mirakl")
    data["lines"].append({**data["lines"][0], "line_id": "L2", "reason": "DEFECT"})
    wire = assert_valid_on_the_wire(cancelkit.translate(data, "mirakl"))
    assert [c["reason"] for c in wire["cancelations"]] == ["CUSTOMER_CANCELATION", "DEFECT"]


def test_platform_reason_passes_through(example: Any) -> None:
    data = example("mirakl")
    del data["reason"]
    data["platform_reason"] = "UNABLE_TO_DELIVER"
    wire = assert_valid_on_the_wire(cancelkit.translate(data, "mirakl"))
    assert wire["cancelations"][0]["reason"] == "UNABLE_TO_DELIVER"


def test_missing_reason_is_refused(example: Any) -> None:
    data = example("mirakl")
    del data["reason"]
    with pytest.raises(InvalidRequestError, match="reason: required by mirakl"):
        cancelkit.translate(data, "mirakl")


def test_optional_parts_are_left_out_and_still_valid(example: Any) -> None:
    data = example("mirakl")
    line = data["lines"][0]
    for key in ("product_id", "taxes", "shipping_taxes"):
        del line[key]
    wire = assert_valid_on_the_wire(cancelkit.translate(data, "mirakl"))
    assert set(wire["cancelations"][0]) == {
        "order_line_id",
        "quantity",
        "reason",
        "price",
        "shipping_price",
    }


def test_many_lines_validate(example: Any) -> None:
    data = example("mirakl")
    template = data["lines"][0]
    data["lines"] = [{**template, "line_id": f"L{i}", "quantity": i + 1} for i in range(5)]
    wire = assert_valid_on_the_wire(cancelkit.translate(data, "mirakl"))
    assert [c["quantity"] for c in wire["cancelations"]] == [1, 2, 3, 4, 5]


def test_the_contract_schema_itself_refuses_what_mirakl_refuses(example: Any) -> None:
    wire = assert_valid_on_the_wire(cancelkit.translate(example("mirakl"), "mirakl"))
    del wire["cancelations"][0]["price"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wire, CONTRACT)


def test_http_rendering_is_a_raw_request(example: Any) -> None:
    shown = render(cancelkit.translate(example("mirakl"), "mirakl"), "http")
    head, body = shown.split("\r\n\r\n", 1)
    assert head.startswith("POST /api/v2/orders/0024_COMMERCIAL_ID-A/cancel HTTP/1.1\r\n")
    assert "Host: miraklconnect.com" in head
    assert f"Content-Length: {len(body.encode())}" in head
    assert json.loads(body)["cancelations"][0]["quantity"] == 1


def test_line_level_reason_without_faithful_value_names_the_line(example: Any) -> None:
    data = example("mirakl")
    data["lines"].append({**data["lines"][0], "line_id": "L2", "reason": "FRAUD"})
    with pytest.raises(InvalidRequestError) as caught:
        cancelkit.translate(data, "mirakl")
    assert [str(e).split(":")[0] for e in caught.value.errors] == ["lines[1].reason"]


def test_every_recorded_cancel_body_validates() -> None:
    """The bodies that actually went over the wire in the cassettes, too."""
    import yaml

    checked = 0
    for path in sorted((Path(__file__).parent.parent / "cassettes" / "mirakl").glob("*.yaml")):
        # Deliberately break the schema (a plugin drops price, sends a reason off the enum).
        if path.stem == "invalid_body" or path.stem.startswith("contract_"):
            continue
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request = interaction["request"]
            if request["uri"].endswith("/cancel"):
                jsonschema.validate(json.loads(request["body"]), CONTRACT)
                checked += 1
    assert checked >= 12
