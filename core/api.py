"""Module-level conveniences behind ``cancelkit.translate`` / ``send`` / ``status`` / ``wait``."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import Client
from .configfile import default_config_path
from .http import HttpCall
from .model import CancelRequest, CancelResult
from .registry import PluginRegistry

if TYPE_CHECKING:
    from .sandbox.server import Sandbox

Config = Mapping[str, Mapping[str, Any]]

# One default client per configuration and thread: repeated module-level calls reuse
# its connections and tokens; per thread, because a requests.Session is not meant
# to be shared between threads.
_local = threading.local()


def default_client(config: Config | None = None) -> Client:
    """The client ``cancelkit.translate`` / ``send`` / ``status`` use for ``config``.

    Reused for the same configuration in the same thread, so its HTTP sessions
    and OAuth tokens are too. A client reads settings once; a change to the
    ``CANCELKIT_*`` environment or to the config file gets a fresh client, so the
    module-level functions always act on the settings of the moment.
    """
    clients: dict[str, tuple[tuple[object, ...], Client]] = _local.__dict__.setdefault(
        "clients", {}
    )
    tables = sorted((name, sorted(dict(table).items())) for name, table in (config or {}).items())
    key = f"{type(config).__name__}:{tables!r}"
    fingerprint = _settings_fingerprint()
    known = clients.get(key)
    if known is not None and known[0] == fingerprint:
        return known[1]
    if known is not None:
        known[1].close()  # the settings it read are out of date
    client = Client(config=config)
    clients[key] = (fingerprint, client)
    return client


def _settings_fingerprint() -> tuple[object, ...]:
    """What settings depend on besides ``config``: CANCELKIT_* and the config file.

    The environment enters as a hash: secrets are never kept in a key.
    """
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CANCELKIT_")))
    path = default_config_path()
    try:
        stat = path.stat()
        file: tuple[object, ...] = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        file = (str(path),)
    return (hash(env), file)


def translate(
    request: CancelRequest | Mapping[str, Any], platform: str, *, config: Config | None = None
) -> HttpCall:
    """The exact HTTP call ``send`` would make (secrets as ``***``); sends nothing."""
    return default_client(config).translate(request, platform)


def send(
    request: CancelRequest | Mapping[str, Any], platform: str, *, config: Config | None = None
) -> CancelResult:
    """Send one cancellation and return the canonical result.

    ``config`` maps a platform name to settings (``{"mirakl": {"client_id": ...}}``);
    environment variables and the config file fill the rest. The client behind it
    is reused per configuration and thread (see :func:`default_client`).
    """
    return default_client(config).send(request, platform)


def status(platform: str, tracking_id: str, *, config: Config | None = None) -> CancelResult:
    """The current state of an asynchronous cancellation."""
    return default_client(config).status(platform, tracking_id)


def wait(result: CancelResult, *, config: Config | None = None, **options: Any) -> CancelResult:
    """Poll the status of an accepted ``result`` until it is final (:meth:`Client.wait`).

    ``options`` (``timeout``, ``interval``, ...) go to :meth:`Client.wait` unchanged,
    so this takes whatever it takes. A result that is not ``accepted`` comes back
    as it is. Uses the same default client as :func:`send` for ``config``.
    """
    return default_client(config).wait(result, **options)


def sandbox(
    *,
    state_path: Path | None = None,
    registry: PluginRegistry | None = None,
    clock: Callable[[], float] | None = None,
) -> Sandbox:
    """A sandbox with every installed platform's emulator (use it as a context manager).

    ``clock`` (seconds since the epoch; ``time.time`` by default) is the time its
    emulators see; :meth:`Sandbox.advance` moves it on.
    """
    import time

    from .sandbox.server import Sandbox  # the HTTP server loads only when a sandbox is made

    emulators = (registry or PluginRegistry()).emulators()
    return Sandbox(emulators, state_path=state_path, clock=clock or time.time)
