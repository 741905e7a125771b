"""Outside plugins are found as importlib.metadata would find them, without its cost."""

from __future__ import annotations

import sys
import zipfile
from importlib.metadata import entry_points as metadata_entry_points
from pathlib import Path

import pytest

from cancelkit.core.entrypoints import PluginEntryPoint, entry_points


def dist(root: Path, folder: str, text: str) -> None:
    (root / folder).mkdir(parents=True)
    (root / folder / "entry_points.txt").write_text(text, encoding="utf-8")


def pairs(found: list) -> list[tuple[str, str]]:
    return sorted((e.name, e.value) for e in found)


@pytest.mark.parametrize("group", ["console_scripts", "pytest11", "cancelkit.plugins"])
def test_agrees_with_importlib_metadata_on_this_environment(group: str) -> None:
    assert pairs(entry_points(group)) == pairs(metadata_entry_points(group=group))


def test_agrees_on_a_crafted_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    dist(first, "Acme_Plugin-1.0.dist-info", "[cancelkit.plugins]\nacme = acme.plugin\n")
    # The same distribution again, later on the path (name spelled differently): ignored.
    dist(second, "acme.plugin-2.0.dist-info", "[cancelkit.plugins]\nacme = acme_v2.plugin\n")
    dist(
        second,
        "other-0.1.egg-info",
        "# a comment\n[console_scripts]\nx = y:z\n\n[cancelkit.plugins]\n"
        "  toys = toys.hooks:plugin [extra]  \n",
    )
    (second / "not-metadata.dist-info").write_text("a file, not a folder")
    monkeypatch.setattr(sys, "path", [str(first), str(second), str(tmp_path / "missing")])
    ours = pairs(entry_points("cancelkit.plugins"))
    assert ours == [("acme", "acme.plugin"), ("toys", "toys.hooks:plugin [extra]")]
    assert ours == pairs(metadata_entry_points(group="cancelkit.plugins"))


def test_a_zip_on_the_path_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zipped.writestr(
            "zipped-1.0.dist-info/entry_points.txt", "[cancelkit.plugins]\nzipped = zipped\n"
        )
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
    assert ("zipped", "zipped") in pairs(entry_points("cancelkit.plugins"))


def test_load_follows_module_and_attribute_path() -> None:
    point = PluginEntryPoint("x", "os.path:join.__name__ [extra]", "g")
    assert point.module == "os.path"
    assert point.load() == "join"
    assert PluginEntryPoint("m", "json", "g").load() is __import__("json")
