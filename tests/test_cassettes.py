"""Cassettes: replayed offline (record mode none), reproducible, and able to fail.

That every scenario replays to its outcome and no cassette holds a secret is checked
per platform by the conformance suite (tests/test_conformance.py); here, the
recorder's own rules: production URLs, body matching, scrubbing, reproducibility.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import socket
from collections.abc import Callable, Generator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_socket import SocketConnectBlockedError
from vcr.errors import CannotOverwriteExistingCassetteException

from cancelkit import hookimpl
from cancelkit.core import cassettes
from cancelkit.core.http import HttpCall

ROOT = Path(__file__).resolve().parent.parent
CASSETTE_DIR = ROOT / "cassettes"
# cancelkit's own cassettes: the built-in platforms only, whatever else is installed.
BUILTINS = cassettes.installed_plugins(builtin_only=True)
SCENARIOS = cassettes.scenarios(BUILTINS)


def _scenario(platform: str, name: str) -> cassettes.Scenario:
    return next(s for s in SCENARIOS if (s.platform, s.name) == (platform, name))


def test_every_scenario_has_a_cassette_and_no_cassette_is_orphaned() -> None:
    on_disk = {str(p.relative_to(CASSETTE_DIR)) for p in CASSETTE_DIR.rglob("*.yaml")}
    assert on_disk == {s.cassette for s in SCENARIOS}


def test_replayed_calls_use_production_urls() -> None:
    text = (CASSETTE_DIR / "mirakl" / "action_success.yaml").read_text()
    uris = re.findall(r"uri: (\S+)", text)
    assert uris[0] == "https://auth.mirakl.net/oauth/token"
    assert uris[1] == "https://miraklconnect.com/api/v2/orders/0024_COMMERCIAL_ID-A/cancel"
    assert all(u.startswith("https://") for u in uris)
    assert "127.0.0.1" not in text


def test_odd_order_id_stays_one_segment_in_the_recording() -> None:
    text = (CASSETTE_DIR / "mirakl" / "odd_order_id.yaml").read_text()
    assert "uri: https://miraklconnect.com/api/v2/orders/ODD%2FID%3F%231/cancel" in text


def test_server_error_was_sent_exactly_once() -> None:
    text = (CASSETTE_DIR / "mirakl" / "server_error_unknown.yaml").read_text()
    assert text.count("/cancel\n") == 1


def test_a_request_missing_from_the_cassette_fails_rather_than_going_out() -> None:
    scenario = _scenario("mirakl", "accepted")
    other = cassettes.Scenario(
        "mirakl",
        "accepted",
        "sends a second time",
        lambda ctx: (ctx.client.send(_request(), "mirakl"), ctx.client.send(_request(), "mirakl"))[
            1
        ],
        "accepted",
    )
    assert scenario.cassette == other.cassette
    with pytest.raises(CannotOverwriteExistingCassetteException):
        cassettes.replay(other, CASSETTE_DIR, builtin_only=True)


class ChangedTranslation:
    """Takes over translate's result (a wrapper: independent of the hook's parameter names)."""

    def __init__(self, change: Callable[[Any], Any]) -> None:
        self.change = change

    @hookimpl(wrapper=True)
    def cancelkit_translate(self) -> Generator[None, HttpCall, HttpCall]:
        call = yield
        return dataclasses.replace(call, body=self.change(copy.deepcopy(call.body)))


def _price_as(amount: str) -> Callable[[Any], Any]:
    def change(body: Any) -> Any:
        body["cancelations"][0]["price"]["amount"] = Decimal(amount)
        return body

    return change


@pytest.mark.parametrize(
    "change",
    [lambda body: {"totally": "different body"}, _price_as("15.0")],
    ids=["different-body", "15.00-becomes-15.0"],
)
def test_a_translation_that_changes_fails_its_cassette(change: Callable[[Any], Any]) -> None:
    accepted = _scenario("mirakl", "accepted")
    changed = dataclasses.replace(accepted, plugins=(*accepted.plugins, ChangedTranslation(change)))
    with pytest.raises(CannotOverwriteExistingCassetteException, match="match_body differs"):
        cassettes.replay(changed, CASSETTE_DIR, builtin_only=True)
    # Same URL, same method: only the body tells them apart. Unchanged, it replays.
    same = ChangedTranslation(lambda body: body)
    unchanged = dataclasses.replace(accepted, plugins=(*accepted.plugins, same))
    assert cassettes.replay(unchanged, CASSETTE_DIR, builtin_only=True) == "accepted"


@pytest.mark.parametrize(
    ("live", "recorded"),
    [
        (b'{"b":[{"x":15.00}],"a":1}', '{ "a": 1, "b": [ {"x": 15.00} ] }'),  # order, spacing
        (
            b"grant_type=client_credentials&client_id=%2A%2A%2A",
            "client_id=***&grant_type=client_credentials",
        ),
        (None, b""),
    ],
)
def test_bodies_that_mean_the_same_match(live: Any, recorded: Any) -> None:
    assert cassettes.canonical_body(live) == cassettes.canonical_body(recorded)


@pytest.mark.parametrize(
    ("live", "recorded"),
    [
        ('{"amount": 15.0}', '{"amount": 15.00}'),  # decimals are compared exactly
        ('{"quantity": true}', '{"quantity": 1}'),
        ('{"quantity": "1"}', '{"quantity": 1}'),
        ('{"lines": ["b", "a"]}', '{"lines": ["a", "b"]}'),  # list order matters
        ("grant_type=client_credentials", "grant_type=password"),
        ("", "{}"),
    ],
)
def test_bodies_that_differ_do_not_match(live: str, recorded: str) -> None:
    assert cassettes.canonical_body(live) != cassettes.canonical_body(recorded)


def _request() -> dict:
    from cancelkit.plugins.mirakl.scenarios import request

    return request()


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_the_network_is_blocked_in_tests() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with pytest.raises(SocketConnectBlockedError):
        requests.get("http://203.0.113.7/", timeout=1)


def test_scrub_body_masks_form_and_json_secrets() -> None:
    form = b"grant_type=client_credentials&client_id=abc&client_secret=xyz"
    assert cassettes.scrub_body(form) == (
        b"grant_type=client_credentials&client_id=%2A%2A%2A&client_secret=%2A%2A%2A"
    )
    assert cassettes.scrub_body('{"access_token": "eyJabc", "expires_in": 3599}') == (
        '{"access_token": "***", "expires_in": 3599}'
    )


def test_rerecording_reproduces_the_committed_cassettes(tmp_path: Path) -> None:
    """Records every scenario again from the sandbox (loopback only) and compares."""
    cassettes.record_all(tmp_path, builtin_only=True)
    for scenario in SCENARIOS:
        fresh = (tmp_path / scenario.cassette).read_text()
        assert fresh == (CASSETTE_DIR / scenario.cassette).read_text(), scenario.cassette
