"""The ``CANCELKIT_*`` environment that points ordinary clients at a running sandbox.

``cancelkit sandbox`` prints it as ``export`` lines, so a client in another shell
(or any program reading the environment) reaches the emulators with exactly the
settings an in-process sandbox client gets: the same URLs, the sandbox's own
demo credentials and its short poll intervals. Without ``POLL_INTERVAL`` a
``send --wait`` would poll Mirakl's sandbox at the production pace, once a minute.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config import env_prefix

if TYPE_CHECKING:
    from ..adapter import PlatformAdapter
    from .server import Sandbox


def client_environment(box: Sandbox, adapters: Mapping[str, PlatformAdapter]) -> dict[str, str]:
    """``CANCELKIT_<PLATFORM>_<FIELD>`` -> value, for every platform the sandbox emulates.

    Each emulator's ``client_settings`` go under the prefix each platform it serves
    reads its settings from (``settings_name``: ``salesforce-flow`` reads
    ``CANCELKIT_SALESFORCE_*``), once per prefix. ``adapters`` are the installed
    platforms by name (``PluginRegistry.platforms()``); an emulated platform without
    an adapter uses its own name. The sandbox must be started (its port is in the URLs).
    """
    environment: dict[str, str] = {}
    for platform, settings in box.client_config().items():
        emulator = box.emulators[platform]
        prefixes: list[str] = []
        for served in emulator.platforms():
            adapter = adapters.get(served)
            prefix = env_prefix((adapter.settings_name if adapter else None) or served)
            if prefix not in prefixes:
                prefixes.append(prefix)
        for prefix in prefixes:
            for field, value in settings.items():
                environment.setdefault(prefix + field.upper(), value)
    # Sends to the sandbox are recorded in its own ledger, never in the real one.
    environment["CANCELKIT_LEDGER_URL"] = box.ledger_url
    return environment


def export_lines(environment: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` lines a POSIX shell reads back exactly (values quoted as needed)."""
    return [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]
