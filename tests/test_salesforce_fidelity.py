"""Issue 10 for Salesforce: the emulator judges by the published contract and the shipped
flow, the flow's own outcome decides "cancelled", a missing flow and a generic login host
are configuration errors (exit 4), and every result says the OrderItemSummaries stay.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click
import pytest
import requests
from click.testing import CliRunner
from helpers import ROOT

from cancelkit import PluginRegistry, hookimpl
from cancelkit.cli import main, register_plugin_commands
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import ConfigurationError
from cancelkit.plugins.salesforce import emulator as emulator_module
from cancelkit.plugins.salesforce.common import (
    ORDER_ITEM_SUMMARIES_WARNING,
    SalesforceToken,
    make_authenticator,
)
from cancelkit.plugins.salesforce.emulator import (
    COUNT_MISMATCH,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
)
from cancelkit.plugins.salesforce.flow import DEFAULT_FLOW_API_NAME, FLOW_FILE
from cancelkit.plugins.salesforce.flowdef import NAMESPACE, read_flow

PLATFORMS = ["salesforce", "salesforce-flow"]
FO = "0a3xx0000000085AAA"
EXAMPLES = ROOT / "examples"


def req(fo: str = FO, *lines: tuple[str, Any]) -> dict[str, Any]:
    pairs = lines or (("0a4xx00000000W0001", 1),)
    return {"fulfillment_order_id": fo, "lines": [{"line_id": i, "quantity": q} for i, q in pairs]}


class Org:
    """Raw HTTP against the sandbox's Salesforce org, as another client would talk to it."""

    def __init__(self, box: Sandbox):
        self.box = box
        base = box.base_url("salesforce")
        token = requests.post(
            f"{base}/login/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
            },
            timeout=5,
        ).json()
        self.api = f"{token['instance_url']}/services/data/v66.0"
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def post(self, path: str, body: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return requests.post(f"{self.api}/{path}", data=data, headers=self.headers, timeout=5)

    def cancel_item(self, body: Any, fo: str = FO) -> requests.Response:
        return self.post(f"commerce/fulfillment/fulfillment-orders/{fo}/actions/cancel-item", body)

    def flow(self, body: Any, name: str = DEFAULT_FLOW_API_NAME) -> requests.Response:
        return self.post(f"actions/custom/flow/{name}", body)

    def quantities(self) -> dict[str, float]:
        lines = self.box.emulators["salesforce"].fulfillment_orders[FO]["lines"]
        return {line_id: line["Quantity"] for line_id, line in lines.items()}


@pytest.fixture
def org(sandbox: Sandbox) -> Org:
    return Org(sandbox)


# -- 1. the emulator judges by the contract, not by the plugin ----------------------------
def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


@pytest.mark.parametrize("module", ["emulator.py", "flowdef.py"])
def test_the_emulator_imports_nothing_from_the_adapters(module: str) -> None:
    imported = imports_of(ROOT / "plugins" / "salesforce" / module)
    assert not imported & {".common", ".flow", ".connect", ".plugin", ".scenarios"}, imported
    assert all(not i.startswith("cancelkit") or i == "cancelkit.plugin" for i in imported)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fulfillmentOrderLineItemsToCancel": []}, "fulfillmentOrderLineItemsToCancel"),
        ({"lineItems": [{"fulfillmentOrderLineItemId": "0a4xx00000000W0001", "quantity": 1}]},
         "(body)"),
        ({"fulfillmentOrderLineItemsToCancel": [
            {"fulfillmentOrderLineItemId": "0a4xx00000000W0001", "quantity": "1"}]},
         "fulfillmentOrderLineItemsToCancel[0].quantity"),
        ({"fulfillmentOrderLineItemsToCancel": [
            {"fulfillmentOrderLineItemId": "0a4xx00000000W0001", "quantity": 0}]},
         "fulfillmentOrderLineItemsToCancel[0].quantity"),
        ({"fulfillmentOrderLineItemsToCancel": [
            {"id": "0a4xx00000000W0001", "quantity": 1}]},
         "fulfillmentOrderLineItemsToCancel[0]"),
    ],
    ids=["empty-list", "wrong-key", "quantity-string", "quantity-zero", "line-wrong-key"],
)  # fmt: skip
def test_a_cancel_item_body_the_contract_refuses_gets_salesforces_error_array(
    org: Org, body: Any, field: str
) -> None:
    before = org.quantities()
    answer = org.cancel_item(body)
    assert answer.status_code == 400
    errors = answer.json()
    assert isinstance(errors, list) and errors
    assert all(set(e) == {"errorCode", "message"} for e in errors)
    assert {e["errorCode"] for e in errors} == {"INVALID_API_INPUT"}
    assert any(e["message"].startswith(f"{field}: ") for e in errors), errors
    assert org.quantities() == before


def test_a_cancel_item_body_that_is_not_json_is_a_parser_error(org: Org) -> None:
    answer = org.cancel_item(b"{not json")
    assert (answer.status_code, answer.json()[0]["errorCode"]) == (400, "JSON_PARSER_ERROR")


def test_the_old_input_name_is_refused_with_the_invocable_action_error_shape(org: Org) -> None:
    body = {
        "inputs": [
            {
                "fulfillmentOrderId": FO,
                "cancelFulfillmentOrderLineItemsInput": {
                    "fulfillmentOrderLineItemsToCancel": [
                        {"fulfillmentOrderLineItemId": "0a4xx00000000W0001", "quantity": 1}
                    ]
                },
            }
        ]
    }
    before = org.quantities()
    answer = org.flow(body)
    assert answer.status_code == 400
    [item] = answer.json()
    assert item["actionName"] == DEFAULT_FLOW_API_NAME
    assert (item["isSuccess"], item["outputValues"]) == (False, None)
    [error] = item["errors"]
    assert set(error) == {"statusCode", "message", "fields"}
    assert error["statusCode"] == "INVALID_INPUT"
    assert error["fields"] == ["cancelFulfillmentOrderLineItemsInput"]
    assert org.quantities() == before


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"fulfillmentOrderLineItemIds": "0a4xx00000000W0001"}, "fulfillmentOrderLineItemIds"),
        ({"quantities": ["1"]}, "quantities"),
        ({"quantities": [True]}, "quantities"),
        ({"fulfillmentOrderId": 85}, "fulfillmentOrderId"),
    ],
    ids=["ids-not-a-list", "quantity-string", "quantity-bool", "fo-number"],
)
def test_a_flow_input_of_the_wrong_type_is_refused(
    org: Org, values: dict[str, Any], field: str
) -> None:
    good = {
        "fulfillmentOrderId": FO,
        "fulfillmentOrderLineItemIds": ["0a4xx00000000W0001"],
        "quantities": [1],
    }
    answer = org.flow({"inputs": [{**good, **values}]})
    assert answer.status_code == 400
    [error] = answer.json()[0]["errors"]
    assert (error["statusCode"], error["fields"]) == ("INVALID_TYPE", [field])


@pytest.mark.parametrize("body", [{"input": []}, {"inputs": []}, [1], {"inputs": [], "x": 1}])
def test_a_flow_body_without_inputs_gets_the_generic_error_array(org: Org, body: Any) -> None:
    answer = org.flow(body)
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_the_answer_carries_the_flows_output_variables(org: Org) -> None:
    body = {
        "inputs": [
            {
                "fulfillmentOrderId": FO,
                "fulfillmentOrderLineItemIds": ["0a4xx00000000W0001"],
                "quantities": [1],
            }
        ]
    }
    [item] = org.flow(body).json()
    outputs = set(read_flow(FLOW_FILE).outputs)
    assert set(item["outputValues"]) == outputs | {"Flow__InterviewStatus"}
    assert item["outputValues"]["cancelled"] is True


def test_lists_of_different_lengths_end_as_the_flow_ends_them(org: Org) -> None:
    body = {
        "inputs": [
            {
                "fulfillmentOrderId": FO,
                "fulfillmentOrderLineItemIds": ["0a4xx00000000W0001", "0a4xx00000000W0002"],
                "quantities": [1],
            }
        ]
    }
    before = org.quantities()
    answer = org.flow(body)
    assert answer.status_code == 200
    outputs = answer.json()[0]["outputValues"]
    assert (outputs["cancelled"], outputs["errorMessage"]) == (False, COUNT_MISMATCH)
    assert org.quantities() == before
    # The message is the flow's own literal, not the emulator's invention.
    values = ET.parse(FLOW_FILE).getroot().iter(f"{{{NAMESPACE}}}stringValue")
    assert COUNT_MISMATCH in {v.text for v in values}


def test_every_interview_of_a_request_is_answered(org: Org) -> None:
    one = {
        "fulfillmentOrderId": FO,
        "fulfillmentOrderLineItemIds": ["0a4xx00000000W0001"],
        "quantities": [1],
    }
    answer = org.flow({"inputs": [one, {**one, "bogus": 1}]})
    assert answer.status_code == 400
    assert [item["isSuccess"] for item in answer.json()] == [True, False]


def test_the_emulator_follows_the_flow_file_not_the_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    """Rename the flow's input: the adapter's body (old name) is now refused."""
    text = FLOW_FILE.read_text().replace(
        "<name>quantities</name>", "<name>quantitiesToCancel</name>"
    )
    text = text.replace(
        "<collectionReference>quantities</collectionReference>",
        "<collectionReference>quantitiesToCancel</collectionReference>",
    ).replace(
        "<elementReference>quantities</elementReference>",
        "<elementReference>quantitiesToCancel</elementReference>",
    )
    renamed = tmp_path / FLOW_FILE.name
    renamed.write_text(text)
    monkeypatch.setitem(emulator_module.FLOWS, DEFAULT_FLOW_API_NAME, read_flow(renamed))
    monkeypatch.setattr(emulator_module, "_SHAPES", {})
    with Client(config=sandbox.client_config(), env={}) as client:
        result = client.send(req(), "salesforce-flow")
    assert result.outcome == "rejected"
    [error] = result.errors
    assert (error.code, error.field) == ("INVALID_INPUT", "quantities")
    assert "quantitiesToCancel" in error.message


# -- 2. the flow's own outcome decides "cancelled" -------------------------------------
def test_success_false_from_the_action_is_never_cancelled(sandbox: Sandbox) -> None:
    """More than remains: cancel-item says success false in a 2xx; the flow faults."""
    data = req(FO, ("0a4xx00000000W0002", 5))
    with Client(config=sandbox.client_config(), env={}) as client:
        for platform in PLATFORMS:
            result = client.send(data, platform)
            assert result.outcome == "rejected", platform
            assert result.errors[0].code == "INVALID_QUANTITY", platform
            assert {line.status for line in result.lines} == {"rejected"}


@pytest.mark.parametrize(
    "outputs",
    [None, {"Flow__InterviewStatus": "Finished"}, {"cancelled": None, "errorMessage": None}],
    ids=["no-outputs", "interview-status-only", "null-cancelled"],
)
def test_a_finished_interview_without_the_flows_verdict_is_unknown(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, outputs: Any
) -> None:
    """An org whose flow is not the shipped one: isSuccess alone proves nothing."""

    def interview(self: Any, flow: Any, values: Any) -> dict[str, Any]:
        return {
            "actionName": flow.api_name,
            "errors": None,
            "isSuccess": True,
            "outputValues": outputs,
        }

    monkeypatch.setattr(emulator_module.SalesforceEmulator, "_interview", interview)
    with Client(config=sandbox.client_config(), env={}) as client:
        result = client.send(req(), "salesforce-flow")
    assert result.outcome == "unknown"
    assert "NOT resent" in result.message


# -- 3. a missing or inactive flow is a configuration error -------------------------------
def org_settings(box: Sandbox, **extra: str) -> dict[str, str]:
    return {
        "login_url": f"{box.base_url('salesforce')}/login",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        **extra,
    }


def test_a_flow_the_org_does_not_have_is_a_configuration_error(sandbox: Sandbox) -> None:
    config = {"salesforce": org_settings(sandbox, flow_api_name="Cancel_Flow_Not_Deployed")}
    with Client(config=config, env={}) as client, pytest.raises(ConfigurationError) as raised:
        client.send(req(), "salesforce-flow")
    message = str(raised.value)
    assert raised.value.exit_code == 4
    assert "no active autolaunched flow Cancel_Flow_Not_Deployed" in message
    assert "NOT_FOUND" in message and "nothing was cancelled" in message


def test_an_inactive_flow_is_a_configuration_error(sandbox: Sandbox) -> None:
    sandbox.emulators["salesforce"].flows[DEFAULT_FLOW_API_NAME] = "Draft"
    before = sandbox.emulators["salesforce"].fulfillment_orders[FO]["lines"]
    before = {k: dict(v) for k, v in before.items()}
    client = Client(config={"salesforce": org_settings(sandbox)}, env={})
    with client, pytest.raises(ConfigurationError, match=f"flow {DEFAULT_FLOW_API_NAME}"):
        client.send(req(), "salesforce-flow")
    assert sandbox.emulators["salesforce"].fulfillment_orders[FO]["lines"] == before


def test_the_cli_exits_4_naming_the_missing_flow(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in org_settings(sandbox, flow_api_name="Nope_Flow").items():
        monkeypatch.setenv(f"CANCELKIT_SALESFORCE_{name.upper()}", value)
    example = str(EXAMPLES / "salesforce-flow.json")
    result = CliRunner().invoke(main, ["send", "-p", "salesforce-flow", example])
    assert result.exit_code == 4, result.output
    assert "Nope_Flow" in result.stderr
    assert "cancelkit salesforce flow-package" in result.stderr
    assert "Traceback" not in result.output


# -- 4. the client credentials flow needs the org's My Domain ------------------------------
GENERIC = ["https://login.salesforce.com", "https://test.salesforce.com",
           "https://LOGIN.Salesforce.com.", "https://login.salesforce.com:443/"]  # fmt: skip


def settings_of(**values: str) -> Any:
    client = Client(config={"salesforce": values}, env={})
    return client.settings("salesforce")


@pytest.mark.parametrize("url", GENERIC)
@pytest.mark.parametrize("setting", ["login_url", "instance_url"])
def test_a_generic_login_host_is_refused_naming_the_setting(setting: str, url: str) -> None:
    settings = settings_of(**{setting: url, "client_id": "id", "client_secret": "secret"})
    with pytest.raises(ConfigurationError) as raised:
        make_authenticator(settings, lambda: 0.0)
    message = str(raised.value)
    assert raised.value.exit_code == 4
    assert f"CANCELKIT_SALESFORCE_{setting.upper()}" in message
    assert "My Domain" in message and "invalid_grant" in message


def test_client_credentials_without_any_org_url_are_refused() -> None:
    settings = settings_of(client_id="id", client_secret="secret")
    with pytest.raises(ConfigurationError, match="needs CANCELKIT_SALESFORCE_LOGIN_URL"):
        make_authenticator(settings, lambda: 0.0)


@pytest.mark.parametrize(
    ("values", "token_url"),
    [
        ({"login_url": "https://acme.my.salesforce.com/"},
         "https://acme.my.salesforce.com/services/oauth2/token"),
        ({"instance_url": "https://acme--uat.sandbox.my.salesforce.com"},
         "https://acme--uat.sandbox.my.salesforce.com/services/oauth2/token"),
    ],
    ids=["login-url", "instance-url"],
)  # fmt: skip
def test_tokens_are_asked_of_the_my_domain(values: dict[str, str], token_url: str) -> None:
    settings = settings_of(**values, client_id="id", client_secret="secret")
    token = make_authenticator(settings, lambda: 0.0)
    assert isinstance(token, SalesforceToken)
    assert token.token_url == token_url


def test_an_access_token_does_not_need_a_login_host() -> None:
    settings = settings_of(
        access_token="00Dtoken", instance_url="https://acme.my.salesforce.com",
        login_url="https://login.salesforce.com",
    )  # fmt: skip
    assert not isinstance(make_authenticator(settings, lambda: 0.0), SalesforceToken)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_cli_refuses_a_generic_login_host_with_exit_4(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANCELKIT_SALESFORCE_CLIENT_ID", "live-client-id")
    monkeypatch.setenv("CANCELKIT_SALESFORCE_CLIENT_SECRET", "live-secret-0123456789")
    monkeypatch.setenv("CANCELKIT_SALESFORCE_LOGIN_URL", "https://login.salesforce.com")
    example = str(EXAMPLES / f"{platform}.json")
    result = CliRunner().invoke(main, ["send", "-p", platform, example])
    assert result.exit_code == 4, result.output
    assert "CANCELKIT_SALESFORCE_LOGIN_URL" in result.stderr
    assert "My Domain" in result.stderr
    assert "0123456789" not in result.output


def test_cassettes_ask_the_my_domain_for_tokens() -> None:
    for path in sorted((ROOT / "cassettes" / "salesforce").glob("*.yaml")):
        text = path.read_text()
        assert "login.salesforce.com" not in text, path.name
        assert "https://cancelkit-demo.my.salesforce.com/services/oauth2/token" in text, path.name


# -- 5. every result says the OrderItemSummaries are not cancelled ---------------------------
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    ("fault", "data", "outcome"),
    [
        (None, req(), "cancelled"),
        (None, req(FO, ("0a4xx00000000W0002", 5)), "rejected"),
        ("quota", req(), "rejected"),
        ("500", req(), "unknown"),
        ("reset", req(), "unknown"),
    ],
    ids=["cancelled", "refused", "rate-limited", "server-error", "no-answer"],
)
def test_every_result_says_the_order_item_summaries_stay(
    sandbox: Sandbox, platform: str, fault: str | None, data: dict[str, Any], outcome: str
) -> None:
    if fault:
        sandbox.inject(fault, "salesforce")
    with Client(config=sandbox.client_config(), env={}, sleep=lambda s: None) as client:
        result = client.send(data, platform)
    assert result.outcome == outcome
    assert ORDER_ITEM_SUMMARIES_WARNING in result.warnings
    assert "does not cancel the OrderItemSummaries" in ORDER_ITEM_SUMMARIES_WARNING
    assert result.details["order_item_summaries"]["cancelled"] is False
    assert "submit-cancel" in result.details["order_item_summaries"]["next"]


def test_the_cli_prints_the_warning(sandbox: Sandbox) -> None:
    example = str(EXAMPLES / "salesforce.json")
    result = CliRunner().invoke(main, ["send", "--sandbox", "-p", "salesforce", example])
    assert result.exit_code == 0, result.output
    assert "warning: salesforce: cancel-item" in result.output


# -- the command hook ---------------------------------------------------------------------
class _Raising:
    @hookimpl
    def cancelkit_register_commands(self, cli: click.Group) -> None:
        raise RuntimeError("broken plugin")


class _Hijacking:
    @hookimpl
    def cancelkit_register_commands(self, cli: click.Group) -> None:
        @click.command("send")
        def fake_send() -> None:
            """Not the real send."""

        cli.add_command(fake_send)

        @click.command("hello")
        def hello() -> None:
            """A plugin command."""

        cli.add_command(hello)


def test_plugin_commands_register_without_breaking_or_replacing_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = PluginRegistry(entry_points_to_load=())
    registry.register(_Raising(), "raising")
    registry.register(_Hijacking(), "hijacking")
    group = click.Group("cancelkit")
    real_send = click.Command("send")
    group.add_command(real_send)
    register_plugin_commands(registry, group)
    assert group.commands["send"] is real_send
    assert {"salesforce", "hello"} <= set(group.commands)
    err = capsys.readouterr().err
    assert "plugin raising could not add its commands: RuntimeError: broken plugin" in err
    assert "plugin hijacking may not replace the command send" in err


def test_help_and_builtin_commands_load_no_plugin() -> None:
    code = (
        "import sys\n"
        "from cancelkit.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('cancelkit.plugins')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "cancelkit salesforce --help" in out  # the epilog points at plugin commands
    assert out.strip().splitlines()[-1] == "[]"
