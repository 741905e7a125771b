"""Plugins: built-ins and entry points, broken plugins, packaging, hook order and documentation."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cancelkit import PluginRegistry, hookimpl
from cancelkit.cli import main
from cancelkit.core import cassettes, hookspecs, registry
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import InvalidRequestError

TESTS = Path(__file__).parent
ROOT = TESTS.parent


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


# -- built-ins cannot be lost ---------------------------------------------------
def test_builtin_platforms_register_in_process_without_any_entry_point() -> None:
    plugins = PluginRegistry(entry_points_to_load=())
    assert [(p.name, p.source) for p in plugins.loaded] == [
        (module.split(".")[-2], module) for module in registry.BUILTIN_PLUGINS
    ]
    assert set(plugins.platforms()) == {
        "aboutyou",
        "carriyo",
        "mirakl",
        "salesforce",
        "salesforce-flow",
    }
    assert plugins.broken == []


def test_every_plugin_folder_is_a_builtin() -> None:
    folders = {
        f"cancelkit.plugins.{p.parent.name}.plugin" for p in ROOT.glob("plugins/*/plugin.py")
    }
    assert set(registry.BUILTIN_PLUGINS) == folders


def test_entry_points_an_older_install_left_do_not_register_a_builtin_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {
        "mirakl": "cancelkit.plugins.mirakl.plugin",
        "carriyo": "cancelkit.plugins.carriyo.plugin",
    }
    install_dist(tmp_path, "cancelkit_old", old)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = PluginRegistry()
    assert plugins.broken == []
    builtin = ["aboutyou", "carriyo", "mirakl", "salesforce"]
    # An outside plugin installed beside cancelkit (CI installs cancelkit-walmart) may load too.
    names = [p.name for p in plugins.loaded if p.name in builtin]
    assert sorted(names) == sorted(set(names)) == builtin


def test_a_builtin_that_fails_to_import_is_reported_and_the_others_keep_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = "cancelkit.plugins.gone.plugin"
    monkeypatch.setattr(registry, "BUILTIN_PLUGINS", (*registry.BUILTIN_PLUGINS, gone))
    result = CliRunner().invoke(main, ["platforms", "--json"])
    assert result.exit_code == 0, result.output
    as_json = json.loads(result.output)
    assert as_json["broken"] == [
        {
            "name": "gone",
            "source": gone,
            "error": "ModuleNotFoundError: No module named 'cancelkit.plugins.gone'",
        }
    ]
    assert "mirakl" in {p["name"] for p in as_json["platforms"]}


def _setup_py() -> Any:
    pytest.importorskip("setuptools")  # in every venv up to Python 3.11; else .ci/run checks
    spec = importlib.util.spec_from_file_location("cancelkit_setup", ROOT / "setup.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines packages(); builds nothing outside __main__
    return module


def test_the_wheel_takes_every_package_of_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    here = {
        ".".join(("cancelkit", *init.parent.relative_to(ROOT).parts))
        for top in ("core", "plugins", "commands", "testing", "scaffold", "cluster")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(_setup_py().packages()) == {"cancelkit", *here}


def test_a_new_plugin_folder_ships_without_editing_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("", "core", "plugins", "plugins/acme", "tests", "tests/x", "benchmarks"):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "plugins" / "acme" / "data").mkdir()  # not a package: data
    monkeypatch.chdir(tmp_path)
    assert sorted(_setup_py().packages()) == [
        "cancelkit",
        "cancelkit.core",
        "cancelkit.plugins",
        "cancelkit.plugins.acme",
    ]


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


#: An outside plugin that would break cancelkit's own cassette tests if they loaded it:
#: a story of its own (no cassette in cancelkit) and every translated body replaced.
HOSTILE_PLUGIN = """
import dataclasses

from cancelkit.plugin import Scenario, hookimpl


@hookimpl
def cancelkit_cassette_scenarios():
    return [Scenario("acme", "story", "an outside story", lambda ctx: None, "cancelled")]


@hookimpl(wrapper=True)
def cancelkit_translate():
    call = yield
    return dataclasses.replace(call, body={"totally": "different body"})
"""


def test_an_outside_plugin_leaves_cancelkits_own_cassette_tests_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acme_plugin.py").write_text(HOSTILE_PLUGIN)
    install_dist(tmp_path, "cancelkit_acme", {"acme": "acme_plugin"})
    monkeypatch.syspath_prepend(str(tmp_path))
    # Installed, it is loaded, and enumerating every installed plugin takes its story in...
    assert "acme/story.yaml" in {s.cassette for s in cassettes.scenarios(PluginRegistry())}
    # ...but cancelkit's own enumeration is exactly the committed cassettes, as before.
    own = cassettes.scenarios(cassettes.installed_plugins(builtin_only=True))
    on_disk = {str(p.relative_to(ROOT / "cassettes")) for p in ROOT.glob("cassettes/**/*.yaml")}
    assert sorted(s.cassette for s in own) == sorted(on_disk)
    # And cancelkit's cassette tests, run with the plugin installed, all pass (re-recording
    # left out for time: it uses the same built-in-only registry).
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/test_cassettes.py", "-k", "not rerecording"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


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


# -- hooks checked like pluggy and datasette do ------------------------------------
def test_a_misspelled_hook_is_reported_broken_with_a_suggestion() -> None:
    class Typo:
        @hookimpl
        def cancelkit_tranlsate(self, request, adapter, settings):  # the typo
            raise AssertionError("never called")

    registry = PluginRegistry(())
    registry.register(Typo(), "typo")
    [broken] = registry.broken
    assert broken.name == "typo"
    assert "unknown hook cancelkit_tranlsate (did you mean cancelkit_translate?)" in broken.error
    assert "typo" not in {p.name for p in registry.loaded}
    assert registry.platform("mirakl")  # the others keep working


def test_registration_hooks_go_through_pluggys_hook_caller(example: Any) -> None:
    # A hookwrapper sees cancelkit_platforms: it is called through pluggy, not around it.
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def cancelkit_platforms(self):
            seen.append("before")
            result = yield
            seen.append("after")
            return result

    registry = PluginRegistry(())
    registry.register(Wrapper(), "wrapper")
    assert {"mirakl", "salesforce"} <= set(registry.platforms())
    assert seen and seen.count("before") == seen.count("after")


def test_cancelkit_trace_plugins_traces_hook_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_TRACE_PLUGINS", "1")
    result = subprocess.run(
        [sys.executable, "-m", "cancelkit.cli", "translate", "-p", "mirakl",
         str(ROOT / "examples" / "mirakl.json")],
        capture_output=True, text=True, env={**os.environ, "CANCELKIT_TRACE_PLUGINS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cancelkit_translate [hook]" in result.stderr
    assert "cancelkit_platforms [hook]" in result.stderr


def test_builtin_plugins_import_only_the_public_plugin_module() -> None:
    import ast

    offenders = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
                if node.level > 1:  # relative, reaching out of the plugin's own folder
                    offenders.append(f"{path.relative_to(ROOT)}: from {'.' * node.level}...")
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.startswith("cancelkit") and name != "cancelkit.plugin"
            ]
    assert offenders == []
