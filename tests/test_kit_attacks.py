"""Attacks on the plugin author kit, as a careless outside author would make them.

Each attack is a small broken variant of the toy outside plugin of
``test_testing_plugin`` (written from ``cancelkit.plugin`` only), run through the
conformance suite in-process, or a careless use of ``cancelkit plugin new`` and of
the fixtures. Fourteen of them were bugs when written (a Basic credential built in
``translate``, a key not declared secret, an id checked by a prefix match, an
emulator that accepts anything...), each marked ``xfail(strict=True)`` until fixed;
all are fixed now and every attack here must fail against the kit.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import inspect
import json
import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_socket import SocketConnectBlockedError
from test_testing_plugin import TOYSHOP

from cancelkit.cli import main
from cancelkit.plugin import (
    BEARER,
    CancelResult,
    Contract,
    EmuResponse,
    FieldError,
    HttpCall,
    Setting,
    join_url,
    json_headers,
    lines_with_status,
)
from cancelkit.testing import PlatformConformance, loopback_only
from cancelkit.testing.faults import cases_for
from cancelkit.testing.harness import Harness
from cancelkit.testing.plugin import isolate

ROOT = Path(__file__).resolve().parent.parent


# -- the toy plugin, and running its conformance checks in-process ----------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The toy outside plugin of test_testing_plugin, imported from its own file."""
    path = tmp_path_factory.mktemp("toy") / "kit_attacks_toyshop.py"
    path.write_text(TOYSHOP)
    spec = importlib.util.spec_from_file_location("kit_attacks_toyshop", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the suite's own ``conformance_isolated`` fixture does."""
    from cancelkit.core.ratelimit import reset_all

    isolate(monkeypatch, tmp_path)
    reset_all()


def conformance(toy: ModuleType, adapter: Any = None, emulator: Any = None, **attrs: Any) -> Any:
    """An instance of a conformance class for the toy (or a variant of it)."""
    namespace = {
        "adapter": adapter if adapter is not None else toy.ToyAdapter(),
        "emulator": emulator or toy.ToyEmulator,
        "examples": [toy.EXAMPLE],
        "contract": toy.CONTRACT,
        "max_examples": 5,
        **attrs,
    }
    return type("TestAttacked", (PlatformConformance,), namespace)()


def check(suite: Any, name: str, caplog: Any = None, param: Any = None) -> tuple[str, str]:
    """Run one conformance test as pytest would: (passed|failed|skipped|error, message)."""
    method = getattr(suite, name)
    harness = None
    arguments = []
    for parameter in inspect.signature(method).parameters:
        if parameter == "conformance_harness":
            harness = Harness(suite.subject())
            arguments.append(harness)
        elif parameter == "caplog":
            arguments.append(caplog)
        elif parameter == "conformance_isolated":
            arguments.append(None)  # the caller's `isolated` fixture did it
        else:
            arguments.append(param)
    try:
        method(*arguments)
    except AssertionError as error:
        return "failed", str(error)
    except pytest.skip.Exception as skipped:
        return "skipped", str(skipped)
    except Exception as error:  # pytest reports it as a failure as well
        return "error", f"{type(error).__name__}: {error}"
    finally:
        if harness is not None:
            harness.close()
    return "passed", ""


def whole_suite(suite: Any, caplog: Any) -> dict[str, str]:
    """Every test of the suite (cassette checks aside: no cassettes) -> its outcome."""
    found = {}
    for name in sorted(n for n in dir(suite) if n.startswith("test_")):
        if name == "test_fault_gives_the_contract_outcome":
            for case in cases_for(tuple(suite.subject().emulator().faults)):
                found[f"{name}[{case.name}]"] = check(suite, name, caplog, case)[0]
        elif name != "test_cassette_replays_to_its_outcome":
            found[name] = check(suite, name, caplog)[0]
    return found


# -- secrets ------------------------------------------------------------------------------
def test_a_secret_in_the_url_query_or_the_body_fails_the_rendering_check(
    toy: ModuleType, isolated: None
) -> None:
    class SecretInQuery(toy.ToyAdapter):
        def url(self, request: Any, settings: Any) -> str:
            return f"{super().url(request, settings)}?key={settings['api_key']}"

    class SecretInBody(toy.ToyAdapter):
        def body(self, request: Any) -> Any:
            return {**super().body(request), "key": self._key}

        def translate(self, request: Any, settings: Any) -> Any:
            self._key = settings["api_key"]
            return super().translate(request, settings)

    for variant in (SecretInQuery, SecretInBody):
        outcome, message = check(conformance(toy, variant()), "test_no_secret_in_any_rendering")
        assert (outcome, "CANARY-api_key" in message) == ("failed", True), (variant, message)


def test_a_secret_in_a_result_is_masked_before_the_author_sees_it(
    toy: ModuleType, isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An adapter that stashes the key and puts it in a result's message, details and
    warnings: the client masks it, so the send check passes and nothing shows."""

    class Stash(toy.ToyAdapter):
        def translate(self, request: Any, settings: Any) -> Any:
            self._key = settings["api_key"]
            return super().translate(request, settings)

        def normalise(self, request: Any, response: Any) -> Any:
            result = super().normalise(request, response)
            return dataclasses.replace(
                result,
                message=f"used {self._key}",
                details={"key": self._key},
                warnings=(f"key {self._key}",),
            )

    suite = conformance(toy, Stash())
    assert check(suite, "test_no_secret_leaves_a_send", caplog) == ("passed", "")
    with suite.subject().client(
        suite.subject().config_at("http://127.0.0.1:9", api_key="live-secret-0123")
    ) as client:
        client.translate(suite.subject().example(), "toyshop")
        assert "live-secret-0123" not in repr(client.settings("toyshop"))


def test_basic_credentials_built_in_translate_fail_the_secret_checks(
    toy: ModuleType, isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    class BasicInTranslate(toy.ToyAdapter):
        def headers(self, settings: Any) -> dict[str, str]:
            pair = base64.b64encode(f"toyshop:{settings['api_key']}".encode()).decode()
            return {**super().headers(settings), "Authorization": f"Basic {pair}"}

    suite = conformance(toy, BasicInTranslate())
    # The leak is real: the call translate returns decodes to the key; what
    # `cancelkit translate` prints masks the credential header by name.
    subject = suite.subject()
    with subject.client(subject.config_at("http://127.0.0.1:9", api_key="live-key-0123")) as c:
        from cancelkit.core.http import render

        call = c.translate(subject.example(), "toyshop")
    pair = re.search(r"Basic ([A-Za-z0-9+/=]+)", str(call.to_dict()))
    assert pair and b"live-key-0123" in base64.b64decode(pair.group(1))
    for fmt in ("json", "curl", "http"):
        shown = render(call, fmt)
        assert "Basic ***" in shown and pair.group(1) not in shown, shown
    outcomes = {
        name: check(suite, name, caplog)[0]
        for name in ("test_no_secret_in_any_rendering", "test_no_secret_leaves_a_send")
    }
    assert "failed" in outcomes.values(), outcomes


def test_a_credential_setting_not_marked_secret_fails_the_suite(
    toy: ModuleType, isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    class NotSecret(toy.ToyAdapter):
        capabilities = dataclasses.replace(
            toy.ToyAdapter.capabilities,
            settings=tuple(
                Setting(s.name, s.description, kind=s.kind) if s.name == "api_key" else s
                for s in toy.ToyAdapter.capabilities.settings
            ),
        )

        def translate(self, request: Any, settings: Any) -> Any:
            logging.getLogger("toyshop").debug("key %s", settings["api_key"])
            return super().translate(request, settings)

    suite = conformance(toy, NotSecret())
    subject = suite.subject()
    with subject.client(subject.config_at("http://127.0.0.1:9", api_key="live-key-0123")) as c:
        assert "live-key-0123" in repr(c.settings("toyshop"))  # the leak is real
    outcomes = {
        name: check(suite, name, caplog)
        for name in ("test_no_secret_in_any_rendering", "test_no_secret_leaves_a_send")
    }
    assert "failed" in [outcome for outcome, _ in outcomes.values()], outcomes
    outcome, message = outcomes["test_no_secret_leaves_a_send"]
    assert outcome == "failed", message
    assert "setting 'api_key' is sent as a credential (header X-Api-Key)" in message, message


# -- ids in the URL -----------------------------------------------------------------------
def test_an_id_pasted_into_a_query_string_fails_the_wire_check(
    toy: ModuleType, isolated: None
) -> None:
    class LineInQuery(toy.ToyAdapter):
        def url(self, request: Any, settings: Any) -> str:
            return f"{super().url(request, settings)}?line={request.lines[0].line_id}"

    outcome, message = check(
        conformance(toy, LineInQuery()), "test_every_path_id_arrives_as_one_segment"
    )
    assert outcome == "failed" and "examples[0].lines[0].line_id" in message, message


def test_a_tracking_id_pasted_into_the_status_path_fails_the_wire_check(isolated: None) -> None:
    from cancelkit.plugins.mirakl.adapter import MiraklConnectAdapter
    from cancelkit.plugins.mirakl.emulator import MiraklEmulator

    class StatusUnencoded(MiraklConnectAdapter):
        def status_call(self, tracking_id: str, settings: Any) -> HttpCall:
            url = f"{settings['base_url']}/v2/orders/actions/{tracking_id}"
            return HttpCall("GET", url, json_headers(BEARER, body=False))

    suite = type(
        "TestStatus",
        (PlatformConformance,),
        {
            "adapter": StatusUnencoded(),
            "emulator": MiraklEmulator,
            "examples": [json.loads((ROOT / "examples" / "mirakl.json").read_text())],
            "contract": Contract.packaged(
                "cancelkit.plugins.mirakl", "contracts/mirakl-connect.schema.json"
            ),
        },
    )()
    outcome, message = check(suite, "test_every_path_id_arrives_as_one_segment")
    assert outcome == "failed" and "tracking_id = 'a/b'" in message, message


def test_an_id_checked_with_a_prefix_match_still_meets_hostile_ids(
    toy: ModuleType, isolated: None
) -> None:
    class LooseDigits(toy.ToyAdapter):
        def problems(self, request: Any) -> list[FieldError]:
            found: list[FieldError] = super().problems(request)
            if request.order_id and not re.match(r"[0-9]+", request.order_id):
                found.append(FieldError("order_id", "an order id is a number"))
            return found

        def url(self, request: Any, settings: Any) -> str:
            return f"{settings['base_url']}/orders/{request.order_id}/cancel"

    numbered = {**toy.EXAMPLE, "order_id": "1001"}
    # Given ids that pass the prefix match, the check sees the escape at once.
    told = conformance(toy, LooseDigits(), examples=[numbered], hostile_ids=["7391846205#"])
    outcome, message = check(told, "test_every_path_id_arrives_as_one_segment")
    assert outcome == "failed" and "3 path segments instead of 4" in message, message
    # With its own hostile ids, the suite must find it too.
    suite = conformance(toy, LooseDigits(), examples=[numbered])
    assert check(suite, "test_every_path_id_arrives_as_one_segment")[0] == "failed"


def test_an_id_in_the_call_after_a_lookup_is_checked(toy: ModuleType, isolated: None) -> None:
    class LookupThenPasted(toy.ToyAdapter):
        def lookup_call(self, request: Any, settings: Any) -> HttpCall:
            url = join_url(settings["base_url"], "orders", request.order_id)
            return HttpCall("GET", url, {"Accept": "application/json"})

        def complete(self, request: Any, answer: Any) -> Any:
            return request

        def url(self, request: Any, settings: Any) -> str:
            return f"{settings['base_url']}/orders/{request.order_id}/cancel"

    class WithOrders(toy.ToyEmulator):
        def handle(self, request: Any) -> Any:
            if request.method == "GET" and request.segments[:1] == ("orders",):
                if request.header("X-Api-Key") != "sandbox-key":
                    return EmuResponse.json(401, {"error": "bad key"})
                if request.segments != ("orders", "O-1"):
                    return EmuResponse.json(404, {"error": "no such order"})
                return EmuResponse.json(200, {"id": "O-1"})
            return super().handle(request)

    adapter = LookupThenPasted()
    suite = conformance(toy, adapter, WithOrders)
    assert check(suite, "test_the_example_reaches_its_outcome_in_the_sandbox")[0] == "passed"
    # The cancel call itself does not keep an id with "/" in one segment.
    with suite.subject().offline_client() as client:
        request = client.prepare({**toy.EXAMPLE, "order_id": "ORD/7"}, "toyshop")
        url = adapter.translate(request, client.settings("toyshop")).url
    assert url.endswith("/orders/ORD/7/cancel")
    assert check(suite, "test_every_path_id_arrives_as_one_segment")[0] == "failed"


# -- reasons and readings -----------------------------------------------------------------
def test_every_mapped_reason_meets_the_contract(toy: ModuleType, isolated: None) -> None:
    class Typo(toy.ToyAdapter):
        capabilities = dataclasses.replace(
            toy.ToyAdapter.capabilities,
            reasons={"CUSTOMER_REQUEST": "customer", "OUT_OF_STOCK": "out-of-stock"},
        )

    assert not toy.CONTRACT.conforms({"reason": "out-of-stock", "lines": [{"id": "L", "qty": 1}]})
    suite = conformance(toy, Typo())
    outcomes = {
        name: check(suite, name)[0]
        for name in (
            "test_every_reason_is_mapped_or_refused",
            "test_examples_translate_and_meet_the_contract",
        )
    }
    assert "failed" in outcomes.values(), outcomes


def test_a_normaliser_reading_an_error_as_cancelled_fails_the_suite(
    toy: ModuleType, isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    class ErrorIsCancelled(toy.ToyAdapter):
        def normalise(self, request: Any, response: Any) -> Any:
            cancelled = lines_with_status(request, "cancelled")
            return CancelResult(self.name, "cancelled", cancelled, http_status=response.status)

    suite = conformance(toy, ErrorIsCancelled())
    harness = Harness(suite.subject())
    try:
        with suite.subject().client(harness.box.client_config(), harness.clock) as client:
            result = client.send({**toy.EXAMPLE, "order_id": "NO-SUCH-ORDER"}, "toyshop")
    finally:
        harness.close()
    assert (result.outcome, result.http_status) == ("cancelled", 404)  # obviously wrong
    outcomes = whole_suite(suite, caplog)
    assert "failed" in outcomes.values() or "error" in outcomes.values(), outcomes


def test_an_emulator_that_accepts_anything_fails_the_suite(
    toy: ModuleType, isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    class AcceptsAnything(toy.ToyEmulator):
        def handle(self, request: Any) -> Any:
            if request.method == "POST":
                return EmuResponse.json(200, {"status": "done"})
            return super().handle(request)

    class BreaksContract(toy.ToyAdapter):
        def body(self, request: Any) -> Any:
            return {**super().body(request), "undocumented": True}

    careless = conformance(toy, BreaksContract(), AcceptsAnything)
    outcome, message = check(careless, "test_examples_translate_and_meet_the_contract")
    assert outcome == "failed" and "undocumented" in message, message
    outcomes = whole_suite(conformance(toy, emulator=AcceptsAnything), caplog)
    assert "failed" in outcomes.values() or "error" in outcomes.values(), outcomes


# -- cassettes ----------------------------------------------------------------------------
def test_camel_case_credentials_are_masked_and_caught() -> None:
    from cancelkit.core.cassettes import scrub_body
    from cancelkit.testing.leaks import cassette_patterns

    answer = '{"accessToken":"live-a-0123","refreshToken":"live-r-0123","expiresIn":3600}'
    assert "live-r-0123" not in scrub_body(answer)
    text = f"    body:\n      string: '{answer}'\n"
    assert any(p.search(text) for p in cassette_patterns([], []))
    # Other spellings, and a token with an escaped quote in it, are masked whole.
    answer = '{"id-token":"live-i-\\"0123","clientSecret":"live-c-0123","apiKey":"live-k-0123"}'
    assert scrub_body(answer) == '{"id-token":"***","clientSecret":"***","apiKey":"***"}'
    assert scrub_body("grant_type=password&Client-Secret=live-c-0123") == (
        "grant_type=password&Client-Secret=%2A%2A%2A"
    )
    for masked in ('{"id-token":"***"}', "refreshToken=%2A%2A%2A"):
        assert not any(p.search(masked) for p in cassette_patterns([], [])), masked
    for unmasked in ('{"clientSecret":"live-c-0123"}', "refresh-token=live-r-0123"):
        assert any(p.search(unmasked) for p in cassette_patterns([], [])), unmasked


# -- plugin new ---------------------------------------------------------------------------
def new(*args: str) -> Any:
    return CliRunner().invoke(main, ["plugin", "new", *args])


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cancelkit plugin new kitattack``, once for the module."""
    folder = tmp_path_factory.mktemp("generated")
    result = new("kitattack", "--dir", str(folder))
    assert result.exit_code == 0, result.output
    return folder / "cancelkit-kitattack"


def test_editing_the_placeholder_contract_fails_the_suite_naming_the_field(
    generated: Path, isolated: None, tmp_path: Path
) -> None:
    """The author replaces the placeholder by a schema that no longer takes the
    adapter's reason code: the examples check fails and says which field."""
    import shutil

    package = tmp_path / "package"
    shutil.copytree(generated, package)
    schema = package / "cancelkit_kitattack" / "contracts" / "kitattack.schema.json"
    published = json.loads(schema.read_text())
    published["properties"]["reason"]["enum"].remove("CUSTOMER_CHANGED_MIND")
    schema.write_text(json.dumps(published))
    sys.path.insert(0, str(package))
    try:
        plugin = importlib.import_module("cancelkit_kitattack.plugin")
        suite = type(
            "TestEdited",
            (PlatformConformance,),
            {
                "platform": "kitattack",
                "plugin": plugin,
                "contract": Contract.packaged("cancelkit_kitattack", "contracts/" + schema.name),
            },
        )()
        outcome, message = check(suite, "test_examples_translate_and_meet_the_contract")
        assert outcome == "failed", message
        assert "examples[0]: reason:" in message, message
        assert check(suite, "test_the_example_reaches_its_outcome_in_the_sandbox")[0] in (
            "failed",
            "error",
        )
    finally:
        sys.path.remove(str(package))
        for name in [m for m in sys.modules if m.split(".")[0] == "cancelkit_kitattack"]:
            del sys.modules[name]


def test_plugin_new_conformance_keeps_the_conformance_suite(tmp_path: Path) -> None:
    result = new("conformance", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    tests = tmp_path / "cancelkit-conformance" / "tests"
    text = "".join(p.read_text() for p in tests.glob("*.py"))
    assert "(PlatformConformance)" in text
    assert "def test_the_example_cancels_its_line_in_the_sandbox" in text


def test_two_generated_packages_share_no_test_module_name(generated: Path, tmp_path: Path) -> None:
    assert new("kitother", "--dir", str(tmp_path)).exit_code == 0
    mine = {p.name for p in (generated / "tests").glob("test_*.py")}
    other = {p.name for p in (tmp_path / "cancelkit-kitother" / "tests").glob("test_*.py")}
    assert not mine & other, mine & other


def test_the_package_folder_has_the_umasks_permissions(generated: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    assert generated.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (generated / "tests").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_dir_below_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = new("kitfile", "--dir", str(tmp_path / "afile" / "sub"))
    assert "internal error" not in result.output, result.output
    assert result.exit_code == 2 and "--dir" in result.output, result.output


# -- the fixtures -------------------------------------------------------------------------
def test_the_pytest_plugin_adds_only_opt_in_fixtures() -> None:
    """An unrelated project's run gets no hook and no autouse fixture from cancelkit."""
    from cancelkit.testing import plugin

    assert [name for name in vars(plugin) if name.startswith("pytest_")] == []
    markers = {
        name: getattr(value, "_fixture_function_marker", None)
        for name, value in vars(plugin).items()
    }
    fixtures = {name: marker for name, marker in markers.items() if marker is not None}
    assert fixtures and all(name.startswith("cancelkit_") for name in fixtures), fixtures
    assert not [name for name, marker in fixtures.items() if marker.autouse]


def test_a_sandbox_client_never_reaches_a_host_an_emulator_names(toy: ModuleType) -> None:
    """A careless emulator pointing the adapter at production: the sandbox client refuses."""
    from cancelkit.core.client import Client
    from cancelkit.core.sandbox.server import Sandbox
    from cancelkit.errors import ConfigurationError
    from cancelkit.testing.subject import registry_of

    class PointsAtProduction(toy.ToyEmulator):
        def client_settings(self, base_url: str) -> dict[str, str]:
            return {**super().client_settings(base_url), "base_url": "https://203.0.113.7"}

    emulator = PointsAtProduction()
    with (
        Sandbox([emulator]) as box,
        Client(registry=registry_of(toy), config=box.client_config()) as client,
        pytest.raises(ConfigurationError, match="sandbox mode refuses"),
    ):
        client.send(toy.EXAMPLE, "toyshop")


def test_isolate_keeps_the_default_ledger_out_on_windows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import platformdirs
    import platformdirs.windows

    from cancelkit.core.ledger.location import ledger_url

    # platformdirs' own Windows code, with the folder Windows would report.
    monkeypatch.setattr(platformdirs.windows, "get_win_folder", lambda name: "C:/Users/me/AppData")

    def windows_data_dir(*args: Any, **kwargs: Any) -> str:
        return platformdirs.windows.Windows(*args, **kwargs).user_data_dir

    monkeypatch.setattr(platformdirs, "user_data_dir", windows_data_dir)
    isolate(monkeypatch, tmp_path)
    assert str(tmp_path) in ledger_url(env=os.environ)


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_loopback_only_also_guards_connect_ex(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proved against a stand-in for the real connect_ex, so no packet can leave."""
    reached: list[Any] = []

    def stand_in(self: socket.socket, address: Any) -> int:
        reached.append(address)
        return 111  # ECONNREFUSED

    monkeypatch.setattr(socket.socket, "connect_ex", stand_in)
    with loopback_only(), socket.socket() as sock, pytest.raises(SocketConnectBlockedError):
        sock.connect_ex(("203.0.113.7", 443))
    assert reached == []
