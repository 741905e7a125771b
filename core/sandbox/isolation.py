"""What keeps a sandbox run inside the sandbox (kept apart so clients import it cheaply).

:meth:`Sandbox.client_config` returns a :class:`SandboxConfig`. A
:class:`~cancelkit.core.client.Client` given one is in sandbox mode: its settings
come from the sandbox alone (no environment variable, config file or profile
can add a real credential or a production URL), and its HTTP session refuses
every host that is not loopback.
"""

from __future__ import annotations

#: Read timeout of sandbox clients (seconds): the emulators answer in milliseconds,
#: and a ``slow`` fault must outlast it without keeping a person waiting long.
SANDBOX_READ_TIMEOUT = 5.0


class SandboxConfig(dict[str, dict[str, str]]):
    """Client settings for every emulated platform; marks the client as a sandbox client.

    ``ledger_url`` is the sandbox's own ledger (beside its state file): a sandbox
    client records its sends there, never in the real ledger.
    """

    ledger_url: str | None = None
