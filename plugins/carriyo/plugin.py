"""The ``carriyo`` plugin: adapter, emulator and cassette scenarios."""

from __future__ import annotations

from cancelkit.core.cassettes import Scenario
from cancelkit.core.hookspecs import hookimpl

from .adapter import CarriyoAdapter
from .emulator import CarriyoEmulator
from .scenarios import SCENARIOS


@hookimpl
def cancelkit_platforms() -> list[CarriyoAdapter]:
    """Carriyo."""
    return [CarriyoAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[CarriyoEmulator]:
    """A fresh Carriyo emulator."""
    return [CarriyoEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Carriyo stories (see scenarios.py)."""
    return SCENARIOS
