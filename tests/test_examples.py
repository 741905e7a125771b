"""Examples ship inside the package (``cancelkit example PLATFORM``), the ``--help``
examples work with them, and ``-p`` completes the installed platform names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.examples import EXAMPLE_SUFFIX, packaged_examples
from cancelkit.core.hookspecs import hookimpl
from cancelkit.core.registry import PluginRegistry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
#: Every installed platform: what the command line lists and completes.
PLATFORMS = sorted(PluginRegistry().platforms())
#: The built-in platforms, whose examples ship in plugins/ (an outside plugin installed
#: beside cancelkit, such as examples/plugins/cancelkit-walmart in CI, ships its own).
BUILTIN = sorted(PluginRegistry(entry_points_to_load=()).platforms())
#: Bounds a hung child; nothing depends on how long anything takes.
HANG_GUARD = 120


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def packaged_file(platform: str) -> Path:
    """``plugins/<folder>/<platform>.example.json``: where the example ships."""
    [path] = ROOT.glob(f"plugins/*/{platform}{EXAMPLE_SUFFIX}")
    return path


# -- cancelkit example -----------------------------------------------------------
def test_every_installed_platform_has_an_example_listed() -> None:
    listed = run("example")
    assert listed.exit_code == 0, listed.output
    assert listed.output.split() == PLATFORMS


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_example_is_valid_for_its_platform(platform: str) -> None:
    printed = run("example", platform)
    assert printed.exit_code == 0, printed.output
    request = jsonutil.loads(printed.output)
    Client(env={}).prepare(request, platform)  # raises InvalidRequestError if not
    checked = run("validate", "-p", platform, "-", stdin=printed.output)
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_example_piped_into_send_sandbox_cancels(platform: str) -> None:
    printed = run("example", platform).output
    sent = run("send", "--sandbox", "-p", platform, "-", "--wait", stdin=printed)
    assert sent.exit_code == 0, sent.output
    assert f"cancelled  {platform}" in sent.stdout


def test_money_is_printed_exactly() -> None:
    assert '"price": "15.00"' in run("example", "mirakl").output


def test_an_unknown_platform_or_one_without_an_example_is_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unknown = run("example", "nope")
    assert unknown.exit_code == 2
    assert "unknown platform 'nope'" in unknown.output
    monkeypatch.setattr(PluginRegistry, "examples", lambda self: {})
    missing = run("example", "mirakl")
    assert missing.exit_code == 2
    assert "mirakl ships no example request" in missing.output


# -- the repository's examples/ are the packaged ones ---------------------------
@pytest.mark.parametrize("platform", BUILTIN)
def test_examples_folder_holds_the_packaged_example_byte_for_byte(platform: str) -> None:
    """examples/<platform>.json (for the repository's docs and tests) is the same file."""
    shipped = packaged_file(platform).read_bytes()
    assert (ROOT / "examples" / f"{platform}.json").read_bytes() == shipped
    assert PluginRegistry().examples()[platform] == jsonutil.loads(shipped)


def test_the_examples_are_package_data_and_nothing_else_is() -> None:
    """setuptools globs each package-data pattern in each package's own folder."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    for platform in BUILTIN:
        path = packaged_file(platform)
        assert any(path in path.parent.glob(pattern) for pattern in patterns), path
    # "*" applies to the root package too (the repository root): none of its files,
    # examples/ least of all, may match there.
    assert [p for pattern in patterns for p in ROOT.glob(pattern)] == []


def test_examples_load_from_an_installed_package_without_the_examples_folder(
    tmp_path: Path,
) -> None:
    """What a wheel holds: the package without examples/; ``cancelkit example`` still works."""
    import shutil

    site = tmp_path / "site"
    ignore = shutil.ignore_patterns(
        "examples", "tests", "benchmarks", "cassettes", "build", ".*", "*.egg-info", "__pycache__"
    )
    shutil.copytree(ROOT, site / "cancelkit", ignore=ignore)
    assert not (site / "cancelkit" / "examples").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", "import cancelkit.cli, sys; print(cancelkit.cli.__file__, "
         "file=sys.stderr); cancelkit.cli.main()", "example", "aboutyou"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(str(site))  # the copy, not the checkout
    assert json.loads(done.stdout) == json.loads(packaged_file("aboutyou").read_text())


# -- the hook ----------------------------------------------------------------------
class _OutsidePlugin:
    """An outside plugin giving mirakl another example (registered last: it wins)."""

    @hookimpl
    def cancelkit_examples(self) -> dict[str, Any]:
        return {"mirakl": {"order_id": "OTHER", "lines": [{"line_id": "L", "quantity": 1}]}}


class _RaisingPlugin:
    @hookimpl
    def cancelkit_examples(self) -> dict[str, Any]:
        raise RuntimeError("no examples today")


class _WrongShapePlugin:
    @hookimpl
    def cancelkit_examples(self) -> Any:
        return {"mirakl": ["not", "a", "request"]}


def test_an_outside_plugin_provides_or_replaces_examples() -> None:
    registry = PluginRegistry()
    registry.register(_OutsidePlugin(), "outside")
    examples = registry.examples()
    assert examples["mirakl"]["order_id"] == "OTHER"
    assert examples["carriyo"] == packaged_examples("cancelkit.plugins.carriyo")["carriyo"]


@pytest.mark.parametrize("plugin", [_RaisingPlugin(), _WrongShapePlugin()])
def test_a_broken_examples_hook_is_reported_and_the_others_still_work(plugin: object) -> None:
    registry = PluginRegistry()
    registry.register(plugin, "broken-examples")
    examples = registry.examples()
    assert set(examples) == set(PLATFORMS)  # the built-in ones, untouched
    assert [b.name for b in registry.broken] == ["broken-examples"]


def test_packaged_examples_needs_a_package() -> None:
    with pytest.raises(ValueError, match="__package__"):
        packaged_examples(None)


# -- the --help examples -----------------------------------------------------------
def _help_pipelines() -> list[str]:
    """Every ``cancelkit example ... | cancelkit ...`` line in the commands' --help."""
    found = []
    for command in ([], ["validate"], ["translate"], ["send"], ["example"]):
        shown = run(*command, "--help").output
        found += [line.strip() for line in shown.splitlines() if "cancelkit example" in line
                  and "|" in line]  # fmt: skip
    return found


def test_the_help_examples_use_the_shipped_examples() -> None:
    pipelines = _help_pipelines()
    assert any("cancelkit send --sandbox -p mirakl -" in p for p in pipelines), pipelines
    assert any("cancelkit translate -p mirakl -" in p for p in pipelines), pipelines
    assert any("cancelkit validate -p mirakl -" in p for p in pipelines), pipelines
    for command in ([], ["validate"], ["translate"], ["send"]):
        assert "examples/" not in run(*command, "--help").output, command


def test_the_help_examples_run_as_printed(tmp_path: Path) -> None:
    """Each pipeline, run by a shell from a directory without examples/."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    for pipeline in sorted(set(_help_pipelines())):
        assert re.fullmatch(r"[\w .|-]+", pipeline), pipeline  # plain words: safe to run
        done = subprocess.run(
            ["sh", "-c", "set -e; " + pipeline], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
        assert done.returncode == 0, (pipeline, done.stdout, done.stderr)
        assert done.stdout, pipeline


# -- shell completion ----------------------------------------------------------------
def _complete(args: list[str], incomplete: str) -> list[str]:
    completion = ShellComplete(main, {}, "cancelkit", "_CANCELKIT_COMPLETE")
    return [item.value for item in completion.get_completions(args, incomplete)]


@pytest.mark.parametrize("command", ["send", "translate", "status", "validate"])
def test_dash_p_completes_the_installed_platforms(command: str) -> None:
    assert _complete([command, "-p"], "") == PLATFORMS
    assert _complete([command, "--platform"], "sales") == ["salesforce", "salesforce-flow"]


def test_example_completes_the_platforms_too() -> None:
    assert _complete(["example"], "m") == ["mirakl"]


def test_completion_through_the_installed_script() -> None:
    """What bash gets, from the ``eval "$(_CANCELKIT_COMPLETE=bash_source cancelkit)"`` script."""
    script = Path(sys.executable).parent / "cancelkit"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cancelkit.cli"]
    env = {**os.environ, "_CANCELKIT_COMPLETE": "bash_complete",
           "COMP_WORDS": "cancelkit send -p ", "COMP_CWORD": "3"}  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"plain,{p}" for p in PLATFORMS]
    source = subprocess.run(
        command, env={**os.environ, "_CANCELKIT_COMPLETE": "bash_source"},
        capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    assert "complete -o nosort -F" in source.stdout


def test_help_loads_no_plugin_and_completion_is_documented() -> None:
    probe = (
        "import json, sys\nfrom cancelkit.cli import main\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=HANG_GUARD)  # fmt: skip
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert not [m for m in loaded if m.startswith(("cancelkit.plugins", "cancelkit.core.registry"))]
    assert 'eval "$(_CANCELKIT_COMPLETE=bash_source cancelkit)"' in done.stdout
