"""The ``aboutyou`` plugin: adapter, emulator and cassette scenarios."""

from __future__ import annotations

from cancelkit.core.cassettes import Scenario
from cancelkit.core.hookspecs import hookimpl

from .adapter import AboutYouAdapter
from .emulator import AboutYouEmulator
from .scenarios import SCENARIOS


@hookimpl
def cancelkit_platforms() -> list[AboutYouAdapter]:
    """About You Sellers Center."""
    return [AboutYouAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[AboutYouEmulator]:
    """A fresh About You emulator."""
    return [AboutYouEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded About You stories (see scenarios.py)."""
    return SCENARIOS
