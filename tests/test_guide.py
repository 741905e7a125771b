"""The author's guide (docs/plugins.md) keeps up with the code it documents.

Every hook and each of its parameters is in the hook reference, every overridable
adapter method in the adapter reference, every fixture of the pytest plugin and
every public name of the sandbox kit somewhere in the guide; a new hook, method or
fixture without its line in the guide fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from cancelkit.core import hookspecs
from cancelkit.core.adapter import PlatformAdapter
from cancelkit.testing import plugin as testing_plugin

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the guide's ``## <n>. <title>`` section."""
    match = re.search(rf"^## \d+\. {re.escape(title)}\n(.*?)(?=^## |\Z)", GUIDE, re.M | re.S)
    assert match, f"docs/plugins.md has no section {title!r}"
    return match.group(1)


HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("cancelkit_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_and_each_parameter_is_in_the_hook_reference(hook: str) -> None:
    reference = section("Hook reference")
    parameters = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    [row] = [line for line in reference.splitlines() if line.startswith(f"| `{hook}(")]
    assert row.startswith(f"| `{hook}({', '.join(parameters)})`"), row
    for parameter in parameters:  # each parameter is said what it is
        assert f"`{parameter}`" in row, (hook, parameter)


def _overridable() -> list[str]:
    return sorted(
        name
        for name, member in vars(PlatformAdapter).items()
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    )


@pytest.mark.parametrize("method", _overridable())
def test_every_adapter_method_is_in_the_adapter_reference(method: str) -> None:
    assert f"`{method}" in section("Adapter reference"), method


FIXTURES = sorted(name for name in vars(testing_plugin) if name.startswith("cancelkit_"))


def test_the_plugin_has_the_fixtures_the_guide_lists() -> None:
    listed = set(re.findall(r"^\| `(cancelkit_\w+)` \|", GUIDE, re.M))
    assert listed == set(FIXTURES)


@pytest.mark.parametrize(
    "name", ["Refusal", "StatefulEmulator", "StateField", "TokenIssuer", "checked_body"]
)
def test_the_sandbox_kit_is_in_the_emulator_section(name: str) -> None:
    assert name in section("The emulator and the sandbox kit")


def test_the_commands_the_guide_gives_exist() -> None:
    from click.testing import CliRunner

    from cancelkit.cli import main

    for command in (["plugin", "new"], ["cassettes", "record"], ["cassettes", "check"]):
        assert " ".join(["cancelkit", *command]) in GUIDE
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0, result.output
