"""The ``salesforce`` and ``salesforce-flow`` plugins, their emulator and scenarios."""

from __future__ import annotations

from cancelkit.core.adapter import PlatformAdapter
from cancelkit.core.cassettes import Scenario
from cancelkit.core.hookspecs import hookimpl

from .connect import SalesforceConnectAdapter
from .emulator import SalesforceEmulator
from .flow import SalesforceFlowAdapter
from .scenarios import SCENARIOS


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    """Connect REST cancel-item, and the Flow core action."""
    return [SalesforceConnectAdapter(), SalesforceFlowAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[SalesforceEmulator]:
    """One emulated org serving both."""
    return [SalesforceEmulator()]


@hookimpl
def cancelkit_cassette_scenarios() -> list[Scenario]:
    """Recorded Salesforce stories (see scenarios.py)."""
    return SCENARIOS
