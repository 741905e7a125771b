"""``cancelkit platforms`` names each plugin's distribution and version (``datasette plugins``)."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cancelkit import PluginRegistry
from cancelkit.cli import main
from cancelkit.core.registry import ENTRY_POINT_GROUP, Distribution

TESTS = Path(__file__).parent
CANCELKIT_VERSION = metadata.version("cancelkit")
#: A plugin that adds no platform, only a hook (shipped in the same package as echo).
HOOKS_ONLY = """
from cancelkit.plugin import hookimpl


@hookimpl
def cancelkit_examples():
    return {}
"""


@pytest.fixture
def echo_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The model outside plugin, installed as the distribution ``cancelkit-echo`` 0.3."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "echo_plugin.py").write_text((TESTS / "echo_plugin.py").read_text())
    (site / "echo_hooks.py").write_text(HOOKS_ONLY)
    # The folder name is normalised (underscores); the Name field is the project's own.
    info = site / "cancelkit_echo-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cancelkit-echo\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\necho = echo_plugin\necho_hooks = echo_hooks\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def platforms_json() -> dict[str, Any]:
    result = CliRunner().invoke(main, ["platforms", "--json"])
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.output)
    return found


def test_builtin_platforms_come_from_cancelkit_and_its_version() -> None:
    found = platforms_json()
    builtin = set(PluginRegistry(entry_points_to_load=()).platforms())
    assert builtin <= {p["name"] for p in found["platforms"]}
    for platform in found["platforms"]:
        if platform["name"] not in builtin:  # an outside plugin installed here
            assert platform["distribution"] != "cancelkit"
            continue
        # The fields scripts and .ci/run already read are all still there.
        assert {"name", "title", "plugin", "capabilities"} <= set(platform)
        assert (platform["distribution"], platform["version"]) == ("cancelkit", CANCELKIT_VERSION)
    plugins = {p["name"]: p for p in found["plugins"]}
    assert plugins["salesforce"] == {
        "name": "salesforce",
        "source": "cancelkit.plugins.salesforce.plugin",
        "distribution": "cancelkit",
        "version": CANCELKIT_VERSION,
        "platforms": ["salesforce", "salesforce-flow"],
    }
    text = CliRunner().invoke(main, ["platforms"]).output.splitlines()
    assert text[0].split() == [
        "PLATFORM", "PLUGIN", "DISTRIBUTION", "MODE", "QUANTITY", "RESEND", "TITLE",
    ]  # fmt: skip
    [mirakl] = [line for line in text if line.startswith("mirakl ")]
    assert mirakl.split()[:5] == ["mirakl", "mirakl", "cancelkit", CANCELKIT_VERSION, "async"]


@pytest.mark.usefixtures("echo_package")
def test_an_outside_plugin_shows_the_package_that_registered_its_entry_point() -> None:
    found = platforms_json()
    [echo] = [p for p in found["platforms"] if p["name"] == "echo"]
    assert (echo["plugin"], echo["distribution"], echo["version"]) == (
        "echo",
        "cancelkit-echo",
        "0.3",
    )
    plugins = {p["name"]: p for p in found["plugins"]}
    assert plugins["echo_hooks"] == {
        "name": "echo_hooks",
        "source": "echo_hooks",
        "distribution": "cancelkit-echo",
        "version": "0.3",
        "platforms": [],
    }
    result = CliRunner().invoke(main, ["platforms"])
    [line] = [line for line in result.output.splitlines() if line.startswith("echo ")]
    assert line.split()[:4] == ["echo", "echo", "cancelkit-echo", "0.3"]
    assert "PLUGIN echo_hooks (cancelkit-echo 0.3): provides no platform" in result.output


@pytest.mark.usefixtures("echo_package")
def test_importlib_metadata_entry_points_give_the_same_distribution() -> None:
    """The fallback loader (a zip on sys.path) hands importlib's entry points over."""
    points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    registry = PluginRegistry(entry_points_to_load=[p for p in points if p.name == "echo"])
    assert registry.distribution("echo") == Distribution("cancelkit-echo", "0.3")
    assert registry.distribution("mirakl") == Distribution("cancelkit", CANCELKIT_VERSION)


def test_a_plugin_registered_in_process_has_no_distribution() -> None:
    import echo_plugin  # type: ignore[import-not-found]

    registry = PluginRegistry(entry_points_to_load=())
    registry.register(echo_plugin, "echo")
    assert registry.distribution("echo") is None
    assert registry.distribution("nosuch") is None
