"""Carriyo: translation, contract, answers, and the emulated Orders API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from helpers import contract_schema

import cancelkit
from cancelkit.core.auth import ClientCredentialsToken
from cancelkit.core.client import Client
from cancelkit.core.http import HttpResponse
from cancelkit.core.model import REASONS
from cancelkit.core.schemas import load_request
from cancelkit.errors import AuthenticationError, ConfigurationError, InvalidRequestError
from cancelkit.plugins.carriyo.adapter import LINE_ITEM_ID_KEY, CarriyoAdapter
from cancelkit.plugins.carriyo.adapter import REASON_MAP as CARRIYO_REASONS

CONTRACT = contract_schema("carriyo", "carriyo-cancel-line-items.schema.json")
ADAPTER = CarriyoAdapter()


def wire(call: cancelkit.HttpCall) -> dict[str, Any]:
    body = json.loads(call.body_bytes())
    jsonschema.validate(body, CONTRACT)
    return body


def test_call(example: Any) -> None:
    call = cancelkit.translate(example("carriyo"), "carriyo")
    assert call.url == (
        "https://api.carriyo.com/orders/ORD-1001/fulfillment-orders/FO-1001-1/cancel?key=order_id"
    )
    assert {k: call.headers[k] for k in ("Authorization", "tenant-id", "x-api-key")} == {
        "Authorization": "Bearer ***",
        "tenant-id": "***",
        "x-api-key": "***",
    }
    assert call.headers["Content-Type"] == "application/json"
    assert wire(call) == {
        "cancellation_reason": "CUSTOMER_CANCELLATION",
        "line_items": [{LINE_ITEM_ID_KEY: "line-kbd", "quantity": 1}],
    }


def test_key_option(example: Any) -> None:
    data = example("carriyo")
    data["options"] = {"key": "partner_order_reference"}
    assert cancelkit.translate(data, "carriyo").url.endswith("?key=partner_order_reference")
    data["options"] = {"key": "sku"}
    with pytest.raises(InvalidRequestError, match=r"options\.key: must be one of"):
        cancelkit.translate(data, "carriyo")


@pytest.mark.parametrize(("fo", "order"), [("a/b", "../x"), ("?x", "#y")])
def test_ids_are_one_segment_each(example: Any, fo: str, order: str) -> None:
    data = {**example("carriyo"), "fulfillment_order_id": fo, "order_id": order}
    url = cancelkit.translate(data, "carriyo").url
    path, _, query = url.partition("?")
    segments = path.removeprefix("https://api.carriyo.com/orders/").split("/")
    assert len(segments) == 4 and segments[1::2] == ["fulfillment-orders", "cancel"]
    assert query == "key=order_id"


@pytest.mark.parametrize(
    ("settings", "base"),
    [
        ({}, "https://api.carriyo.com"),
        ({"environment": "demo"}, "https://demo-api.carriyo.com"),
        ({"environment": "demo", "base_url": "http://127.0.0.1:9"}, "http://127.0.0.1:9"),
    ],
)
def test_environment_and_base_url(example: Any, settings: dict, base: str) -> None:
    call = cancelkit.translate(example("carriyo"), "carriyo", config={"carriyo": settings})
    assert call.url.startswith(base + "/orders/")


def test_unknown_environment_is_a_configuration_error(example: Any) -> None:
    with pytest.raises(ConfigurationError, match="production or demo"):
        cancelkit.translate(
            example("carriyo"), "carriyo", config={"carriyo": {"environment": "staging"}}
        )


@pytest.mark.parametrize("canonical", REASONS)
def test_every_canonical_reason_has_a_carriyo_value(example: Any, canonical: str) -> None:
    data = {**example("carriyo"), "reason": canonical}
    body = wire(cancelkit.translate(data, "carriyo"))
    assert body["cancellation_reason"] == CARRIYO_REASONS.get(canonical, "OTHER")


def test_approximated_reason_is_warned(sandbox, example: Any) -> None:
    client = Client(config=sandbox.client_config(), env={})
    result = client.send({**example("carriyo"), "reason": "FRAUD"}, "carriyo")
    assert result.outcome == "cancelled"
    assert result.warnings == ("FRAUD sent as OTHER",)


def test_platform_reason_passes(example: Any) -> None:
    data = {**example("carriyo"), "platform_reason": "STAFF_ERROR"}
    del data["reason"]
    assert wire(cancelkit.translate(data, "carriyo"))["cancellation_reason"] == "STAFF_ERROR"
    # A raw value outside the documented enum goes out with a warning (the enum grows):
    # tests/test_request_validation.py proves it for every platform with reasons, and
    # tests/test_carriyo_contract.py what the emulator, judging by the contract, answers.


def test_one_reason_per_request(example: Any) -> None:
    data = example("carriyo")
    data["lines"].append({"line_id": "line-mon", "quantity": 1, "reason": "STAFF_ERROR"})
    with pytest.raises(InvalidRequestError, match="one cancellation reason per request"):
        cancelkit.translate(data, "carriyo")


def test_fractional_quantity_is_refused(example: Any) -> None:
    data = example("carriyo")
    data["lines"][0]["quantity"] = "1.5"
    with pytest.raises(InvalidRequestError, match="carriyo takes whole quantities"):
        cancelkit.translate(data, "carriyo")


# -- answers ------------------------------------------------------------------------
def order(fo_items: list[dict[str, Any]], removed: Any = None) -> dict[str, Any]:
    return {
        "order_id": "ORD-1001",
        "status": "allocated",
        "line_items": [{"id": "line-kbd", "quantity": 1, "removed_quantities": removed}],
        "fulfillment_orders": [
            {"fulfillment_order_id": "FO-1001-1", "status": "allocated", "line_items": fo_items}
        ],
    }


def answer(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, {}, json.dumps(payload))


@pytest.fixture
def req(example: Any):
    data = example("carriyo")
    data["lines"] = [{"line_id": "line-kbd", "quantity": 1}, {"line_id": "line-mon", "quantity": 1}]
    return load_request(data)


def test_each_line_outcome_comes_from_the_returned_order(req: Any) -> None:
    body = order(
        [
            {LINE_ITEM_ID_KEY: "line-kbd", "quantity": 1, "status": "allocated"},
            {LINE_ITEM_ID_KEY: "line-kbd", "quantity": 1, "status": "cancelled"},
            {LINE_ITEM_ID_KEY: "line-mon", "quantity": 1, "status": "picked"},
        ]
    )
    result = ADAPTER.normalise(req, answer(200, body))
    assert result.outcome == "partial"
    assert [(line.line_id, line.status) for line in result.lines] == [
        ("line-kbd", "cancelled"),
        ("line-mon", "rejected"),
    ]
    assert result.errors[0].code == "NOT_CANCELLED"


def test_nothing_cancelled_in_a_200_is_rejected_not_cancelled(req: Any) -> None:
    body = order(
        [{LINE_ITEM_ID_KEY: "line-kbd", "quantity": 2, "status": "allocated"}],
        removed=[{"quantity": 0}],
    )
    result = ADAPTER.normalise(req, answer(200, body))
    assert result.outcome == "rejected"
    assert {line.status for line in result.lines} == {"rejected"}


@pytest.mark.parametrize("removed", [1, [{"quantity": 1}], {"cancelled": 1}, None])
def test_removed_quantities_in_any_shape_is_reported(req: Any, removed: Any) -> None:
    result = ADAPTER.normalise(req, answer(200, order([], removed=removed)))
    expected = "0" if removed is None else "1"
    assert f"(removed_quantities: {expected})" in result.lines[0].errors[0].message


def test_400_errors_are_split_into_field_and_message(req: Any) -> None:
    body = {
        "status": "400",
        "timestamp": "2025-11-03T09:15:00.000+00:00",
        "errors": [
            "line_items[0] : line item line-mon is picked and cannot be cancelled",
            "plain message without a field",
        ],
    }
    result = ADAPTER.normalise(req, answer(400, body))
    assert result.outcome == "rejected"
    assert [(e.field, e.message) for e in result.errors] == [
        ("line_items[0]", "line item line-mon is picked and cannot be cancelled"),
        (None, "plain message without a field"),
    ]


def test_error_details_and_plain_message(req: Any) -> None:
    details = {"error_details": [{"code": "E1", "message": "bad", "field": "x"}]}
    assert [
        (e.code, e.message, e.field) for e in ADAPTER.normalise(req, answer(400, details)).errors
    ] == [("E1", "bad", "x")]
    plain = ADAPTER.normalise(req, answer(400, {"message": "Cannot cancel"}))
    assert plain.errors[0].message == "Cannot cancel"


def test_404_is_rejected_not_found(req: Any) -> None:
    body = {"status": "404", "timestamp": "x", "errors": ["Order or fulfillment order not found."]}
    result = ADAPTER.normalise(req, answer(404, body))
    assert (result.outcome, result.errors[0].code) == ("rejected", "NOT_FOUND")


# -- against the sandbox ----------------------------------------------------------
def emulated(sandbox) -> dict[str, Any]:
    return sandbox.emulators["carriyo"].orders


def fo_key(sandbox) -> str:
    """How the emulator's fulfillment-order items name their line (from the contract)."""
    return sandbox.emulators["carriyo"].item_key


def test_partial_cancel_updates_the_order(sandbox, sandbox_client, example: Any) -> None:
    result = sandbox_client.send(example("carriyo"), "carriyo")
    assert result.outcome == "cancelled"
    order_ = emulated(sandbox)["ORD-1001"]
    kbd = next(line for line in order_["line_items"] if line["id"] == "line-kbd")
    assert kbd["quantity"] == 1
    assert kbd["removed_quantities"] == [
        {"quantity": 1, "reason": "CUSTOMER_CANCELLATION", "fulfillment_order_id": "FO-1001-1"}
    ]
    fo_items = order_["fulfillment_orders"][0]["line_items"]
    assert sorted(
        (i["quantity"], i["status"]) for i in fo_items if i[fo_key(sandbox)] == "line-kbd"
    ) == [(1, "allocated"), (1, "cancelled")]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("open", "cancelled"),
        ("allocated", "cancelled"),
        ("pick_in_progress", "rejected"),
        ("picked", "rejected"),
        ("pack_in_progress", "rejected"),
        ("fulfilled", "rejected"),
        ("cancelled", "rejected"),
        ("closed", "rejected"),
    ],
)
def test_only_open_and_allocated_can_be_cancelled(
    sandbox_client, status: str, outcome: str
) -> None:
    data = {
        "order_id": "ORD-1002",
        "fulfillment_order_id": "FO-1002-1",
        "reason": "OTHER",
        "lines": [{"line_id": f"line-{status}", "quantity": 1}],
    }
    result = sandbox_client.send(data, "carriyo")
    assert result.outcome == outcome
    if outcome == "rejected":
        assert f"is {status} and cannot be cancelled" in result.errors[0].message


def test_fulfillment_order_and_order_status_recalculated(sandbox, sandbox_client) -> None:
    for fo, line, qty in (("FO-1001-2", "line-cbl", 3), ("FO-1001-1", "line-kbd", 2)):
        data = {
            "order_id": "ORD-1001",
            "fulfillment_order_id": fo,
            "reason": "OTHER",
            "lines": [{"line_id": line, "quantity": qty}],
        }
        assert sandbox_client.send(data, "carriyo").outcome == "cancelled"
    order_ = emulated(sandbox)["ORD-1001"]
    assert order_["fulfillment_orders"][1]["status"] == "cancelled"
    assert order_["fulfillment_orders"][0]["status"] == "allocated"  # line-mon is still picked
    assert order_["status"] == "allocated"


def test_token_errors_are_authentication_errors(sandbox, example: Any) -> None:
    config = sandbox.client_config()
    config["carriyo"]["client_secret"] = "wrong-0123456789"
    with pytest.raises(AuthenticationError, match="access_denied") as caught:
        Client(config=config, env={}).send(example("carriyo"), "carriyo")
    assert "0123456789" not in str(caught.value)
    # A token request without the secret gets 400 bad_request, also an auth error.
    token = ClientCredentialsToken(
        f"{sandbox.base_url('carriyo')}/oauth/token",
        {"client_id": "x"},
        encoding="json",
        platform="carriyo",
    )
    with pytest.raises(AuthenticationError, match=r"HTTP 400.*bad_request"):
        token.headers(requests.Session())


def test_wrong_api_key_is_an_authentication_error(sandbox, example: Any) -> None:
    config = sandbox.client_config()
    config["carriyo"]["api_key"] = "not-the-key"
    with pytest.raises(AuthenticationError, match="HTTP 403"):
        Client(config=config, env={}).send(example("carriyo"), "carriyo")
    assert emulated(sandbox)["ORD-1001"]["line_items"][0]["removed_quantities"] == []


def test_every_recorded_carriyo_body_validates_unless_it_attacks_the_contract() -> None:
    import yaml

    checked = attacks = 0
    for path in sorted((Path(__file__).parent.parent / "cassettes" / "carriyo").glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request = interaction["request"]
            if "/fulfillment-orders/" not in request["uri"]:
                continue
            body = json.loads(request["body"])
            if path.stem.startswith("contract_"):  # a wrong plugin's body, on purpose
                assert not jsonschema.Draft202012Validator(CONTRACT).is_valid(body)
                assert interaction["response"]["status"]["code"] == 400
                attacks += 1
            else:
                jsonschema.validate(body, CONTRACT)
                checked += 1
    assert (checked, attacks) == (10, 3)
