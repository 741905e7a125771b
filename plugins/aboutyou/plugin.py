"""The ``aboutyou`` plugin: the About You adapter; its emulator and scenarios on demand.

The emulator and the cassette scenarios are imported inside their hooks, so
``translate`` and ``send`` never load them.
"""

from __future__ import annotations

from cancelkit.plugin import Emulator, PlatformAdapter, Scenario, hookimpl

from .adapter import AboutYouAdapter


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    """About You Sellers Center."""
    return [AboutYouAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    """A fresh About You emulator."""
    from .emulator import AboutYouEmulator

    return [AboutYouEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded About You stories (see scenarios.py)."""
    from .scenarios import SCENARIOS

    return list(SCENARIOS)
