"""The ``mirakl`` plugin: registers the Mirakl Connect adapter and its emulator."""

from __future__ import annotations

from cancelkit.core.cassettes import Scenario
from cancelkit.core.hookspecs import hookimpl

from .adapter import MiraklConnectAdapter
from .emulator import MiraklEmulator
from .scenarios import SCENARIOS


@hookimpl
def cancelkit_platforms() -> list[MiraklConnectAdapter]:
    """Mirakl Connect."""
    return [MiraklConnectAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[MiraklEmulator]:
    """A fresh Mirakl Connect emulator."""
    return [MiraklEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Mirakl Connect stories (see scenarios.py)."""
    return SCENARIOS
