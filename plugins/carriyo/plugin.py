"""The ``carriyo`` plugin: the Carriyo adapter; its emulator and scenarios on demand.

The emulator and the cassette scenarios are imported inside their hooks, so
``translate`` and ``send`` never load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cancelkit.plugin import PlatformAdapter, hookimpl, packaged_examples

from .adapter import CarriyoAdapter

if TYPE_CHECKING:  # the sandbox and recorder types load only when they are used
    from cancelkit.plugin import Emulator, Scenario


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    """Carriyo fulfillment order cancel."""
    return [CarriyoAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    """A fresh Carriyo emulator."""
    from .emulator import CarriyoEmulator

    return [CarriyoEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Carriyo stories (see scenarios.py)."""
    from .scenarios import SCENARIOS

    return list(SCENARIOS)


@hookimpl
def cancelkit_examples() -> dict[str, Any]:
    """``cancelkit example carriyo``: ``carriyo.example.json``, shipped beside this module."""
    return packaged_examples(__package__)
