"""The ``walmart`` plugin: the adapter; its emulator and scenarios load on demand.

Registered by the ``cancelkit.plugins`` entry point in pyproject.toml. The emulator
and the cassette scenarios are imported inside their hooks, so ``translate`` and
``send`` never load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cancelkit.plugin import PlatformAdapter, hookimpl, packaged_examples

from .adapter import WalmartAdapter

if TYPE_CHECKING:  # the sandbox and recorder types load only when they are used
    from cancelkit.plugin import Emulator, Scenario


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    """Walmart Marketplace (US)."""
    return [WalmartAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    """A fresh Walmart Marketplace emulator."""
    from .emulator import WalmartEmulator

    return [WalmartEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Walmart stories (see scenarios.py)."""
    from .scenarios import SCENARIOS

    return list(SCENARIOS)


@hookimpl
def cancelkit_examples() -> dict[str, Any]:
    """``cancelkit example walmart``: ``walmart.example.json``, shipped beside this module."""
    return packaged_examples(__package__)
