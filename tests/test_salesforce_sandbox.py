"""Salesforce against the sandbox: the emulated org's rules, auth, both plugins."""

from __future__ import annotations

from typing import Any

import pytest

import cancelkit
from cancelkit.core.client import Client
from cancelkit.errors import AuthenticationError, ConfigurationError
from cancelkit.plugins.salesforce.emulator import SANDBOX_CLIENT_SECRET

PLATFORMS = ["salesforce", "salesforce-flow"]


def req(fo: str, *lines: tuple[str, Any]) -> dict[str, Any]:
    return {
        "fulfillment_order_id": fo,
        "lines": [{"line_id": line_id, "quantity": qty} for line_id, qty in lines],
    }


def lines_of(sandbox, fo: str) -> dict[str, float]:
    org = sandbox.emulators["salesforce"].fulfillment_orders[fo]
    return {line_id: line["Quantity"] for line_id, line in org["lines"].items()}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_cancel_lowers_quantity(sandbox, sandbox_client, platform: str) -> None:
    result = sandbox_client.send(req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1)), platform)
    assert result.outcome == "cancelled"
    assert result.details["limit_info"] == {"api-usage": "1/100000"}
    assert lines_of(sandbox, "0a3xx0000000085AAA") == {
        "0a4xx00000000W0001": 2.0,
        "0a4xx00000000W0002": 2.0,
    }


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fractional_quantity(sandbox, sandbox_client, platform: str) -> None:
    result = sandbox_client.send(
        req("0a3xx0000000088AAA", ("0a4xx00000000W0005", "0.75")), platform
    )
    assert result.outcome == "cancelled"
    assert lines_of(sandbox, "0a3xx0000000088AAA") == {"0a4xx00000000W0005": 1.75}


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (req("0a3xx0000000085AAA", ("0a4xx00000000W0002", 3)), "INVALID_QUANTITY"),
        (req("0a3xx0000000085AAA", ("0a4xx00000000W0003", 1)), "INVALID_ID_FIELD"),
        (req("0a3xx0000000086AAA", ("0a4xx00000000W0003", 1)), "INVALID_STATUS"),
        (req("0a3xx0000000087AAA", ("0a4xx00000000W0004", 1)), "INVALID_STATUS"),
        (req("0a3xx0000000999AAA", ("0a4xx00000000W0001", 1)), "NOT_FOUND"),
    ],
    ids=["more-than-remains", "other-fo-line", "closed-fo", "cancelled-fo", "unknown-fo"],
)
def test_refusals_cancel_nothing(sandbox, sandbox_client, platform, request_, code) -> None:
    before = sandbox.emulators["salesforce"].dump_state()["fulfillment_orders"]
    result = sandbox_client.send(request_, platform)
    assert result.outcome == "rejected"
    assert result.errors[0].code == code
    assert sandbox.emulators["salesforce"].dump_state()["fulfillment_orders"] == before


def test_one_bad_line_cancels_none_of_the_others(sandbox, sandbox_client) -> None:
    data = req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1), ("0a4xx00000000W0002", 9))
    assert sandbox_client.send(data, "salesforce").outcome == "rejected"
    assert lines_of(sandbox, "0a3xx0000000085AAA")["0a4xx00000000W0001"] == 3.0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_expired_token_is_refreshed_once(sandbox, sandbox_client, platform: str) -> None:
    sandbox.inject("401", "salesforce")
    result = sandbox_client.send(req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1)), platform)
    assert result.outcome == "cancelled"
    assert len(sandbox.emulators["salesforce"].tokens) == 2


def test_access_token_with_instance_url(sandbox) -> None:
    warm = Client(config=sandbox.client_config(), env={})
    warm.send(req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1)), "salesforce")
    [token] = sandbox.emulators["salesforce"].tokens
    client = Client(
        config={
            "salesforce": {
                "access_token": token,
                "instance_url": f"{sandbox.base_url('salesforce')}/instance",
            }
        },
        env={},
    )
    assert (
        client.send(req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1)), "salesforce").outcome
        == "cancelled"
    )


def test_access_token_without_instance_url_is_a_configuration_error() -> None:
    client = Client(config={"salesforce": {"access_token": "x"}}, env={})
    with pytest.raises(ConfigurationError, match="needs CANCELKIT_SALESFORCE_INSTANCE_URL"):
        client.send(req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1)), "salesforce")


def test_wrong_client_secret_is_an_auth_error_without_the_secret(sandbox) -> None:
    config = sandbox.client_config()
    config["salesforce"]["client_secret"] = "wrong-secret-value-0123456789"
    with pytest.raises(AuthenticationError) as caught:
        Client(config=config, env={}).send(
            req("0a3xx0000000085AAA", ("0a4xx00000000W0001", 1)), "salesforce"
        )
    assert "invalid_client" in str(caught.value)
    assert "0123456789" not in str(caught.value)
    assert SANDBOX_CLIENT_SECRET not in str(caught.value)


def test_both_plugins_share_one_org_configuration(monkeypatch) -> None:
    monkeypatch.setenv("CANCELKIT_SALESFORCE_INSTANCE_URL", "https://shared.my.salesforce.com")
    client = cancelkit.Client()
    assert client.settings("salesforce")["instance_url"] == "https://shared.my.salesforce.com"
    assert client.settings("salesforce-flow")["instance_url"] == "https://shared.my.salesforce.com"
