"""Salesforce: cancel-item and the Flow core action (translation, contract, answers)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import contract_schema

import cancelkit
from cancelkit.core.http import HttpResponse
from cancelkit.core.schemas import load_request
from cancelkit.errors import ConfigurationError, InvalidRequestError
from cancelkit.plugins.salesforce import flow as flow_module
from cancelkit.plugins.salesforce.common import DEFAULT_API_VERSION
from cancelkit.plugins.salesforce.connect import SalesforceConnectAdapter
from cancelkit.plugins.salesforce.flow import SalesforceFlowAdapter

CANCEL_ITEM = contract_schema("salesforce", "salesforce-cancel-item.schema.json")
FLOW_INVOCATION = contract_schema("salesforce", "salesforce-flow-invocation.schema.json")
INSTANCE = {"salesforce": {"instance_url": "https://acme.my.salesforce.com"}}


def wire(call: cancelkit.HttpCall, schema: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(call.body_bytes())
    jsonschema.validate(body, schema)
    return body


def test_cancel_item_call(example: Any) -> None:
    call = cancelkit.translate(example("salesforce"), "salesforce", config=INSTANCE)
    assert call.method == "POST"
    assert call.url == (
        f"https://acme.my.salesforce.com/services/data/v{DEFAULT_API_VERSION}/commerce/"
        "fulfillment/fulfillment-orders/0a3xx0000000085AAA/actions/cancel-item"
    )
    assert call.headers["Authorization"] == "Bearer ***"
    assert wire(call, CANCEL_ITEM) == {
        "fulfillmentOrderLineItemsToCancel": [
            {"fulfillmentOrderLineItemId": "0a4xx00000000W0001", "quantity": 1},
            {"fulfillmentOrderLineItemId": "0a4xx00000000W0002", "quantity": 2},
        ]
    }


def test_fractional_quantities_are_sent_exactly(example: Any) -> None:
    data = example("salesforce")
    data["lines"][0]["quantity"] = Decimal("0.125")
    call = cancelkit.translate(data, "salesforce", config=INSTANCE)
    assert b'"quantity":0.125' in call.body_bytes()
    wire(call, CANCEL_ITEM)


@pytest.mark.parametrize("fo", ["../x", "a/b", "?x", "#y"])
def test_fulfillment_order_id_is_one_segment(example: Any, fo: str) -> None:
    data = example("salesforce")
    data["fulfillment_order_id"] = fo
    url = cancelkit.translate(data, "salesforce", config=INSTANCE).url
    segment = url.split("/fulfillment-orders/")[1].split("/")[0]
    assert "/" not in segment and "?" not in url and "#" not in url
    assert url.endswith("/actions/cancel-item")


def test_api_version_is_configurable_and_floored(example: Any) -> None:
    config = {"salesforce": {**INSTANCE["salesforce"], "api_version": "v59.0"}}
    assert (
        "/services/data/v59.0/"
        in cancelkit.translate(example("salesforce"), "salesforce", config=config).url
    )
    for bad in ("47.0", "abc", "nan"):
        config["salesforce"]["api_version"] = bad
        with pytest.raises(ConfigurationError, match=r"not supported; cancel-item needs 48\.0"):
            cancelkit.translate(example("salesforce"), "salesforce", config=config)


def test_without_instance_url_the_login_url_stands_in(example: Any) -> None:
    config = {"salesforce": {"login_url": "https://acme.my.salesforce.com"}}
    url = cancelkit.translate(example("salesforce"), "salesforce", config=config).url
    assert url.startswith("https://acme.my.salesforce.com/services/data/")


def test_without_any_org_url_translate_shows_the_my_domain_placeholder(example: Any) -> None:
    # translate needs no settings; there is no generic host to fall back to.
    url = cancelkit.translate(example("salesforce"), "salesforce").url
    assert url.startswith("https://MyDomainName.my.salesforce.com/services/data/")


def test_fulfillment_order_id_is_required(example: Any) -> None:
    data = example("salesforce")
    del data["fulfillment_order_id"]
    for platform in ("salesforce", "salesforce-flow"):
        with pytest.raises(
            InvalidRequestError, match=f"fulfillment_order_id: required by {platform}"
        ):
            cancelkit.translate(data, platform)


def test_reason_is_ignored_with_a_warning(sandbox, example: Any) -> None:
    data = example("salesforce")
    data["reason"] = "OUT_OF_STOCK"
    client = cancelkit.Client(config=sandbox.client_config(), env={})
    result = client.send(data, "salesforce")
    assert result.outcome == "cancelled"
    assert result.warnings[0] == "salesforce takes no cancellation reason; OUT_OF_STOCK ignored"
    assert "does not cancel the OrderItemSummaries" in result.warnings[1]


def test_flow_call(example: Any) -> None:
    call = cancelkit.translate(example("salesforce-flow"), "salesforce-flow", config=INSTANCE)
    assert call.url == (
        f"https://acme.my.salesforce.com/services/data/v{DEFAULT_API_VERSION}/actions/custom/flow/"
        "Cancelkit_Cancel_Fulfillment_Order_Items"
    )
    assert wire(call, FLOW_INVOCATION) == {
        "inputs": [
            {
                "fulfillmentOrderId": "0a3xx0000000088AAA",
                "fulfillmentOrderLineItemIds": ["0a4xx00000000W0005"],
                "quantities": [0.75],
            }
        ]
    }


def test_flow_api_name_is_configurable(example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_SALESFORCE_FLOW_API_NAME", "My_Cancel_Flow")
    call = cancelkit.translate(example("salesforce-flow"), "salesforce-flow", config=INSTANCE)
    assert call.url.endswith("/actions/custom/flow/My_Cancel_Flow")


# -- the shipped flow ------------------------------------------------------------
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}


def tag(name: str) -> str:
    return f"{{{NS['m']}}}{name}"


def test_shipped_flow_takes_the_inputs_the_adapter_sends() -> None:
    root = ET.parse(flow_module.FLOW_FILE).getroot()
    inputs = {
        v.findtext("m:name", namespaces=NS): v
        for v in root.findall("m:variables", NS)
        if v.findtext("m:isInput", namespaces=NS) == "true"
    }
    assert set(inputs) == {
        flow_module.INPUT_FULFILLMENT_ORDER_ID,
        flow_module.INPUT_LINE_ITEM_IDS,
        flow_module.INPUT_QUANTITIES,
    }
    assert inputs[flow_module.INPUT_QUANTITIES].findtext("m:dataType", namespaces=NS) == "Number"
    assert (
        inputs[flow_module.INPUT_LINE_ITEM_IDS].findtext("m:isCollection", namespaces=NS) == "true"
    )
    [action] = root.findall("m:actionCalls", NS)
    assert action.findtext("m:actionType", namespaces=NS) == "cancelFulfillmentOrderItem"
    assert root.findtext("m:processType", namespaces=NS) == "AutoLaunchedFlow"


def test_shipped_flow_is_wired_completely() -> None:
    root = ET.parse(flow_module.FLOW_FILE).getroot()
    elements = {
        e.findtext("m:name", namespaces=NS) for e in root if e.find("m:name", NS) is not None
    }
    targets = {t.text for t in root.iter(tag("targetReference"))}
    assert targets <= elements, targets - elements
    references = {t.text.split(".")[0] for t in root.iter(tag("elementReference"))}
    references |= {t.text.split(".")[0] for t in root.iter(tag("assignToReference"))}
    references |= {t.text for t in root.iter(tag("leftValueReference"))}
    # $Flow.FaultMessage and the like are Flow's own global variables.
    assert {r for r in references if not r.startswith("$Flow")} <= elements, references - elements


def test_shipped_flow_is_in_the_package() -> None:
    from importlib.resources import files

    name = "flows/Cancelkit_Cancel_Fulfillment_Order_Items.flow-meta.xml"
    assert files("cancelkit.plugins.salesforce").joinpath(name).is_file()


# -- answers, body by body ------------------------------------------------------------
CONNECT = SalesforceConnectAdapter()
FLOW = SalesforceFlowAdapter()


@pytest.fixture
def req(example: Any):
    return load_request(example("salesforce"))


def answer(status: int, payload: Any = None, text: str | None = None, **headers: str):
    return HttpResponse(status, headers, text if text is not None else json.dumps(payload))


def test_success_true_is_cancelled_with_limit_info(req: Any) -> None:
    response = answer(
        201, {"errors": [], "success": True}, **{"Sforce-Limit-Info": "api-usage=10018/100000"}
    )
    result = CONNECT.normalise(req, response)
    assert result.outcome == "cancelled"
    assert {line.status for line in result.lines} == {"cancelled"}
    # Core adds these extras to every result built from an answer.
    details = CONNECT.response_details(response)
    assert details["limit_info"] == {"api-usage": "10018/100000"}
    assert details["order_item_summaries"]["cancelled"] is False


def test_success_false_in_a_2xx_is_rejected_with_each_error(req: Any) -> None:
    body = {
        "success": False,
        "errors": [
            {"errorCode": "INVALID_QUANTITY", "message": "too many"},
            {"errorCode": "OTHER", "message": "and this"},
        ],
    }
    result = CONNECT.normalise(req, answer(200, body))
    assert result.outcome == "rejected"
    assert [(e.code, e.message) for e in result.errors] == [
        ("INVALID_QUANTITY", "too many"),
        ("OTHER", "and this"),
    ]


@pytest.mark.parametrize("wrap", [lambda b: b, lambda b: [b]], ids=["object", "array"])
def test_error_with_output_is_rejected_with_message_and_output_errors(req: Any, wrap) -> None:
    body = {
        "enhancedErrorType": None,
        "message": "Fulfillment order is closed",
        "output": {
            "errors": [{"errorCode": "INVALID_STATUS", "message": "closed"}],
            "success": False,
        },
    }
    result = CONNECT.normalise(req, answer(400, wrap(body)))
    assert result.outcome == "rejected"
    assert [(e.code, e.message) for e in result.errors] == [("INVALID_STATUS", "closed")]


def test_generic_error_array_is_rejected(req: Any) -> None:
    body = [{"errorCode": "INVALID_ID_FIELD", "message": "Invalid identifier: 0a3"}]
    result = CONNECT.normalise(req, answer(400, body))
    assert [(e.code, e.message) for e in result.errors] == [
        ("INVALID_ID_FIELD", "Invalid identifier: 0a3")
    ]


def test_request_limit_exceeded_is_rate_limited_not_auth(req: Any) -> None:
    response = answer(403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "limit"}])
    assert not CONNECT.is_auth_failure(response)
    assert CONNECT.is_auth_failure(
        answer(403, [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}])
    )
    assert CONNECT.is_rate_limited(response)  # core reports it as rate limited, unretried
    assert not CONNECT.is_rate_limited(answer(403, [{"errorCode": "INSUFFICIENT_ACCESS"}]))


@pytest.mark.parametrize(
    "response",
    [answer(201, {"success": "yes"}), answer(200, {"unexpected": True})],
    ids=["odd-success-flag", "no-success-flag"],
)
@pytest.mark.parametrize("adapter", [CONNECT, FLOW], ids=["connect", "flow"])
def test_readable_answers_without_a_result_are_unknown(req: Any, response, adapter) -> None:
    # 5xx, HTML and empty bodies never reach normalise: the fault matrix (cancelkit.testing).
    result = adapter.normalise(req, response)
    assert result.outcome == "unknown"
    assert "NOT resent" in result.message


def flow_answer(**outputs: Any) -> list[dict[str, Any]]:
    values = {**outputs, "Flow__InterviewStatus": "Finished"}
    return [{"actionName": "F", "errors": None, "isSuccess": True, "outputValues": values}]


def test_flow_success_and_failure(req: Any) -> None:
    ok = flow_answer(cancelled=True, errorMessage=None)
    assert FLOW.normalise(req, answer(200, ok)).outcome == "cancelled"
    failed = [
        {
            "actionName": "F",
            "isSuccess": False,
            "outputValues": None,
            "errors": [
                {"statusCode": "UNKNOWN_EXCEPTION", "message": "flow fault", "fields": ["quantity"]}
            ],
        }
    ]
    result = FLOW.normalise(req, answer(400, failed))
    assert result.outcome == "rejected"
    assert [(e.code, e.message, e.field) for e in result.errors] == [
        ("UNKNOWN_EXCEPTION", "flow fault", "quantity")
    ]


def test_the_flows_fault_path_is_rejected_with_its_message(req: Any) -> None:
    fault = flow_answer(cancelled=False, errorMessage="INVALID_QUANTITY: Can't cancel 5")
    result = FLOW.normalise(req, answer(200, fault))
    assert result.outcome == "rejected"
    assert [(e.code, e.message) for e in result.errors] == [("INVALID_QUANTITY", "Can't cancel 5")]
    plain = FLOW.normalise(req, answer(200, flow_answer(cancelled=False, errorMessage="broke")))
    assert [(e.code, e.message) for e in plain.errors] == [("FLOW_FAULT", "broke")]


@pytest.mark.parametrize(
    "outputs",
    [{}, {"cancelled": None}, {"cancelled": "true"}, {"success": True}],
    ids=["no-output", "null", "a-string", "another-name"],
)
def test_is_success_alone_is_never_cancelled(req: Any, outputs: dict[str, Any]) -> None:
    # isSuccess says the interview ran, not that the core action cancelled anything.
    result = FLOW.normalise(req, answer(200, flow_answer(**outputs)))
    assert result.outcome == "unknown"
    assert "'cancelled'" in result.message


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        (400, [{"errorCode": "INVALID_TYPE", "message": "Cannot find flow"}]),
    ],
    ids=["404-not-found", "invalid-type"],
)
def test_a_missing_flow_is_a_configuration_error(req: Any, status: int, body: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        FLOW.normalise(req, answer(status, body))
    assert raised.value.exit_code == 4
    assert "no active autolaunched flow" in str(raised.value)
    assert "CANCELKIT_SALESFORCE_FLOW_API_NAME" in str(raised.value)


def test_a_404_that_is_not_salesforces_is_a_refusal_not_a_missing_flow(req: Any) -> None:
    result = FLOW.normalise(req, answer(404, {"code": "NOT_FOUND"}))
    assert result.outcome == "rejected"


def test_every_recorded_salesforce_body_validates() -> None:
    import yaml

    checked = 0
    for path in sorted((Path(__file__).parent.parent / "cassettes" / "salesforce").glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request = interaction["request"]
            schema = (
                CANCEL_ITEM
                if request["uri"].endswith("/cancel-item")
                else FLOW_INVOCATION
                if "/actions/custom/flow/" in request["uri"]
                else None
            )
            if schema is not None:
                jsonschema.validate(json.loads(request["body"]), schema)
                checked += 1
    assert checked >= 20
