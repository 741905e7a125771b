"""Cassettes for plugin tests: record against a real account, replay with record mode none.

Both go through :mod:`cancelkit.core.cassettes`, so a plugin's cassettes are
written and matched by exactly the rules cancelkit's own are: secret headers,
secret settings and tokens obtained at run time masked as ``***``; a replayed
request answered only when its method, URL and canonical body were recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import ControlledClock
from .network import loopback_only

if TYPE_CHECKING:
    from cancelkit.core.client import Client
    from cancelkit.core.registry import PluginRegistry
    from cancelkit.core.scenario import Scenario


@contextmanager
def record_cassette(
    path: str | Path,
    client: Client,
    *,
    rewrites: Mapping[str, str] | None = None,
    record_mode: str = "once",
) -> Iterator[None]:
    """Record every call ``client`` makes inside the block into the cassette ``path``.

    For recording against a real account (a test tenant, a partner sandbox): build
    the client from your real settings, then::

        with Client() as client, record_cassette("cassettes/walmart/live.yaml", client):
            client.send(request, "walmart")

    The client's own ``scrubber`` masks every secret it knows (configured secret
    settings, tokens it obtained, headers its authenticator filled) wherever they
    appear, and token request and answer fields (``client_secret``,
    ``access_token``...) are masked too. ``rewrites`` maps URL prefixes to others
    (a tenant host to the documented production one). ``record_mode`` is vcrpy's:
    ``once`` (the default) refuses to add to an existing cassette, ``all`` rewrites it.
    Read the cassette before committing it: a secret the client never learnt (one
    the platform sends in a body under a name of its own) is not masked.
    """
    from cancelkit.core.cassettes import make_vcr

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    recorder = make_vcr(record_mode, dict(rewrites or {}), client.scrubber)
    with recorder.use_cassette(str(path)):
        yield


class Replayer:
    """Replays cassettes with record mode ``none`` and the network blocked.

    What the ``cancelkit_replay`` fixture gives: call it with a scenario, or open
    one cassette with :meth:`cassette` and drive a client yourself.
    """

    def __init__(self, registry: Callable[[], PluginRegistry]) -> None:
        #: Makes the plugin registry replays run with (a fresh one each time).
        self.registry = registry

    def __call__(self, scenario: Scenario, directory: str | Path) -> str:
        """Run ``scenario`` from ``directory/<platform>/<name>.yaml``; returns its outcome.

        The outcome is the final result's, or the class name of the cancelkit
        error it raised, as :attr:`Scenario.expected_outcome` is written. A call
        missing from the cassette raises vcrpy's ``CannotOverwriteExistingCassetteException``.
        """
        from cancelkit.core.cassettes import replay

        with loopback_only():
            return replay(scenario, Path(directory), registry_factory=self.registry)

    @contextmanager
    def cassette(self, path: str | Path) -> Iterator[Client]:
        """A client whose calls are answered from the cassette ``path`` only.

        Its settings are the replay ones (production URLs, placeholder credentials,
        as the recorder wrote them); its waits cost no time; it keeps no ledger.
        """
        from cancelkit.core.cassettes import make_vcr, replay_config
        from cancelkit.core.client import Client

        registry = self.registry()
        clock = ControlledClock()
        client = Client(
            registry=registry,
            config=replay_config(registry.emulators()),
            env={},
            sleep=clock.sleep,
            clock=clock,
            ledger=False,
        )
        try:
            with loopback_only(), make_vcr("none", {}, client.scrubber).use_cassette(str(path)):
                yield client
        finally:
            client.close()
