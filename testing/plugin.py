"""The pytest plugin behind ``cancelkit.testing`` (entry point ``pytest11``).

pytest loads it in every run where cancelkit is installed, so it adds only
fixtures, all named ``cancelkit_*`` and none autouse, adds no option, and
imports nothing heavy here (the sandbox, requests, vcrpy and hypothesis load
when a fixture is used):

``cancelkit_clock``
    a :class:`~cancelkit.testing.clock.ControlledClock`
``cancelkit_registry``
    the plugin registry (every installed plugin); override it to add yours
``cancelkit_emulators``
    fresh emulators of that registry; override to choose
``cancelkit_sandbox``
    a started in-process sandbox of those emulators on the controlled clock
``cancelkit_client``
    a client bound to that sandbox, waiting on the controlled clock
``cancelkit_network_blocked``
    no connect outside loopback for the test
``cancelkit_replay``
    a :class:`~cancelkit.testing.recording.Replayer`: cassettes, record mode ``none``
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .clock import ControlledClock

if TYPE_CHECKING:
    from cancelkit.core.client import Client
    from cancelkit.core.registry import PluginRegistry
    from cancelkit.core.sandbox.emulator import Emulator
    from cancelkit.core.sandbox.server import Sandbox

    from .recording import Replayer


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the author's own settings out: no ``CANCELKIT_*`` variable, no config
    file, no ledger of theirs (all restored after the test)."""
    for name in list(os.environ):
        if name.startswith("CANCELKIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cancelkit-xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "cancelkit-xdg-data"))
    # platformdirs ignores XDG_DATA_HOME on Windows (and older macOS): name the ledger.
    ledger = tmp_path / "cancelkit-xdg-data" / "ledger.sqlite3"
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", f"sqlite:///{ledger}")


@pytest.fixture
def cancelkit_clock() -> ControlledClock:
    """Time that moves only on ``advance(seconds)`` or ``sleep(seconds)``.

    Starts at 2026-01-01T00:00:00Z; ``cancelkit_clock()`` reads it and
    ``cancelkit_clock.sleeps`` lists the waits asked of it.
    """
    return ControlledClock()


@pytest.fixture
def cancelkit_registry() -> PluginRegistry:
    """Every installed plugin (built-in and ``cancelkit.plugins`` entry points).

    Override it in a conftest.py to test a plugin that is not installed::

        @pytest.fixture
        def cancelkit_registry():
            registry = PluginRegistry()
            registry.register(my_plugin, "mine")
            return registry
    """
    from cancelkit.core.registry import PluginRegistry

    return PluginRegistry()


@pytest.fixture
def cancelkit_emulators(cancelkit_registry: PluginRegistry) -> list[Emulator]:
    """Fresh emulators of every plugin in ``cancelkit_registry``; override to choose."""
    return cancelkit_registry.emulators()


@pytest.fixture
def cancelkit_sandbox(
    cancelkit_emulators: list[Emulator],
    cancelkit_clock: ControlledClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Sandbox]:
    """A started in-process sandbox of ``cancelkit_emulators`` on a free loopback port.

    Its emulators see ``cancelkit_clock``; it keeps no state file and has its own
    empty ledger; no ``CANCELKIT_*`` variable or config file of yours reaches the test.
    """
    from cancelkit.core.ratelimit import reset_all
    from cancelkit.core.sandbox.server import Sandbox

    isolate(monkeypatch, tmp_path)
    reset_all()  # client-side rate windows are per process: none carries over
    with Sandbox(cancelkit_emulators, clock=cancelkit_clock) as box:
        yield box


@pytest.fixture
def cancelkit_client(
    cancelkit_sandbox: Sandbox, cancelkit_registry: PluginRegistry, cancelkit_clock: ControlledClock
) -> Iterator[Client]:
    """A sandbox client: settings from ``cancelkit_sandbox`` only, loopback hosts only.

    Its waits move ``cancelkit_clock`` (and so the sandbox's time) instead of
    sleeping, so ``send`` then ``wait`` finishes asynchronous work at once. Sends are
    recorded in the sandbox's own ledger.
    """
    from cancelkit.core.client import Client

    client = Client(
        registry=cancelkit_registry,
        config=cancelkit_sandbox.client_config(),
        sleep=cancelkit_clock.sleep,
        clock=cancelkit_clock,
    )
    yield client
    client.close()


@pytest.fixture
def cancelkit_network_blocked() -> Iterator[None]:
    """For the test: a connect to anything but loopback raises ``SocketConnectBlockedError``."""
    from .network import loopback_only

    with loopback_only():
        yield


@pytest.fixture
def cancelkit_replay(
    cancelkit_registry: PluginRegistry,
    cancelkit_network_blocked: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Replayer:
    """Replay cassettes with record mode ``none``, the network blocked.

    ``cancelkit_replay(scenario, folder)`` returns the scenario's outcome;
    ``with cancelkit_replay.cassette(path) as client:`` answers ``client``'s calls
    from one cassette. Replays use the plugins of ``cancelkit_registry``.
    """
    from cancelkit.core.registry import PluginRegistry

    from .recording import Replayer

    isolate(monkeypatch, tmp_path)
    # A fresh registry per replay, of the same plugins (scenarios register their own).
    # Registration order kept: pluggy calls the plugin registered last first.
    plugins = cancelkit_registry.pm.list_name_plugin()

    def registry() -> PluginRegistry:
        fresh = PluginRegistry(entry_points_to_load=(), builtin_plugins=())
        for name, plugin in plugins:
            if plugin is not None and not fresh.pm.is_registered(plugin):
                fresh.register(plugin, name)
        return fresh

    return Replayer(registry)
