"""Mirakl Connect fidelity: the emulator judges by the published contract, not by the plugin.

* The shipped schema is the OpenAPI document's own ``components/schemas`` (read
  from ``../shared/specs``, beside the checkout), so the judge is Mirakl's text.
* Bodies a wrong plugin would send get Mirakl's documented 400 ``Error``, one item
  per violation; every emulator answer has the documented shape.
* Time, not poll count, finishes an action; status calls keep the once-a-minute
  rule; transient action errors are reported retryable.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from helpers import contract_schema, imported_modules

import cancelkit
from cancelkit.core.client import Client
from cancelkit.core.http import HttpResponse
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.plugin import Contract
from cancelkit.plugins.mirakl.adapter import MiraklConnectAdapter
from cancelkit.plugins.mirakl.emulator import (
    ACTION_PROCESSING_SECONDS,
    CONTRACT,
    STATUS_MIN_INTERVAL,
)

ROOT = Path(__file__).resolve().parent.parent
#: The published OpenAPI document, kept beside the checkout (CI has ../shared too).
OPENAPI = ROOT.parent / "shared" / "specs" / "mirakl-connect-openapi.yaml"
SHIPPED = contract_schema("mirakl", "mirakl-connect.schema.json")
FROZEN = 1_767_225_600.0  # 2026-01-01T00:00:00Z; the sandbox clock moves only by advance
ORDER = "0024_COMMERCIAL_ID-A"


# -- the shipped contract is the published one -------------------------------------
def _openapi_schemas() -> dict[str, Any]:
    assert OPENAPI.is_file(), f"the Mirakl Connect OpenAPI document is expected at {OPENAPI}"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(OPENAPI.read_text(encoding="utf-8"), Loader=loader)
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


def _as_published(node: Any) -> Any:
    """An OpenAPI schema as the copy keeps it: ``examples`` dropped, refs to ``$defs``."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/components/schemas/", "#/$defs/")
                if key == "$ref"
                else _as_published(value)
            )
            for key, value in node.items()
            if key != "examples"
        }
    if isinstance(node, list):
        return [_as_published(item) for item in node]
    return node


def _without_prose_enums(node: Any, path: str, added: list[str]) -> Any:
    """The copy without the ``enum`` lists it added; each must equal the prose "Enum:"."""
    if isinstance(node, list):
        return [_without_prose_enums(item, path, added) for item in node]
    if not isinstance(node, dict):
        return node
    result = {k: _without_prose_enums(v, f"{path}.{k}", added) for k, v in node.items()}
    if "enum" in result:
        prose = re.findall(r'`"([A-Z_]+)"`', str(node.get("description", "")))
        assert result.pop("enum") == prose, f"{path}: enum differs from the description"
        added.append(path)
    return result


def test_the_shipped_schema_is_the_openapi_documents_own() -> None:
    published = _openapi_schemas()
    added: list[str] = []
    for name, definition in SHIPPED["$defs"].items():
        copied = _without_prose_enums(definition, name, added)
        assert copied == _as_published(published[name]), name
    # Exactly the additions the schema's $comment owns up to.
    assert added == [
        "CancelRequest.properties.reason",
        "ActionResponse.properties.status",
    ]
    assert "openapi3.yaml" in SHIPPED["$comment"]


def test_the_cancel_reasons_are_the_documents_seven() -> None:
    reasons = SHIPPED["$defs"]["CancelRequest"]["properties"]["reason"]["enum"]
    assert reasons == [
        "CUSTOMER_CANCELATION",
        "OUT_OF_STOCK",
        "RETURN",
        "ITEM_NOT_RECEIVED",
        "AGREEMENT",
        "DEFECT",
        "UNABLE_TO_DELIVER",
    ]


def test_the_emulator_imports_nothing_from_its_adapter() -> None:
    # Not even relatively: it imports only cancelkit.plugin and the standard library.
    modules = imported_modules(ROOT / "plugins" / "mirakl" / "emulator.py")
    assert "cancelkit.plugin" in modules
    assert [m for m in modules if m.startswith(".") or "adapter" in m or "plugins" in m] == []


# -- the emulator, over HTTP -----------------------------------------------------------
@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox whose clock moves only by ``advance``."""
    with cancelkit.sandbox(clock=lambda: FROZEN) as box:
        yield box


class Mirakl:
    """Raw HTTP to the Mirakl emulator, as any (wrong) plugin could send it."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.base = f"{box.base_url('mirakl')}/api/v2/orders"
        token = requests.post(
            f"{box.base_url('mirakl')}/auth/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client-id",
                "client_secret": "sandbox-client-secret",
            },
            timeout=5,
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def cancel(self, body: Any, order_id: str = ORDER) -> requests.Response:
        return requests.post(
            f"{self.base}/{order_id}/cancel", json=body, headers=self.headers, timeout=5
        )

    def status(self, action_id: str) -> requests.Response:
        return requests.get(f"{self.base}/actions/{action_id}", headers=self.headers, timeout=5)


@pytest.fixture
def mirakl(sandbox: Sandbox) -> Mirakl:
    return Mirakl(sandbox)


def item(**changes: Any) -> dict[str, Any]:
    """One valid ``CancelRequest`` (the OpenAPI example), with ``changes`` applied."""
    value: dict[str, Any] = {
        "order_line_id": "0002_3202630-A-1",
        "product_id": "10000",
        "quantity": 1,
        "reason": "CUSTOMER_CANCELATION",
        "price": {"amount": 15, "currency": "USD"},
        "shipping_price": {"amount": 8, "currency": "USD"},
        "taxes": [{"code": "Tax1", "amount": {"amount": 1, "currency": "USD"}}],
    }
    for key, new in changes.items():
        if new is None:
            del value[key]
        else:
            value[key] = new
    return value


def documented_error(answer: requests.Response, definition: str = "Error") -> dict[str, Any]:
    """The answer's body, checked against the contract's ``Error`` (or another) shape."""
    body: dict[str, Any] = answer.json()
    assert CONTRACT.violations(body, definition=definition) == [], body
    return body


WRONG_BODIES = [
    # (what a wrong plugin sends, the field Mirakl's 400 names)
    ({"cancellations": [item()]}, "cancelations"),  # British spelling of the list
    ({"cancelations": []}, "cancelations"),  # minItems 1
    (
        {"cancelations": [item(price=None, unit_price={"amount": 15, "currency": "USD"})]},
        "cancelations[0].price",
    ),  # misnamed field
    ({"cancelations": [item(reason="CUSTOMER_REQUEST")]}, "cancelations[0].reason"),  # canonical
    ({"cancelations": [item(reason="CHANNEL_SPECIFIC")]}, "cancelations[0].reason"),  # Adjustment's
    ({"cancelations": [item(quantity=1.5)]}, "cancelations[0].quantity"),
    ({"cancelations": [item(quantity="1")]}, "cancelations[0].quantity"),
    ({"cancelations": [item(quantity=-1)]}, "cancelations[0].quantity"),
    ({"cancelations": [item(price=15)]}, "cancelations[0].price"),  # MMP OR30's plain amount
    (
        {"cancelations": [item(price={"amount": -1, "currency": "USD"})]},
        "cancelations[0].price.amount",
    ),
    (
        {"cancelations": [item(shipping_price={"amount": "8.00", "currency": "USD"})]},
        "cancelations[0].shipping_price.amount",
    ),
    (
        {"cancelations": [item(taxes=[{"amount": {"amount": 1, "currency": "USD"}}])]},
        "cancelations[0].taxes[0].code",
    ),
    ({"cancelations": [item(shipping_price=None)]}, "cancelations[0].shipping_price"),
]


@pytest.mark.parametrize(("body", "field"), WRONG_BODIES, ids=[f for _, f in WRONG_BODIES])
def test_a_body_that_breaks_the_contract_gets_the_documented_400(
    mirakl: Mirakl, body: Any, field: str
) -> None:
    answer = mirakl.cancel(body)
    assert answer.status_code == 400
    error = documented_error(answer)
    assert error["code"] == "INVALID_INPUT"
    assert field in [e["field"] for e in error["errors"]], error
    assert all(e["message"] for e in error["errors"])
    assert mirakl.box.emulators["mirakl"].actions == {}  # nothing queued


def test_every_violation_is_one_error_item(mirakl: Mirakl) -> None:
    body = {"cancelations": [item(quantity=-1, reason="BORED", price=None), item(price=7)]}
    fields = sorted(e["field"] for e in documented_error(mirakl.cancel(body))["errors"])
    assert fields == [
        "cancelations[0].price",
        "cancelations[0].quantity",
        "cancelations[0].reason",
        "cancelations[1].price",
    ]


def test_a_body_that_is_not_json_is_a_400_error(mirakl: Mirakl) -> None:
    answer = requests.post(
        f"{mirakl.base}/{ORDER}/cancel", data=b"{nope", headers=mirakl.headers, timeout=5
    )
    assert answer.status_code == 400
    assert documented_error(answer)["code"] == "INVALID_INPUT"


def test_extra_fields_pass_because_the_contract_does_not_forbid_them(mirakl: Mirakl) -> None:
    # The document sets no additionalProperties: false; the emulator invents no strictness.
    body = {"cancelations": [item(currency_iso_code="USD")], "order_tax_mode": "TAX_EXCLUDED"}
    answer = mirakl.cancel(body)
    assert answer.status_code == 202
    assert CONTRACT.violations(answer.json(), definition="AsynchronousActionResponse") == []


def test_every_answer_has_its_documented_shape(mirakl: Mirakl) -> None:
    accepted = mirakl.cancel({"cancelations": [item()]})
    assert CONTRACT.violations(accepted.json(), definition="AsynchronousActionResponse") == []
    action_id = accepted.json()["action_id"]
    assert accepted.json()["tracking_id"] == action_id  # deprecated, same value
    pending = mirakl.status(action_id).json()
    assert CONTRACT.violations(pending, definition="ActionResponse") == []
    assert pending["status"] == "PENDING"
    too_soon = mirakl.status(action_id)
    assert too_soon.status_code == 429 and too_soon.headers["Retry-After"] == "60"
    documented_error(too_soon)
    mirakl.box.advance(STATUS_MIN_INTERVAL)
    done = mirakl.status(action_id).json()
    assert CONTRACT.violations(done, definition="ActionResponse") == []
    assert (done["created_at"], done["updated_at"]) == (
        "2026-01-01T00:00:00Z",
        f"2026-01-01T00:00:{ACTION_PROCESSING_SECONDS:02.0f}Z",
    )
    assert documented_error(mirakl.status("no-such-action"))["code"] == "DATA_NOT_FOUND"
    assert documented_error(mirakl.cancel({"cancelations": [item()]}, "NOPE"))["code"] == (
        "DATA_NOT_FOUND"
    )


def test_pending_until_the_processing_time_however_often_asked(mirakl: Mirakl) -> None:
    # Two actions: one asked at once, one never asked. Both finish by the clock.
    asked = mirakl.cancel({"cancelations": [item()]}).json()["action_id"]
    unasked = mirakl.cancel({"cancelations": [item(order_line_id="0002_3202630-A-2")]}).json()[
        "action_id"
    ]
    assert mirakl.status(asked).json()["status"] == "PENDING"
    mirakl.box.advance(ACTION_PROCESSING_SECONDS - 0.5)
    assert mirakl.status(unasked).json()["status"] == "PENDING"
    mirakl.box.advance(STATUS_MIN_INTERVAL)
    assert mirakl.status(asked).json()["status"] == "SUCCESS"
    assert mirakl.status(unasked).json()["status"] == "SUCCESS"


@pytest.mark.parametrize(
    "reason", SHIPPED["$defs"]["CancelRequest"]["properties"]["reason"]["enum"]
)
def test_every_reason_of_the_contracts_enum_is_taken(mirakl: Mirakl, reason: str) -> None:
    assert mirakl.cancel({"cancelations": [item(reason=reason)]}).status_code == 202


# -- through the client ----------------------------------------------------------------
@pytest.mark.newer_than_contract
def test_a_newer_platform_reason_goes_out_with_a_warning_and_our_contract_refuses_it(
    sandbox_client: Client, example: Any
) -> None:
    data = example("mirakl")
    del data["reason"]
    data["platform_reason"] = "CHANNEL_SPECIFIC"
    result = sandbox_client.send(data, "mirakl")
    assert any("CHANNEL_SPECIFIC" in w and "sent as given" in w for w in result.warnings)
    # The sandbox knows only the published enum, so it answers as Mirakl did then.
    assert result.outcome == "rejected" and result.http_status == 400
    assert [e.field for e in result.errors] == ["cancelations[0].reason"]


def test_status_twice_in_a_row_waits_out_the_minute(
    sandbox_client: Client, sleeps: Any, example: Any
) -> None:
    accepted = sandbox_client.send(example("mirakl"), "mirakl")
    assert accepted.tracking_id
    assert sandbox_client.status("mirakl", accepted.tracking_id).outcome == "accepted"
    final = sandbox_client.status("mirakl", accepted.tracking_id)
    assert final.outcome == "cancelled"  # not a 429: the client waited
    assert sleeps.calls == [pytest.approx(STATUS_MIN_INTERVAL)]


def test_send_wait_sees_success_at_its_first_poll(
    sandbox_client: Client, sleeps: Any, example: Any
) -> None:
    final = sandbox_client.wait(sandbox_client.send(example("mirakl"), "mirakl"))
    assert final.outcome == "cancelled"
    assert len(sleeps.calls) == 1 and sleeps.calls[0] > ACTION_PROCESSING_SECONDS


def test_the_adapter_declares_the_documented_status_interval() -> None:
    # Read from the same sentence of the spec as the emulator's rule, separately.
    assert MiraklConnectAdapter.capabilities.status_interval == 60.0 == STATUS_MIN_INTERVAL


def test_a_down_channel_fails_the_action_retryably(sandbox_client: Client, sleeps: Any) -> None:
    from cancelkit.plugins.mirakl.scenarios import request

    result = sandbox_client.wait(
        sandbox_client.send(request("0026_COMMERCIAL_ID-C", "0004_3202632-C-1"), "mirakl")
    )
    assert result.outcome == "rejected"
    assert [e.code for e in result.errors] == ["UNAVAILABLE"]
    assert result.retryable and result.errors[0].retryable
    assert "may be sent again later" in (result.message or "")


# -- normalising action errors ------------------------------------------------------
def failed(*codes: str) -> HttpResponse:
    import json

    errors = [{"code": code, "message": f"{code} happened"} for code in codes]
    body = {"id": "a1", "status": "FAILED", "created_at": "x", "updated_at": "y", "errors": errors}
    return HttpResponse(200, {}, json.dumps(body))


@pytest.mark.parametrize("code", ["TOO_MANY_REQUEST", "UNAVAILABLE", "UNEXPECTED"])
def test_transient_action_errors_are_retryable(code: str) -> None:
    result = MiraklConnectAdapter().normalise_status("a1", failed(code))
    assert result.outcome == "rejected"
    assert result.retryable
    assert [(e.code, e.retryable) for e in result.errors] == [(code, True)]


@pytest.mark.parametrize(
    "codes",
    [("ORDER_IN_WRONG_STATE",), ("INVALID_INPUT",), ("UNAVAILABLE", "ORDER_IN_WRONG_STATE"), ()],
)
def test_other_failures_are_not_retryable(codes: tuple[str, ...]) -> None:
    result = MiraklConnectAdapter().normalise_status("a1", failed(*codes))
    assert result.outcome == "rejected"
    assert not result.retryable
    assert [e.retryable for e in result.errors] == [c == "UNAVAILABLE" for c in codes]
    assert "may be sent again" not in (result.message or "")


def test_a_successful_action_says_nothing_about_retrying() -> None:
    import json

    body = {"id": "a1", "status": "SUCCESS", "created_at": "x", "updated_at": "y"}
    result = MiraklConnectAdapter().normalise_status("a1", HttpResponse(200, {}, json.dumps(body)))
    assert result.outcome == "cancelled" and not result.retryable


# -- money --------------------------------------------------------------------------
def test_price_is_the_amount_for_the_cancelled_quantity_sent_as_given(example: Any) -> None:
    # Mirakl's price is "Product price to cancel" (unit price x quantity, as its
    # Adjustment.price says): the canonical price goes out as given, never multiplied.
    data = copy.deepcopy(example("mirakl"))
    data["lines"][0].update(quantity=2, price="30.00", shipping_price="16.00")
    item = cancelkit.translate(data, "mirakl").body["cancelations"][0]
    assert (item["quantity"], str(item["price"]["amount"])) == (2, "30.00")
    assert str(item["shipping_price"]["amount"]) == "16.00"


def test_contract_kit_reads_the_packaged_schema() -> None:
    packaged = Contract.packaged("cancelkit.plugins.mirakl", "contracts/mirakl-connect.schema.json")
    assert packaged.schema == SHIPPED
