"""Shared fixtures. Tests never reach the network: pytest-socket lets sockets
connect to loopback only (the in-process sandbox), and cassettes replay with
record mode ``none``."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cancelkit
from cancelkit.core import jsonutil, ratelimit
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox

# Helper modules that test modules also load as plugins (``pytest_plugins``): their
# asserts are rewritten like the tests' own.
pytest.register_assert_rewrite("stepshelp")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CASSETTES = ROOT / "cassettes"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real credentials, config file or sandbox state leak into a test."""
    for name in list(os.environ):
        if name.startswith("CANCELKIT_"):
            monkeypatch.delenv(name)
    # The default config file (absent) is looked for here; a named one must exist.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("CANCELKIT_SANDBOX_STATE", str(tmp_path / "sandbox-state.json"))
    # Each test has its own ledger: the user's real one (platformdirs) is never touched.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ratelimit.reset_all()  # client-side rate windows are per process: not shared by tests


#: Adapter class (module, name) -> (plugin folder, the schema every body it translates
#: must satisfy, shipped in plugins/<folder>/contracts/).
CONTRACT_OF = {
    ("cancelkit.plugins.mirakl.adapter", "MiraklConnectAdapter"): (
        "mirakl",
        "mirakl-connect.schema.json",
    ),
    ("cancelkit.plugins.salesforce.connect", "SalesforceConnectAdapter"): (
        "salesforce",
        "salesforce-cancel-item.schema.json",
    ),
    ("cancelkit.plugins.salesforce.flow", "SalesforceFlowAdapter"): (
        "salesforce",
        "salesforce-flow-invocation.schema.json",
    ),
    ("cancelkit.plugins.carriyo.adapter", "CarriyoAdapter"): (
        "carriyo",
        "carriyo-cancel-line-items.schema.json",
    ),
    ("cancelkit.plugins.aboutyou.adapter", "AboutYouAdapter"): (
        "aboutyou",
        "aboutyou-cancel.schema.json",
    ),
}


@functools.cache
def _contract_validator(contract: tuple[str, str]) -> Any:
    """One contract's validator, checked and built once (jsonschema.validate costs ~100x)."""
    import jsonschema
    from helpers import contract_schema

    schema = contract_schema(*contract)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@pytest.fixture(autouse=True)
def every_translated_body_meets_its_contract(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Whatever a test translates or sends is validated against the platform's schema.

    A test marked ``newer_than_contract`` sends a value the platform added after our
    copy of its schema (a new reason), so our copy cannot judge it.
    """
    import importlib

    if request.node.get_closest_marker("newer_than_contract"):
        return
    import json

    for (module_name, class_name), schema_file in CONTRACT_OF.items():
        cls = getattr(importlib.import_module(module_name), class_name)

        def checked(
            self: Any,
            request: Any,
            settings: Any,
            _original=cls.translate,
            _schema_file=schema_file,
        ) -> Any:
            call = _original(self, request, settings)
            _contract_validator(_schema_file).validate(json.loads(call.body_bytes()))
            return call

        monkeypatch.setattr(cls, "translate", checked)


@pytest.fixture
def example() -> Callable[[str], dict[str, Any]]:
    """Load ``examples/<name>.json`` as the CLI would (exact decimals)."""

    def load(name: str = "mirakl") -> dict[str, Any]:
        return copy.deepcopy(jsonutil.loads((EXAMPLES / f"{name}.json").read_text()))

    return load


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh in-process sandbox on a free loopback port."""
    with cancelkit.sandbox() as box:
        yield box


class SleepRecorder:
    """Stands in for time.sleep: records waits instead of waiting.

    Its :meth:`clock` moves only when somebody sleeps, so a wait that loops until
    the clock has moved (a rate limit, a status pacer) ends; :meth:`follow` makes
    every sleep move another clock too (the sandbox's, so its actions progress).
    """

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 1_000.0
        self._followers: list[Callable[[float], None]] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds
        for advance in self._followers:
            advance(seconds)

    def clock(self) -> float:
        """The virtual time: starts at 1000, moves by each sleep."""
        return self.now

    def follow(self, advance: Callable[[float], None]) -> None:
        """Call ``advance(seconds)`` on every sleep from now on."""
        self._followers.append(advance)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def sandbox_client(sandbox: Sandbox, sleeps: SleepRecorder) -> Iterator[Client]:
    """A client wired to the sandbox, with sleeps recorded rather than waited.

    Its clock is the recorder's and each sleep moves the sandbox clock on as well, so
    time-driven work (an action finishing) happens as if the waits were real.
    """
    sleeps.follow(sandbox.advance)
    client = Client(config=sandbox.client_config(), env={}, sleep=sleeps, clock=sleeps.clock)
    yield client
    client.close()


# -- PostgreSQL: a real server for the SQL ledger's tests (tests/pgserver.py) ---------

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from pgserver import PostgresServer
    from redisserver import RedisServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (a ``pgserver.PostgresServer``).

    Started on first use, on a free 127.0.0.1 port, in a temporary directory; stopped
    and deleted when the session ends. Missing binaries FAIL the test, never skip it:
    CI installs PostgreSQL (.ci/run).
    """
    from pgserver import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        missing = str(exc)
    else:
        with server:
            yield server
        return
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://cancelkit@127.0.0.1:PORT/test_<hex>``) of
    a fresh, empty database of its own for this test, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server for the whole session (a ``redisserver.RedisServer``).

    Started on first use, on a free 127.0.0.1 port, in a temporary directory; stopped
    and deleted when the session ends. A missing ``redis-server`` FAILS the test, never
    skips it: CI installs it (.ci/run).
    """
    from redisserver import RedisServer, RedisUnavailable

    try:
        server = RedisServer()
    except RedisUnavailable as exc:
        missing = str(exc)
    else:
        with server:
            yield server
        return
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of the session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url
