"""``cancelkit cassettes record|check``: every installed plugin's scenarios, from the shell."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cancelkit import PluginRegistry
from cancelkit.cli import main

TESTS = Path(__file__).parent
ROOT = TESTS.parent
CARRIYO = sorted(p.name for p in (ROOT / "cassettes" / "carriyo").glob("*.yaml"))

#: An outside plugin's scenarios, over the model outside plugin (echo_plugin.py): one
#: that ends as declared, one that declares the wrong outcome, one that raises an
#: error quoting the credential its client was configured with.
STORIES = """
from cancelkit.plugin import Scenario, hookimpl

REQUEST = {"order_id": "A-1", "lines": [{"line_id": "l-1", "quantity": 1}]}


def send(ctx):
    return ctx.client.send(REQUEST, "echo")


def leak(ctx):
    ctx.client.send(REQUEST, "echo")
    raise RuntimeError("the platform said: key echo-key refused")


@hookimpl
def cancelkit_cassette_scenarios():
    return [
        Scenario("echo", "fine", "ends as declared", send, "cancelled"),
        Scenario("echo", "wrong", "declares another outcome", send, "rejected"),
        Scenario("echo", "leak", "raises with the secret", leak, "cancelled"),
    ]
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["cassettes", *args])


@pytest.fixture
def outside_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The echo plugin and its stories, installed as a package (a dist-info entry point)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "echo_plugin.py").write_text((TESTS / "echo_plugin.py").read_text())
    (site / "echo_stories.py").write_text(STORIES)
    info = site / "cancelkit_echo-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cancelkit-echo\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[cancelkit.plugins]\necho = echo_plugin\necho_stories = echo_stories\n"
    )
    monkeypatch.syspath_prepend(str(site))


def test_record_writes_each_cassette_and_reports_its_outcome(tmp_path: Path) -> None:
    out = tmp_path / "recorded"
    result = run("record", "carriyo", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "carriyo").glob("*.yaml")) == CARRIYO
    assert list(out.iterdir()) == [out / "carriyo"]  # the other platforms left alone
    lines = result.output.splitlines()
    assert f"recorded {out / 'carriyo' / 'full_success.yaml'}  cancelled" in lines
    assert f"recorded {out / 'carriyo' / 'unknown_order.yaml'}  rejected" in lines
    assert lines[-1] == f"{len(CARRIYO)} cassettes recorded in {out}"
    # The sandbox credentials the client used are in no cassette and not on the terminal.
    registry = PluginRegistry(entry_points_to_load=())
    [emulator] = [e for e in registry.emulators() if e.platform == "carriyo"]
    settings = emulator.client_settings("http://sandbox.invalid")
    secret = {s.name for s in registry.platform("carriyo").capabilities.settings if s.secret}
    values = [settings[name] for name in secret if name in settings]
    assert values  # the test checks something
    recorded = "".join(p.read_text() for p in (out / "carriyo").glob("*.yaml"))
    assert '"client_secret":"***"' in recorded
    for value in values:
        assert value not in recorded and value not in result.output


def test_check_reproduces_a_recording_and_finds_a_changed_or_missing_cassette(
    tmp_path: Path,
) -> None:
    assert run("record", "carriyo", "--out", str(tmp_path)).exit_code == 0
    result = run("check", "carriyo", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"{len(CARRIYO)} of {len(CARRIYO)} cassettes reproduced" in result.output
    # The committed cassettes are reproduced too: recording is deterministic.
    assert run("check", "carriyo", "--out", str(ROOT / "cassettes")).exit_code == 0

    changed = tmp_path / "carriyo" / "full_success.yaml"
    changed.write_text(changed.read_text().replace("FO-1001-1", "FO-9999-9"))
    (tmp_path / "carriyo" / "unknown_line.yaml").unlink()
    result = run("check", "carriyo", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert f"differs  {changed}  cancelled" in result.output
    assert f"missing  {tmp_path / 'carriyo' / 'unknown_line.yaml'}  rejected" in result.output
    assert f"{len(CARRIYO) - 2} of {len(CARRIYO)} cassettes reproduced" in result.output


def test_an_unknown_platform_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    result = run("record", "carriyo", "nosuch", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown platform 'nosuch'; platforms with scenarios: aboutyou, carriyo, mirakl" in (
        result.output
    )
    assert not tmp_path.joinpath("carriyo").exists()  # refused before recording anything
    # A platform with no scenarios is told apart from a misspelt one.
    result = run("check", "salesforce-flow", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "platform 'salesforce-flow' has no cassette scenarios" in result.output


@pytest.mark.usefixtures("outside_plugin")
def test_an_outside_plugins_scenarios_record_and_a_wrong_outcome_exits_1(
    tmp_path: Path,
) -> None:
    result = run("record", "echo", "--out", str(tmp_path))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert f"recorded {tmp_path / 'echo' / 'fine.yaml'}  cancelled" in lines
    assert (
        f"recorded {tmp_path / 'echo' / 'wrong.yaml'}  cancelled  "
        "NOT EXPECTED: the scenario declares rejected"
    ) in lines
    assert (
        lines[-1]
        == f"3 cassettes recorded in {tmp_path}; 2 scenario(s) did not end as they declare"
    )
    # The scenario that raised is reported, not a crash, and the others were recorded.
    assert "raised RuntimeError: the platform said: key *** refused" in result.output
    assert sorted(p.name for p in (tmp_path / "echo").glob("*.yaml")) == [
        "fine.yaml",
        "leak.yaml",
        "wrong.yaml",
    ]
    # Never a secret: not on the terminal, not in a cassette.
    assert "echo-key" not in result.output
    for path in (tmp_path / "echo").glob("*.yaml"):
        assert "echo-key" not in path.read_text()
        assert "x-api-key:\n      - '***'" in path.read_text().lower()


@pytest.mark.usefixtures("outside_plugin")
def test_a_broken_outside_plugin_is_named_when_its_platform_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-site"
    broken.mkdir()
    (broken / "broken_acme_module.py").write_text("raise ImportError('needs libacme >= 2')\n")
    info = broken / "cancelkit_acme-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cancelkit-acme\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cancelkit.plugins]\nacme = broken_acme_module\n")
    monkeypatch.syspath_prepend(str(broken))
    result = run("record", "acme", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "unknown platform 'acme'; platforms with scenarios: aboutyou, carriyo, echo" in (
        result.output
    )
    assert "plugins that failed to load: acme (ImportError: needs libacme >= 2)" in result.output


def test_help_lists_the_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert re.search(r"^  cassettes +Record cassettes from", result.output, re.MULTILINE)
    help_text = run("record", "--help").output
    assert "cancelkit cassettes record" in help_text and "--out" in help_text
