"""The ``salesforce`` and ``salesforce-flow`` plugins; their emulator, scenarios and commands.

The emulator, the cassette scenarios and the ``cancelkit salesforce`` commands are
imported inside their hooks, so ``translate`` and ``send`` never load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cancelkit.plugin import PlatformAdapter, hookimpl, packaged_examples

from .connect import SalesforceConnectAdapter
from .flow import SalesforceFlowAdapter

if TYPE_CHECKING:  # the sandbox and recorder types load only when they are used
    import click

    from cancelkit.plugin import Emulator, Scenario


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    """Connect REST cancel-item, and the Flow core action."""
    return [SalesforceConnectAdapter(), SalesforceFlowAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    """One emulated org serving both."""
    from .emulator import SalesforceEmulator

    return [SalesforceEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Salesforce stories (see scenarios.py)."""
    from .scenarios import SCENARIOS

    return list(SCENARIOS)


@hookimpl
def cancelkit_register_commands(cli: click.Group) -> None:
    """``cancelkit salesforce flow-package DIR`` (see commands.py)."""
    from .commands import salesforce_group

    cli.add_command(salesforce_group)


@hookimpl
def cancelkit_examples() -> dict[str, Any]:
    """``cancelkit example salesforce`` and ``salesforce-flow``: the ``*.example.json``
    files shipped beside this module."""
    return packaged_examples(__package__)
