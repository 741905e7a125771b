"""The ``aboutyou`` plugin: the About You adapter; its emulator and scenarios on demand.

The emulator and the cassette scenarios are imported inside their hooks, so
``translate`` and ``send`` never load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cancelkit.plugin import PlatformAdapter, hookimpl, packaged_examples

from .adapter import AboutYouAdapter

if TYPE_CHECKING:  # the sandbox and recorder types load only when they are used
    from cancelkit.plugin import Emulator, Scenario


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


@hookimpl
def cancelkit_examples() -> dict[str, Any]:
    """``cancelkit example aboutyou``: ``aboutyou.example.json``, shipped beside this module."""
    return packaged_examples(__package__)
