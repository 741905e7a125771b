"""Module-level conveniences behind ``cancelkit.translate`` / ``send`` / ``status``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .client import Client
from .http import HttpCall
from .model import CancelRequest, CancelResult
from .registry import PluginRegistry
from .sandbox.server import Sandbox

Config = Mapping[str, Mapping[str, Any]]


def translate(
    request: CancelRequest | Mapping[str, Any], platform: str, *, config: Config | None = None
) -> HttpCall:
    """The exact HTTP call ``send`` would make (secrets as ``***``); sends nothing."""
    return Client(config=config).translate(request, platform)


def send(
    request: CancelRequest | Mapping[str, Any], platform: str, *, config: Config | None = None
) -> CancelResult:
    """Send one cancellation and return the canonical result.

    ``config`` maps a platform name to settings (``{"mirakl": {"client_id": ...}}``);
    environment variables and the config file fill the rest.
    """
    client = Client(config=config)
    try:
        return client.send(request, platform)
    finally:
        client.close()


def status(platform: str, tracking_id: str, *, config: Config | None = None) -> CancelResult:
    """The current state of an asynchronous cancellation."""
    client = Client(config=config)
    try:
        return client.status(platform, tracking_id)
    finally:
        client.close()


def sandbox(*, state_path: Path | None = None, registry: PluginRegistry | None = None) -> Sandbox:
    """A sandbox with every installed platform's emulator (use it as a context manager)."""
    return Sandbox((registry or PluginRegistry()).emulators(), state_path=state_path)
