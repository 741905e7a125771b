"""What the tests of cancellations of several calls share: the two-step sandbox.

tests/test_steps.py and tests/test_steps_attacks.py import the fixtures from here
(``from stepshelp import box, emulator``) with the request and the registry helper.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twostep_plugin import TwoStepEmulator

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
