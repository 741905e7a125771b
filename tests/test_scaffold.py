"""``cancelkit plugin new NAME``: a package that installs and passes its tests at once.

The proof runs offline: a fresh virtual environment without pip whose site-packages
points at this environment's (cancelkit, pytest, pip, setuptools), an editable
install with no index and no build isolation, then the package's own tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cancelkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "scaffold" / "template"


def new(*args: str) -> Any:
    return CliRunner().invoke(main, ["plugin", "new", *args])


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A subprocess with no PYTHONPATH of ours (the venv must stand on its own)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def offline_venv(folder: Path) -> Path:
    """A venv without pip that sees this environment's packages; its python."""
    done = run(sys.executable, "-m", "venv", "--without-pip", folder, cwd=folder.parent)
    assert done.returncode == 0, done.stderr
    python = folder / "bin" / "python"
    purelib = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=folder
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # addsitedir, not a bare path: this environment's own .pth files (cancelkit's
    # editable install) must run too.
    lines = [f"import site; site.addsitedir({path!r})" for path in sorted(ours)]
    Path(purelib, "outer_environment.pth").write_text("\n".join(lines) + "\n")
    return python


def test_a_new_package_installs_and_passes_its_tests_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    result = new("toyshop", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    package = tmp_path / "cancelkit-toyshop"
    assert f"wrote {package}/" in result.output
    assert f"recorded 6 cassettes from the sandbox into {package / 'cassettes'}" in result.output
    python = offline_venv(tmp_path / "venv")

    install = run(
        python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
        "-e", package, cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    tests = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", package, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    summary = tests.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    # The conformance suite ran (its checks, not only the package's own four tests).
    listed = run(
        python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", package, cwd=tmp_path
    )
    conformance = [line for line in listed.stdout.splitlines() if "Conformance::" in line]
    assert len(conformance) >= 20, listed.stdout
    with capsys.disabled():
        print(f"\n[scaffold] plugin new -> editable install -> green tests: {elapsed:.1f} s")

    # Installed, the platform is listed from its own distribution.
    cli = "import sys; from cancelkit.cli import main; sys.exit(main())"
    platforms = run(python, "-c", cli, "platforms", "--json", cwd=tmp_path)
    assert platforms.returncode == 0, platforms.stderr
    found = json.loads(platforms.stdout)
    [toyshop] = [p for p in found["platforms"] if p["name"] == "toyshop"]
    assert (toyshop["distribution"], toyshop["version"]) == ("cancelkit-toyshop", "0.1.0")
    assert found["broken"] == []
    # The cassettes written with the package are the ones the command records.
    check = run(
        python, "-c", cli, "cassettes", "check", "toyshop", "--out", package / "cassettes",
        cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "6 of 6 cassettes reproduced" in check.stdout


@pytest.mark.parametrize(
    ("name", "title"),
    [("x", None), ("toyshop", None), ("abcdefghij_klmnopqrst_uv", "A" * 40)],
    ids=["shortest", "plain", "longest"],
)
def test_the_package_is_lint_clean_and_fully_filled_in(
    tmp_path: Path, name: str, title: str | None
) -> None:
    result = new(name, "--dir", str(tmp_path), *(("--title", title) if title else ()))
    assert result.exit_code == 0, result.output
    [package] = tmp_path.iterdir()
    assert package.name == "cancelkit-" + name.replace("_", "-")
    files = [p for p in package.rglob("*") if p.is_file()]
    for path in files:
        assert "{{" not in path.read_text() and "{{" not in str(path), path
    assert {p.relative_to(package).as_posix() for p in files} >= {
        "pyproject.toml",
        "README.md",
        f"cancelkit_{name}/adapter.py",
        f"cancelkit_{name}/emulator.py",
        f"cancelkit_{name}/scenarios.py",
        f"cancelkit_{name}/plugin.py",
        f"cancelkit_{name}/contracts/{name}.schema.json",
        f"cancelkit_{name}/{name}.example.json",
        f"tests/test_{name}_conformance.py",
        f"cassettes/{name}/cancel_line.yaml",
    }
    for ruff in (("check", "--no-cache"), ("format", "--check", "--no-cache")):
        done = run(sys.executable, "-m", "ruff", *ruff, ".", cwd=package)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_pyproject_declares_the_entry_point_and_ships_the_data(tmp_path: Path) -> None:
    import tomllib

    assert new("toyshop", "--dir", str(tmp_path)).exit_code == 0
    project = tomllib.loads((tmp_path / "cancelkit-toyshop" / "pyproject.toml").read_text())
    assert project["project"]["name"] == "cancelkit-toyshop"
    assert project["project"]["entry-points"]["cancelkit.plugins"] == {
        "toyshop": "cancelkit_toyshop.plugin"
    }
    assert project["project"]["dependencies"] == ["cancelkit>=0.1.0"]
    data = project["tool"]["setuptools"]["package-data"]["cancelkit_toyshop"]
    assert {"contracts/*.schema.json", "*.example.json"} <= set(data)
    schema = tmp_path / "cancelkit-toyshop" / "cancelkit_toyshop/contracts/toyshop.schema.json"
    assert "PLACEHOLDER" in json.loads(schema.read_text())["$comment"]


@pytest.mark.parametrize(
    "name", ["Toyshop", "toy-shop", "1shop", "toy__shop", "toy_", "_toy", "toy shop", "a" * 25]
)
def test_a_bad_name_exits_2_naming_the_argument(tmp_path: Path, name: str) -> None:
    result = new(name, "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for 'NAME'" in result.output and "not a platform name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_bad_title_exits_2_naming_the_option(tmp_path: Path) -> None:
    result = new("toyshop", "--title", 'Toy "Shop"', "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for '--title'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_name_of_an_installed_platform_is_refused(tmp_path: Path) -> None:
    result = new("mirakl", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "error: NAME: platform 'mirakl' is already provided by cancelkit 0.1.0" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    mine = tmp_path / "cancelkit-toyshop"
    mine.mkdir()
    (mine / "notes.txt").write_text("my work")
    result = new("toyshop", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert f"error: --dir: {mine} already exists; nothing was written" in result.output
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "my work"
    assert [p.name for p in tmp_path.iterdir()] == ["cancelkit-toyshop"]


def test_a_failure_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cancelkit.commands import plugin

    def broken(*args: object) -> int:
        raise RuntimeError("recording failed")

    monkeypatch.setattr(plugin, "_record", broken)
    result = new("toyshop", "--dir", str(tmp_path))
    assert result.exit_code == 70, result.output
    assert list(tmp_path.iterdir()) == []  # neither the package nor its temporary folder


def test_every_template_ships_in_the_wheel() -> None:
    """pyproject's package-data glob for the templates takes every file of template/."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    [pattern] = data["package-data"]["cancelkit.scaffold"]
    shipped = set((ROOT / "scaffold").glob(pattern))
    every = {p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert every and shipped == every
    assert not list(TEMPLATE.rglob("__init__.py"))  # else the build would take it for code


def test_help_shows_an_example() -> None:
    result = CliRunner().invoke(main, ["plugin", "new", "--help"])
    assert result.exit_code == 0
    assert "cancelkit plugin new toyshop" in result.output
    listing = CliRunner().invoke(main, ["--help"]).output
    assert re.search(r"^  plugin +Start a platform plugin", listing, re.MULTILINE), listing
