"""cancelkit.testing: its fixtures work, and its conformance tests fail when a property breaks.

A toy outside plugin (written as an author would, from ``cancelkit.plugin`` only)
and deliberately broken variants of it run through the conformance suite in one
in-process pytester run: the correct one passes everything, each broken one
fails the test that guards the property it breaks. The cassette checks are
broken on copies of the built-in cassettes.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_socket import SocketConnectBlockedError

from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.testing import ControlledClock, loopback_only, record_cassette
from cancelkit.testing.clock import EPOCH
from cancelkit.testing.recording import Replayer

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
#: Bounds a hung child pytest; nothing depends on how long it takes.
HANG_GUARD = 300

# -- the toy plugin and its broken variants ---------------------------------------------
TOYSHOP = '''
"""Toyshop: an outside plugin as an author writes one (cancelkit.plugin only)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from cancelkit.plugin import (
    MASK, CancelResult, Capabilities, ConfigurationError, Contract, Emulator,
    EmuResponse, HttpCall, PlatformAdapter, Setting, StaticHeaders, hookimpl, join_url,
    ResultError, lines_with_status, rejected_result,
)

CONTRACT = Contract({
    "type": "object",
    "required": ["lines"],
    "additionalProperties": False,
    "properties": {
        "reason": {"enum": ["customer", "stock"]},
        "lines": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "qty"], "additionalProperties": False,
            "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
        }},
    },
})
EXAMPLE = {
    "order_id": "O-1",
    "reason": "CUSTOMER_REQUEST",
    "lines": [{"line_id": "L-1", "quantity": 1}],
}


class ToyAdapter(PlatformAdapter):
    name = "toyshop"
    title = "Toyshop"
    capabilities = Capabilities(
        mode="sync",
        fractional_quantity=False,
        reasons={"CUSTOMER_REQUEST": "customer", "OUT_OF_STOCK": "stock"},
        required_fields=("order_id",),
        settings=(
            Setting("base_url", "API base URL", "https://toyshop.invalid", kind="url"),
            Setting("api_key", "API key", secret=True),
            Setting("timeout", "read timeout", kind="seconds"),
        ),
    )

    def url(self, request, settings):
        return join_url(settings["base_url"], "orders", request.order_id, "cancel")

    def headers(self, settings):
        return {"X-Api-Key": MASK, "Content-Type": "application/json"}

    def body(self, request):
        body: dict[str, Any] = {
            "lines": [{"id": l.line_id, "qty": int(l.quantity)} for l in request.lines]
        }
        reason = self.reason_value(request, None)
        if reason:
            body["reason"] = reason
        return body

    def translate(self, request, settings):
        return HttpCall("POST", self.url(request, settings), self.headers(settings),
                        self.body(request))

    def normalise(self, request, response):
        body = response.json()
        if response.status == 200 and isinstance(body, dict) and body.get("status") == "done":
            return CancelResult(self.name, "cancelled", lines_with_status(request, "cancelled"),
                                http_status=200)
        message = str(body.get("error")) if isinstance(body, dict) else f"HTTP {response.status}"
        return rejected_result(self.name, request, (ResultError(message),), response.status)

    def authenticator(self, settings, clock):
        return StaticHeaders({"X-Api-Key": settings.require("api_key")})


class Unencoded(ToyAdapter):
    def url(self, request, settings):  # the id pasted in, not one encoded segment
        return f"{settings['base_url']}/orders/{request.order_id}/cancel"


class SecretInHeader(ToyAdapter):
    def headers(self, settings):
        return {"X-Api-Key": settings["api_key"], "Content-Type": "application/json"}


class SecretInError(ToyAdapter):
    def authenticator(self, settings, clock):
        key = settings.require("api_key")
        if not key.startswith("sandbox-"):
            raise ConfigurationError(f"toyshop: {key!r} is not a toyshop key")
        return super().authenticator(settings, clock)


class SecretInLog(ToyAdapter):
    def authenticator(self, settings, clock):
        logging.getLogger("toyshop").debug("using key %s", settings["api_key"])
        return super().authenticator(settings, clock)


class ReasonDropped(ToyAdapter):
    def body(self, request):
        body = super().body(request)
        body.pop("reason", None)
        return body


class NormaliseRaises(ToyAdapter):
    def normalise(self, request, response):
        if response.json()["status"] == "done":
            return super().normalise(request, response)
        return super().normalise(request, response)


class BreaksContract(ToyAdapter):
    def body(self, request):
        body = super().body(request)
        body["lines"][0]["qty"] = str(body["lines"][0]["qty"])
        return body


class ReadsAnythingAsCancelled(ToyAdapter):
    def answer_is_readable(self, response):
        return True

    def normalise(self, request, response):
        if 200 <= response.status < 300:
            return CancelResult(self.name, "cancelled", lines_with_status(request, "cancelled"))
        return super().normalise(request, response)


class ToyEmulator(Emulator):
    platform = "toyshop"
    production_bases: ClassVar[dict[str, str]] = {"orders": "https://toyshop.invalid/orders"}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.cancelled: list[str] = []

    def handle(self, request):
        if request.header("X-Api-Key") != "sandbox-key":
            return EmuResponse.json(401, {"error": "bad key"})
        match request.segments:
            case ("orders", order_id, "cancel") if request.method == "POST":
                try:
                    body = request.json()
                except ValueError:
                    return EmuResponse.json(400, {"error": "not JSON"})
                if not CONTRACT.conforms(body):
                    return EmuResponse.json(400, {"error": "breaks the contract"})
                if order_id != "O-1":
                    return EmuResponse.json(404, {"error": "no such order"})
                self.cancelled.append(order_id)
                return EmuResponse.json(200, {"status": "done"})
        return EmuResponse.json(404, {"error": "no such route"})

    def client_settings(self, base_url):
        return {"base_url": base_url, "api_key": "sandbox-key"}

    def dump_state(self):
        return {"cancelled": self.cancelled}

    def load_state(self, state):
        self.cancelled = list(state["cancelled"])


@hookimpl
def cancelkit_platforms():
    return [ToyAdapter()]


@hookimpl
def cancelkit_sandbox_emulators():
    return [ToyEmulator()]


@hookimpl
def cancelkit_examples():
    return {"toyshop": EXAMPLE}
'''

#: Variant class -> the conformance test that must fail for it.
BROKEN = {
    "Unencoded": "test_every_path_id_arrives_as_one_segment",
    "SecretInHeader": "test_no_secret_in_any_rendering",
    "SecretInError": "test_no_secret_in_any_rendering",
    "SecretInLog": "test_no_secret_leaves_a_send",
    "ReasonDropped": "test_every_reason_is_mapped_or_refused",
    "NormaliseRaises": "test_normalise_never_raises",
    "BreaksContract": "test_examples_translate_and_meet_the_contract",
    "ReadsAnythingAsCancelled": "test_fault_gives_the_contract_outcome[empty 2xx]",
}

CONFORMANCE = '''
import toyshop
from cancelkit.testing import PlatformConformance


class TestToyshop(PlatformConformance):
    """The correct plugin, named by its module: everything comes from its hooks."""

    platform = "toyshop"
    plugin = toyshop
    contract = toyshop.CONTRACT
    max_examples = 25

'''
VARIANT = """
class Test{name}(PlatformConformance):
    adapter = toyshop.{name}()
    emulator = toyshop.ToyEmulator
    examples = [toyshop.EXAMPLE]
    contract = toyshop.CONTRACT
    max_examples = 25

"""


def _outcomes(junit: Path) -> dict[str, str]:
    """``Class::test`` -> passed, failed or skipped, from a JUnit XML report."""
    import xml.etree.ElementTree as ET

    found = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        found[name] = {"failure": "failed", "error": "failed"}.get(outcome, outcome)
    return found


def test_conformance_tests_fail_exactly_where_a_property_breaks(pytester: pytest.Pytester) -> None:
    """The correct plugin passes the whole suite; each broken variant fails the test
    that guards the property it breaks (which the correct one passes).

    A subprocess: an in-process run would unload the modules it imported (requests,
    vcrpy) from under the rest of this session.
    """
    pytester.makepyfile(toyshop=TOYSHOP)
    variants = "".join(VARIANT.format(name=name) for name in BROKEN)
    pytester.makepyfile(test_toyshop_conformance=CONFORMANCE + variants)
    module = "test_toyshop_conformance.py"
    # The correct plugin runs everything; each variant only the test that guards it.
    chosen = [f"{module}::TestToyshop", *(f"{module}::Test{v}::{g}" for v, g in BROKEN.items())]
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--junitxml=report.xml", *chosen, timeout=HANG_GUARD
    )
    outcomes = _outcomes(pytester.path / "report.xml")
    correct = {k: v for k, v in outcomes.items() if k.startswith("TestToyshop::")}
    assert len(correct) >= 25, result.stdout.str()  # the whole suite, every fault row
    skipped = sorted(k for k, v in correct.items() if v == "skipped")
    assert skipped == [  # no status call, no cassettes
        "TestToyshop::test_cassette_replays_to_its_outcome[NOTSET]",
        "TestToyshop::test_every_scenario_has_a_cassette",
        "TestToyshop::test_no_cassette_holds_a_secret",
        "TestToyshop::test_normalise_status_never_raises",
    ], skipped
    assert {v for k, v in correct.items() if k not in skipped} == {"passed"}, result.stdout.str()
    wrong = [
        f"{variant}: {guard} {outcomes.get(f'Test{variant}::{guard}')}"
        for variant, guard in BROKEN.items()
        if outcomes.get(f"Test{variant}::{guard}") != "failed"
        or correct.get(f"TestToyshop::{guard}") != "passed"
    ]
    assert not wrong, wrong


# -- cassette checks on broken copies of the built-in cassettes -----------------------------
def _conformance_on(folder: Path) -> Any:
    """The Mirakl conformance class, reading its cassettes from ``folder``."""
    from test_conformance import TestMiraklConformance

    return type("TestCopy", (TestMiraklConformance,), {"cassettes": folder})()


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    shutil.copytree(CASSETTES / "mirakl", tmp_path / "mirakl")
    return tmp_path


def _harness(suite: Any) -> Any:
    from cancelkit.testing.harness import Harness

    return Harness(suite.subject())


@pytest.mark.parametrize(
    ("clean", "leaked"),
    [
        ('"access_token":"***"', '"access_token":"sbx-mirakl-token-1"'),
        ("client_secret=%2A%2A%2A", "client_secret=sandbox-client-secret"),
    ],
    ids=["issued-token", "client-secret"],
)
def test_a_secret_in_a_cassette_fails_the_check(copied: Path, clean: str, leaked: str) -> None:
    suite = _conformance_on(copied)
    harness = _harness(suite)
    try:
        suite.test_no_cassette_holds_a_secret(harness)  # the copy as it is: clean
        path = copied / "mirakl" / "accepted.yaml"
        assert clean in path.read_text()
        path.write_text(path.read_text().replace(clean, leaked))
        with pytest.raises(AssertionError, match=r"accepted\.yaml"):
            suite.test_no_cassette_holds_a_secret(harness)
    finally:
        harness.close()


@pytest.mark.parametrize(
    "leak",
    [
        "      authorization:\n      - Bearer eyJhbGciOi.live\n",
        "      x-api-key:\n      - live-key-0123456789\n",
        "      authorization:\n      - Basic bGl2ZTpzZWNyZXQ=\n",
        'string: \'{"access_token":"eyJhbGciOi"}\'',
        "body: grant_type=client_credentials&client_id=a&client_secret=b",
        "      X-Token:\n      - sbx-mirakl-token-7\n",
        "body: api_key=sandbox-aboutyou-api-key",
    ],
)
def test_the_cassette_check_catches_a_credential_in_any_form(leak: str) -> None:
    from cancelkit.testing.leaks import cassette_patterns

    patterns = cassette_patterns(["sandbox-aboutyou-api-key"], ["sbx-mirakl-token-"])
    assert any(p.search(leak) for p in patterns)
    masked = "      authorization:\n      - '***'\n" + 'string: \'{"access_token":"***"}\''
    assert not any(p.search(masked) for p in patterns)


def test_an_orphaned_or_missing_cassette_fails_the_check(copied: Path) -> None:
    suite = _conformance_on(copied)
    suite.test_every_scenario_has_a_cassette()
    (copied / "mirakl" / "accepted.yaml").rename(copied / "mirakl" / "renamed.yaml")
    with pytest.raises(AssertionError, match=r"accepted\.yaml"):
        suite.test_every_scenario_has_a_cassette()


def test_a_cassette_that_no_longer_replays_fails_the_check(copied: Path) -> None:
    from vcr.errors import CannotOverwriteExistingCassetteException

    suite = _conformance_on(copied)
    scenario = next(s for s in suite.subject().scenarios if s.name == "accepted")
    suite.test_cassette_replays_to_its_outcome(None, scenario)
    path = copied / "mirakl" / "accepted.yaml"
    path.write_text(path.read_text().replace("0024_COMMERCIAL_ID-A", "0024_OTHER_ORDER"))
    with pytest.raises(CannotOverwriteExistingCassetteException):
        suite.test_cassette_replays_to_its_outcome(None, scenario)


# -- the fixtures ----------------------------------------------------------------------
def test_the_clock_moves_only_when_told(cancelkit_clock: ControlledClock) -> None:
    assert cancelkit_clock() == EPOCH
    cancelkit_clock.advance(5)
    cancelkit_clock.sleep(2.5)
    assert cancelkit_clock() == EPOCH + 7.5
    assert cancelkit_clock.sleeps == [2.5]
    with pytest.raises(ValueError, match="forward"):
        cancelkit_clock.advance(-1)


@pytest.fixture
def authors_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An author's shell: real-looking settings that must not reach a sandbox test."""
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://miraklconnect.com/api")
    monkeypatch.setenv("CANCELKIT_MIRAKL_ACCESS_TOKEN", "authors-real-token-0123")


def test_the_sandbox_client_sends_and_waits_on_the_controlled_clock(
    authors_environment: None,
    cancelkit_sandbox: Sandbox,
    cancelkit_client: Client,
    cancelkit_clock: ControlledClock,
    example: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    import os

    left = {name: value for name, value in os.environ.items() if name.startswith("CANCELKIT_")}
    # None of the author's; only a ledger under the test's tmp_path, whatever the OS.
    assert list(left) == ["CANCELKIT_LEDGER_URL"], left
    assert left["CANCELKIT_LEDGER_URL"].startswith(f"sqlite:///{tmp_path}")
    assert cancelkit_client.settings("mirakl")["base_url"].startswith(cancelkit_sandbox.url)
    accepted = cancelkit_client.send(example("mirakl"), "mirakl")
    assert accepted.outcome == "accepted"
    final = cancelkit_client.wait(accepted)
    assert final.outcome == "cancelled"  # the action finished: time passed on the clock
    assert cancelkit_clock() > EPOCH and cancelkit_clock.sleeps
    assert cancelkit_sandbox.now() >= cancelkit_clock()
    # The send is in the sandbox's own ledger, not the author's.
    assert cancelkit_client.ledger is not None
    assert cancelkit_sandbox.ledger_url.startswith("sqlite:///")


@pytest.fixture
def cancelkit_emulators() -> list[Any]:
    """Overridden: only Mirakl's emulator."""
    from cancelkit.plugins.mirakl.emulator import MiraklEmulator

    return [MiraklEmulator()]


def test_the_emulators_fixture_can_be_overridden(cancelkit_sandbox: Sandbox) -> None:
    assert list(cancelkit_sandbox.emulators) == ["mirakl"]


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_loopback_only_refuses_a_non_loopback_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proved against a stand-in for the real connect, so no packet can leave."""
    reached: list[Any] = []

    def stand_in(self: socket.socket, address: Any) -> None:
        reached.append(address)
        raise ConnectionRefusedError("stand-in")

    monkeypatch.setattr(socket.socket, "connect", stand_in)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    assert reached == [("203.0.113.7", 443)]  # without the guard, the connect is made
    with loopback_only():
        with pytest.raises(SocketConnectBlockedError):
            socket.create_connection(("203.0.113.7", 443), timeout=1)
        with pytest.raises(SocketConnectBlockedError):
            socket.create_connection(("2001:db8::1", 443), timeout=1)
        with socket.create_server(("127.0.0.1", 0)) as server:  # loopback still works
            socket.create_connection(server.getsockname()[:2], timeout=1).close()
    assert reached == [("203.0.113.7", 443)]
    with pytest.raises(ConnectionRefusedError):  # the guard before it is back
        socket.create_connection(("203.0.113.7", 443), timeout=1)


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_replay_answers_from_cassettes_only(cancelkit_replay: Replayer) -> None:
    from cancelkit.core.cassettes import scenarios

    mirakl = [s for s in scenarios(cancelkit_replay.registry()) if s.platform == "mirakl"]
    accepted = next(s for s in mirakl if s.name == "accepted")
    assert cancelkit_replay(accepted, CASSETTES) == "accepted"
    with pytest.raises(SocketConnectBlockedError):  # the fixture blocked the network
        socket.create_connection(("203.0.113.7", 443), timeout=1)


def test_a_recorded_cassette_is_secret_free_and_replays(
    tmp_path: Path,
    cancelkit_sandbox: Sandbox,
    cancelkit_client: Client,
    cancelkit_replay: Replayer,
    example: Callable[[str], dict[str, Any]],
) -> None:
    """record_cassette as against a real account (the sandbox standing in for it)."""
    path = tmp_path / "live" / "mirakl.yaml"
    emulator = cancelkit_sandbox.emulators["mirakl"]
    base = cancelkit_sandbox.base_url("mirakl")
    rewrites = {f"{base}/{k}": v for k, v in emulator.production_bases.items()}
    with record_cassette(path, cancelkit_client, rewrites=rewrites):
        assert cancelkit_client.send(example("mirakl"), "mirakl").outcome == "accepted"
    text = path.read_text()
    assert "https://miraklconnect.com/api/v2/orders/" in text and "127.0.0.1" not in text
    for secret in [*emulator.client_settings("x").values(), "sbx-mirakl-token"]:
        if "secret" in secret or "token" in secret:
            assert secret not in text
    with cancelkit_replay.cassette(path) as client:
        assert client.send(example("mirakl"), "mirakl").outcome == "accepted"


def test_the_plugin_module_imports_nothing_heavy() -> None:
    """pytest loads it in every run: no sandbox, requests, vcrpy or hypothesis."""
    import subprocess
    import sys

    probe = "import json, sys, cancelkit.testing.plugin; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(jsonutil.loads(done.stdout.strip().splitlines()[-1]))
    heavy = {"requests", "vcr", "hypothesis", "cancelkit.core.sandbox.server", "jsonschema"}
    assert not heavy & loaded, heavy & loaded


def test_the_matrix_prints_each_fault_of_a_platform(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m cancelkit.testing.matrix aboutyou``: every row the emulator takes."""
    from cancelkit.plugins.aboutyou.emulator import AboutYouEmulator
    from cancelkit.testing.faults import cases_for
    from cancelkit.testing.matrix import main

    assert main(["aboutyou"]) == 0
    shown = capsys.readouterr().out
    rows = cases_for(tuple(AboutYouEmulator.faults))
    assert f"{len(rows)} of {len(rows)} cells as the contract says" in shown
    assert "| 500 | accepted, exit 0, 2 sent |" in shown  # About You deduplicates a resend
