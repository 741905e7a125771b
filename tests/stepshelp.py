"""What the tests of cancellations of several calls share: the two-step sandbox.

tests/test_steps.py and tests/test_steps_attacks.py import the fixtures from here
(``pytest_plugins = ["stepshelp"]``: ``box``, ``emulator``, ``client``) with the
request and the client and registry helpers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import twostep_plugin
from conftest import SleepRecorder
from twostep_plugin import TwoStepEmulator

from cancelkit.core.client import Client
from cancelkit.core.registry import PluginRegistry
from cancelkit.core.sandbox.server import Sandbox

#: Cancels one of ORDER-1's two L1 units (the emulator's seeded order).
REQUEST = {"order_id": "ORDER-1", "lines": [{"line_id": "L1", "quantity": 1}]}


def registry_with(*plugins: object) -> PluginRegistry:
    """A registry of exactly ``plugins`` (no built-in, no installed plugin)."""
    registry = PluginRegistry(entry_points_to_load=())
    for index, plugin in enumerate(plugins):
        registry.register(plugin, f"test-plugin-{index}")
    return registry


@pytest.fixture
def box() -> Iterator[Sandbox]:
    """A sandbox serving the two-step emulator only."""
    with Sandbox([TwoStepEmulator()]) as sandbox:
        yield sandbox


@pytest.fixture
def emulator(box: Sandbox) -> TwoStepEmulator:
    """The sandbox's two-step emulator: its ``received`` is the judge."""
    found = box.emulators["twostep"]
    assert isinstance(found, TwoStepEmulator)
    return found


def client_for(
    box: Sandbox, sleeps: SleepRecorder, *plugins: object, ledger: bool = True
) -> Client:
    """A client of ``box`` with exactly ``plugins`` (the two-step plugin when none),
    waiting on ``sleeps``; ``ledger=False`` sends without the sandbox's ledger."""
    return Client(
        registry=registry_with(*(plugins or (twostep_plugin,))),
        config=box.client_config(),
        sleep=sleeps,
        clock=sleeps.clock,
        **({} if ledger else {"ledger": False}),
    )


@pytest.fixture
def client(box: Sandbox, sleeps: SleepRecorder) -> Iterator[Client]:
    """A client of the two-step sandbox with the two-step plugin only."""
    with client_for(box, sleeps) as made:
        yield made
