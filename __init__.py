"""cancelkit: one canonical order-line cancellation, every commerce platform.

::

    import cancelkit

    call = cancelkit.translate(request_dict, "mirakl")      # preview, sends nothing
    result = cancelkit.send(request_dict, "mirakl")         # perform it
    later = cancelkit.status("mirakl", result.tracking_id)  # async follow-up

    with cancelkit.sandbox() as box:                        # no account needed
        client = cancelkit.Client(config=box.client_config())
        client.send(request_dict, "mirakl")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import errors
from .core.adapter import Capabilities, PlatformAdapter
from .core.client import Client
from .core.hookspecs import hookimpl
from .core.http import HttpCall
from .core.model import CancelRequest, CancelResult, Line, LineResult, ResultError, Tax
from .core.registry import PluginRegistry
from .core.sandbox import Sandbox
from .core.schemas import dump_result, load_request

__version__ = "0.1.0"

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


__all__ = [
    "CancelRequest",
    "CancelResult",
    "Capabilities",
    "Client",
    "HttpCall",
    "Line",
    "LineResult",
    "PlatformAdapter",
    "PluginRegistry",
    "ResultError",
    "Sandbox",
    "Tax",
    "dump_result",
    "errors",
    "hookimpl",
    "load_request",
    "sandbox",
    "send",
    "status",
    "translate",
]
