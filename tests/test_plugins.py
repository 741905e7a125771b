"""Plugins: entry-point loading, broken plugins, hook order and documentation."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cancelkit import PluginRegistry, hookimpl
from cancelkit.cli import main
from cancelkit.core import hookspecs
from cancelkit.core.client import Client
from cancelkit.core.errors import InvalidRequestError
from cancelkit.core.sandbox.server import Sandbox

TESTS = Path(__file__).parent


def install_dist(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    """Write a minimal installed distribution (dist-info) with cancelkit entry points."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[cancelkit.plugins]\n{lines}\n")


@pytest.fixture
def outside_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One working outside plugin (echo) and one that fails to import, as installed packages."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "echo_plugin.py").write_text((TESTS / "echo_plugin.py").read_text())
    (site / "broken_plugin.py").write_text("raise ImportError('needs libacme >= 2')\n")
    install_dist(site, "cancelkit_echo", {"echo": "echo_plugin"})
    install_dist(site, "cancelkit_broken", {"broken": "broken_plugin"})
    monkeypatch.syspath_prepend(str(site))


def test_builtin_platforms_load_through_entry_points() -> None:
    registry = PluginRegistry()
    assert "mirakl" in registry.platforms()
    assert any(p.source == "cancelkit.plugins.mirakl.plugin" for p in registry.loaded)


@pytest.mark.usefixtures("outside_plugins")
def test_a_broken_plugin_is_reported_and_the_others_keep_working(example: Any) -> None:
    registry = PluginRegistry()
    assert set(registry.platforms()) >= {"mirakl", "echo"}
    [broken] = registry.broken
    assert (broken.name, broken.source) == ("broken", "broken_plugin")
    assert broken.error == "ImportError: needs libacme >= 2"
    # Everything else still works.
    call = Client(registry=registry).translate(example("mirakl"), "mirakl")
    assert call.url.endswith("/cancel")


@pytest.mark.usefixtures("outside_plugins")
def test_cancelkit_platforms_shows_broken_plugins_and_why() -> None:
    result = CliRunner().invoke(main, ["platforms"])
    assert result.exit_code == 0, result.output
    assert "echo" in result.output and "mirakl" in result.output
    assert "BROKEN broken (broken_plugin): ImportError: needs libacme >= 2" in result.output
    as_json = json.loads(CliRunner().invoke(main, ["platforms", "--json"]).output)
    assert as_json["broken"] == [
        {"name": "broken", "source": "broken_plugin", "error": "ImportError: needs libacme >= 2"}
    ]
    plugins = {p["name"]: p["plugin"] for p in as_json["platforms"]}
    assert plugins["echo"] == "echo" and plugins["salesforce-flow"] == "salesforce"


def test_a_plugin_whose_hook_raises_is_reported() -> None:
    class Exploding:
        @hookimpl
        def cancelkit_platforms(self) -> list[Any]:
            raise RuntimeError("boom")

    registry = PluginRegistry()
    registry.register(Exploding(), "exploding")
    assert "mirakl" in registry.platforms()
    assert [(b.name, b.error) for b in registry.broken] == [("exploding", "RuntimeError: boom")]


def test_capabilities_are_data() -> None:
    caps = PluginRegistry().platform("mirakl").capabilities.to_dict()
    assert caps["mode"] == "async"
    assert caps["fractional_quantity"] is False
    assert caps["resend_safe"] is False
    assert {"name": "client_secret", "secret": True, "default": None} in caps["settings"]
    assert "lines[].price" in caps["required_fields"]
    json.dumps(caps)  # JSON-ready


def test_every_hookspec_is_documented() -> None:
    registry = PluginRegistry()
    specs = [
        n
        for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
        if n.startswith("cancelkit_")
    ]
    assert len(specs) >= 8
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc, name
        firstresult = getattr(registry.hook, name).spec.opts["firstresult"]
        assert ("First result wins" in doc) == firstresult, name
        # Every parameter is documented by name (as datasette's test_docs checks).
        for parameter in inspect.signature(getattr(hookspecs, name)).parameters:
            assert f":param {parameter}:" in doc, (name, parameter)


# -- hooks in action, against the echo platform in the sandbox -----------------
@pytest.fixture
def echo_setup():
    import echo_plugin  # type: ignore[import-not-found]

    registry = PluginRegistry()
    registry.register(echo_plugin, "echo")
    with Sandbox(registry.emulators()) as box:
        yield registry, box, Client(registry=registry, config=box.client_config(), env={})


ECHO_REQUEST = {"order_id": "O-1", "lines": [{"line_id": "L1", "quantity": "0.5"}]}


@pytest.fixture(autouse=True)
def _tests_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def test_before_send_can_inject_headers_and_after_result_observes(echo_setup) -> None:
    registry, box, client = echo_setup
    seen: list[Any] = []

    class Observer:
        @hookimpl
        def cancelkit_before_send(self, call, adapter):
            assert call.headers["X-Api-Key"] == "***"  # observers never see secrets
            return {"X-Trace-Id": "trace-1"}

        @hookimpl
        def cancelkit_after_result(self, result, call, adapter):
            seen.append((adapter.name, result.outcome, call.url))

    registry.register(Observer(), "observer")
    assert client.send(ECHO_REQUEST, "echo").outcome == "cancelled"
    [request] = box.emulators["echo"].seen
    assert request["headers"]["X-Trace-Id"] == "trace-1"
    assert request["headers"]["X-Api-Key"] == "echo-key"
    assert seen == [("echo", "cancelled", f"{box.base_url('echo')}/cancel/O-1")]


def test_translate_can_be_taken_over_with_tryfirst(echo_setup) -> None:
    registry, _, client = echo_setup

    class Override:
        @hookimpl(tryfirst=True)
        def cancelkit_translate(self, request, adapter, settings):
            call = adapter.translate(request, settings)
            return type(call)(call.method, call.url + "-v2", call.headers, call.body)

    registry.register(Override(), "override")
    assert client.translate(ECHO_REQUEST, "echo").url.endswith("/cancel/O-1-v2")


def test_prepare_request_can_refuse_or_enrich(echo_setup) -> None:
    registry, box, client = echo_setup

    class Policy:
        @hookimpl
        def cancelkit_prepare_request(self, request, adapter):
            if request.order_id == "FROZEN":
                raise InvalidRequestError("order_id: frozen by policy")
            from dataclasses import replace

            return replace(request, order_id=request.order_id + "-checked")

    registry.register(Policy(), "policy")
    assert client.translate(ECHO_REQUEST, "echo").url.endswith("/cancel/O-1-checked")
    with pytest.raises(InvalidRequestError, match="frozen by policy"):
        client.send({**ECHO_REQUEST, "order_id": "FROZEN"}, "echo")
    assert box.emulators["echo"].seen == []  # refused before anything was sent


def test_fractional_quantity_passes_where_the_platform_takes_it(echo_setup) -> None:
    _, _, client = echo_setup
    assert client.send(ECHO_REQUEST, "echo").lines[0].quantity == 0.5


def test_a_normaliser_that_raises_after_sending_gives_unknown_not_a_crash(echo_setup) -> None:
    registry, box, client = echo_setup

    class Buggy:
        @hookimpl(tryfirst=True)
        def cancelkit_normalise(self, request, response, adapter):
            raise KeyError("surprise")

    registry.register(Buggy(), "buggy")
    result = client.send(ECHO_REQUEST, "echo")
    assert result.outcome == "unknown"
    assert "KeyError" in result.message and "NOT resent" in result.message
    assert len(box.emulators["echo"].seen) == 1  # sent once, not lost, not resent
