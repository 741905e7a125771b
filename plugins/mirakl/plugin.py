"""The ``mirakl`` plugin: the Mirakl Connect adapter; its emulator and scenarios on demand.

The emulator and the cassette scenarios are imported inside their hooks, so
``translate`` and ``send`` never load them.
"""

from __future__ import annotations

from cancelkit.plugin import Emulator, PlatformAdapter, Scenario, hookimpl

from .adapter import MiraklConnectAdapter


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    """Mirakl Connect."""
    return [MiraklConnectAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    """A fresh Mirakl Connect emulator."""
    from .emulator import MiraklEmulator

    return [MiraklEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Mirakl Connect stories (see scenarios.py)."""
    from .scenarios import SCENARIOS

    return list(SCENARIOS)
