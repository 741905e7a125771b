"""Helpers the ledger tests share (tests/test_ledger.py, tests/test_ledger_postgres.py).

What a test concludes comes from what the sandbox emulator actually received (its
request log), never from the ledger's own say-so alone. The scenarios at the end take
a ledger URL (None: the sandbox client's own SQLite ledger) so that the SQLite and the
PostgreSQL test modules run the very same attacks.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

import cancelkit
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.ledger import tables
from cancelkit.core.ledger.keys import canonical_json, request_key
from cancelkit.core.ledger.location import engine_url
from cancelkit.core.ledger.store import Claimed, Held, Ledger, LedgerEntry
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.sending import RetryPolicy
from cancelkit.errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: Token requests are not cancels (each platform's token endpoint).
TOKEN_PATHS = ("/oauth/token", "/oauth2/token")
#: How long a subprocess may take to get ready or finish (generous: a loaded CI box).
SUBPROCESS_TIMEOUT = 60.0


def example(name: str) -> dict[str, Any]:
    """``examples/<name>.json`` as the CLI reads it (exact decimals)."""
    loaded: dict[str, Any] = jsonutil.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


@contextmanager
def logged_sandbox() -> Iterator[tuple[Sandbox, list[str]]]:
    """An in-process sandbox that logs every request it answers ("POST /path -> 202")."""
    lines: list[str] = []
    with Sandbox(cancelkit.PluginRegistry().emulators(), log=lines.append) as box:
        yield box, lines


def cancels(lines: list[str], platform: str | None = None) -> list[str]:
    """The cancel calls an emulator received: every POST that is not a token request."""
    prefix = f"POST /{platform}/" if platform else "POST /"
    return [
        line
        for line in lines
        if line.startswith(prefix) and not any(t in line for t in TOKEN_PATHS)
    ]


def sandbox_client(
    box: Sandbox,
    *,
    ledger: str | None = None,
    sleep: Callable[[float], None] | None = None,
    **settings: dict[str, str],
) -> Client:
    """A sandbox client; ``ledger`` None keeps the sandbox's own ledger; ``settings``
    maps a platform to settings laid over the sandbox's."""
    config = box.client_config()
    for platform, extra in settings.items():
        config[platform].update(extra)
    return Client(config=config, sleep=sleep or (lambda s: None), ledger=ledger)


def ledger_of(client: Client) -> Ledger:
    """The client's ledger (opened if need be)."""
    ledger = client.ledger
    assert ledger is not None
    return ledger


def key_of(client: Client, request: dict[str, Any], platform: str) -> tuple[str, str]:
    """``(key, fingerprint)`` the client's send of ``request`` claims."""
    prepared = client.prepare(request, platform)
    adapter = client.registry.platform(platform)
    host = urlsplit(client.translate(request, platform).url).hostname or ""
    key: tuple[str, str] = request_key(str(adapter.name), prepared, host)
    return key


def plant_claim(
    ledger: Ledger,
    client: Client,
    request: dict[str, Any],
    platform: str,
    *,
    left: bool = True,
) -> Claimed:
    """Claim ``request``'s key as a send that died mid-call would have left it (``left``:
    its call had left; False: it died before, waiting for the rate limiter, say)."""
    key, fingerprint = key_of(client, request, platform)
    prepared = client.prepare(request, platform)
    got = ledger.claim(
        key,
        fingerprint=fingerprint,
        platform=client.registry.platform(platform).name,
        request={**canonical_json(prepared), "idempotency_key": prepared.idempotency_key},
    )
    assert isinstance(got, Claimed), got
    if left:
        assert ledger.leave(got)
    return got


def entry_of(client: Client, request: dict[str, Any], platform: str) -> LedgerEntry:
    """The ledger entry of ``request``'s key (it must be there)."""
    entry = ledger_of(client).get(key_of(client, request, platform)[0])
    assert entry is not None
    return entry


# -- subprocesses ----------------------------------------------------------------------
def _racer(url: str, key: str, mode: str, start: Any, answers: Any) -> None:
    """One racing process: get ready, wait for the start, then claim ``key`` (mode
    "claim", its ledger opened before the start) or open a brand-new ledger ("open")."""
    try:
        ledger = Ledger(url) if mode == "claim" else None
        if ledger is not None:
            ledger.get(key)  # a connection is open before the start
        start.wait(SUBPROCESS_TIMEOUT)
        if ledger is None:
            ledger = Ledger(url)
            with ledger.engine.connect() as connection:
                answers.put({"version": tables.current_version(connection)})
        else:
            got = ledger.claim(
                key,
                fingerprint="f" * 64,
                platform="mirakl",
                request={"race": 1},
                may_reclaim=lambda entry: entry.outcome == "not_sent",
            )
            answers.put(
                {"claimed": isinstance(got, Claimed), "attempt": getattr(got, "attempt", None)}
            )
        ledger.close()
    except BaseException as error:
        answers.put({"error": f"{type(error).__name__}: {error}"})
        raise


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def race(
    url: str, *, n: int = 8, key: str = "race-key", mode: str = "claim"
) -> list[dict[str, Any]]:
    """``n`` processes (forked: each its own connections, none of the parent's) that get
    ready, then are released at once by a barrier; their answers (``{"claimed",
    "attempt"}``, or ``{"version"}`` in mode "open")."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(n + 1)
    answers = context.Queue()
    processes = [
        context.Process(target=_racer, args=(url, key, mode, start, answers), daemon=True)
        for _ in range(n)
    ]
    for process in processes:
        process.start()
    try:
        start.wait(SUBPROCESS_TIMEOUT)  # every racer is ready: all go at once
        got = [answers.get(timeout=SUBPROCESS_TIMEOUT) for _ in processes]
        for process in processes:
            process.join(SUBPROCESS_TIMEOUT)
            assert process.exitcode == 0, got
        assert not [a for a in got if "error" in a], got
        return got
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


#: A sandbox client in its own process: sends one request and prints the outcome.
SENDER = r"""
import json, sys
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.sandbox.isolation import SandboxConfig
config = SandboxConfig(json.loads(sys.argv[1]))
config.ledger_url = sys.argv[2]
with Client(config=config) as client:
    print(client.send(jsonutil.loads(sys.argv[3]), sys.argv[4]).outcome, flush=True)
"""


def send_and_die(
    box: Sandbox, lines: list[str], ledger_url: str, request: dict[str, Any], platform: str
) -> None:
    """Send ``request`` from another process that is SIGKILLed while the sandbox holds the
    answer back (a ``slow`` fault): the cancel reached the emulator, no answer came back."""
    config = box.client_config()
    config[platform]["timeout"] = "120"  # the client waits; the kill comes first
    box.inject("slow", platform, delay=60.0)
    before = len(cancels(lines, platform))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SENDER,
            json.dumps(dict(config)),
            ledger_url,
            jsonutil.dumps(request),
            platform,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        # The sandbox logs a request before holding its answer back: once the cancel is
        # in the log, the emulator has applied it and the sender is waiting.
        while len(cancels(lines, platform)) == before:
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "the cancel never reached the sandbox"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


# -- reading a ledger raw ---------------------------------------------------------------
def every_value(url: str) -> list[str]:
    """Every column of every row of every table of the database at ``url``, as text."""
    engine = sa.create_engine(url)
    try:
        values: list[str] = []
        with engine.connect() as connection:
            for name in sa.inspect(connection).get_table_names():
                table = sa.Table(name, sa.MetaData(), autoload_with=connection)
                for row in connection.execute(sa.select(table)):
                    values += [str(v) for v in row if v is not None]
        return values
    finally:
        engine.dispose()


def sqlite_path(url: str) -> Path:
    """The file of an ``sqlite:///`` URL."""
    assert url.startswith("sqlite:///"), url
    return Path(url[len("sqlite:///") :])


def raw_bytes(path: Path) -> bytes:
    """The database file and its journal files (``-wal``, ``-shm``, ``-journal``)."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def snapshot(url: str) -> dict[str, Any]:
    """A database's tables and every row (what 'not altered' compares)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            shape: dict[str, Any] = {}
            for name in sorted(inspector.get_table_names()):
                table = sa.Table(name, sa.MetaData(), autoload_with=connection)
                columns = [c["name"] for c in inspector.get_columns(name)]
                rows = sorted(map(repr, connection.execute(sa.select(table))))
                indexes = sorted(i["name"] or "" for i in inspector.get_indexes(name))
                shape[name] = (columns, indexes, rows)
            return shape
    finally:
        engine.dispose()


# -- scenarios run on SQLite and on PostgreSQL ------------------------------------------
def scenario_same_request_twice(ledger: str | None) -> None:
    """The same request twice: one cancel reaches the emulator; the repeat is the recorded
    result with a warning; key order and ``1.0`` do not make another request."""
    with logged_sandbox() as (box, lines):
        with sandbox_client(box, ledger=ledger) as client:
            first = client.send(example("mirakl"), "mirakl")
        assert first.outcome == "accepted" and first.warnings == ()
        # Another client (another "process"), the same request written differently.
        written = example("mirakl")
        written["lines"][0]["quantity"] = jsonutil.loads("1.0")
        shuffled = dict(reversed(list(written.items())))
        with sandbox_client(box, ledger=ledger) as client:
            second = client.send(shuffled, "mirakl")
        assert len(cancels(lines, "mirakl")) == 1
        assert second.outcome == first.outcome
        assert second.tracking_id == first.tracking_id
        assert [w for w in second.warnings if w.startswith("already sent at ")], second.warnings
        assert second.details["ledger"]["held"] is True
        # Another quantity is another request: it goes out.
        more = example("mirakl")
        more["lines"][0]["quantity"] = 2
        with sandbox_client(box, ledger=ledger) as client:
            other = client.send(more, "mirakl")
        assert other.warnings == ()
        assert len(cancels(lines, "mirakl")) == 2


def scenario_died_mid_call(ledger: str | None) -> None:
    """A sender SIGKILLed mid-call: the next send of it is NOT sent, and says unknown."""
    with logged_sandbox() as (box, lines):
        url = ledger or box.ledger_url
        send_and_die(box, lines, url, example("mirakl"), "mirakl")
        assert len(cancels(lines, "mirakl")) == 1
        assert len(box.emulators["mirakl"].actions) == 1  # it was applied
        with sandbox_client(box, ledger=url) as client:
            entry = entry_of(client, example("mirakl"), "mirakl")
            assert entry.in_flight and not entry.answered
            again = client.send(example("mirakl"), "mirakl")
            assert again.outcome == "unknown"
            assert "cancelkit ledger resolve" in again.message
            assert "NOT sent again" in again.message
            assert len(cancels(lines, "mirakl")) == 1  # not resent
            # Only an explicit resend sends it again, as attempt 2.
            forced = client.send(example("mirakl"), "mirakl", resend=True)
            assert forced.warnings == ()
            assert len(cancels(lines, "mirakl")) == 2
            assert entry_of(client, example("mirakl"), "mirakl").attempt == 2


def scenario_deduplicating_platform_resends_unknown(ledger: str | None) -> None:
    """About You deduplicates identical requests: a claim left unanswered IS resent."""
    with logged_sandbox() as (box, lines), sandbox_client(box, ledger=ledger) as client:
        plant_claim(ledger_of(client), client, example("aboutyou"), "aboutyou")
        result = client.send(example("aboutyou"), "aboutyou")
        assert len(cancels(lines, "aboutyou")) == 1
        assert result.outcome in ("accepted", "cancelled"), result
        entry = entry_of(client, example("aboutyou"), "aboutyou")
        assert (entry.attempt, entry.answered, entry.outcome) == (2, True, result.outcome)


def scenario_rate_limited_then_sent(ledger: str | None) -> None:
    """429 until the retries run out: rejected (retryable) is recorded; the next send goes
    out again, as attempt 2, and succeeds; a third is held."""
    tries = RetryPolicy().max_retries + 1
    with logged_sandbox() as (box, lines), sandbox_client(box, ledger=ledger) as client:
        box.inject("429", "mirakl", retry_after=1, count=tries)
        limited = client.send(example("mirakl"), "mirakl")
        assert limited.outcome == "rejected" and limited.retryable
        assert len(cancels(lines, "mirakl")) == tries
        entry = entry_of(client, example("mirakl"), "mirakl")
        assert (entry.outcome, entry.answered, entry.attempt) == ("rejected", True, 1)
        assert entry.result is not None
        assert [e["code"] for e in entry.result["errors"]] == ["RATE_LIMITED"]
        sent = client.send(example("mirakl"), "mirakl")
        assert sent.outcome == "accepted" and sent.warnings == ()
        assert len(cancels(lines, "mirakl")) == tries + 1
        entry = entry_of(client, example("mirakl"), "mirakl")
        assert (entry.outcome, entry.attempt) == ("accepted", 2)
        held = client.send(example("mirakl"), "mirakl")
        assert held.details["ledger"]["held"] is True
        assert len(cancels(lines, "mirakl")) == tries + 1


def scenario_threads_send_at_once(ledger: str | None, n: int = 8) -> None:
    """``n`` clients in ``n`` threads send the same request at the same moment: the
    emulator receives one cancel; every other send is held."""
    with logged_sandbox() as (box, lines):
        clients = [sandbox_client(box, ledger=ledger) for _ in range(n)]
        for client in clients:  # tokens fetched and ledgers opened before the start
            ledger_of(client)
            client.send({**example("mirakl"), "idempotency_key": f"warm-{id(client)}"}, "mirakl")
        warm = len(cancels(lines, "mirakl"))
        barrier = threading.Barrier(n)
        results: list[Any] = []

        def send(client: Client) -> None:
            barrier.wait()
            try:
                results.append(client.send(example("mirakl"), "mirakl"))
            except Exception as error:  # reported below, not lost in the thread
                results.append(error)

        threads = [threading.Thread(target=send, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SUBPROCESS_TIMEOUT)
        for client in clients:
            client.close()
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert len(results) == n
        assert len(cancels(lines, "mirakl")) == warm + 1
        held = [r for r in results if r.details.get("ledger", {}).get("held")]
        assert len(held) == n - 1


def claim_race(url: str, n: int = 8) -> None:
    """``n`` processes claim one key at once: one Claimed, the others Held; then the same
    for a re-claim of a released (``not_sent``) key: one attempt 2, the others Held."""
    answers = race(url, n=n)
    assert sorted(a["claimed"] for a in answers) == [False] * (n - 1) + [True]
    with Ledger(url) as ledger:
        entry = ledger.get("race-key")
        assert entry is not None and entry.attempt == 1 and entry.in_flight
        ledger.release(Claimed("race-key", 1), "not sent: connection refused")
    answers = race(url, n=n)
    assert sorted(a["claimed"] for a in answers) == [False] * (n - 1) + [True]
    assert [a["attempt"] for a in answers if a["claimed"]] == [2]
    with Ledger(url) as ledger:
        entry = ledger.get("race-key")
        assert entry is not None and (entry.attempt, entry.outcome) == (2, "unknown")


def thread_claim_race(url: str, n: int = 8) -> None:
    """``n`` threads sharing one Ledger claim one key at once: one Claimed."""
    with Ledger(url) as ledger:
        barrier = threading.Barrier(n)
        got: list[Claimed | Held | BaseException] = []

        def claim() -> None:
            barrier.wait()
            try:
                got.append(
                    ledger.claim("thread-key", fingerprint="a" * 64, platform="mirakl", request={})
                )
            except Exception as error:
                got.append(error)

        threads = [threading.Thread(target=claim) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SUBPROCESS_TIMEOUT)
        assert not [g for g in got if isinstance(g, BaseException)], got
        assert sorted(isinstance(g, Claimed) for g in got) == [False] * (n - 1) + [True]


def scenario_status_updates_the_entry(ledger: str | None, sleeps: Any) -> None:
    """A status answer that is final updates the entry; a repeat then shows it."""
    with logged_sandbox() as (box, lines):
        sleeps.follow(box.advance)
        config = box.client_config()
        with Client(config=config, sleep=sleeps, clock=sleeps.clock, ledger=ledger) as client:
            sent = client.send(example("mirakl"), "mirakl")
            assert sent.outcome == "accepted" and sent.tracking_id
            entry = entry_of(client, example("mirakl"), "mirakl")
            assert (entry.outcome, entry.latest) == ("accepted", None)
            final = client.wait(sent, timeout=3600)
            assert final.outcome == "cancelled"
            assert any(line.startswith("GET /mirakl/") for line in lines)  # it did ask
            entry = entry_of(client, example("mirakl"), "mirakl")
            assert entry.outcome == "cancelled"
            assert entry.latest is not None and entry.latest["outcome"] == "cancelled"
            again = client.send(example("mirakl"), "mirakl")
        assert again.outcome == "cancelled"
        assert again.details["ledger"]["held"] is True
        assert len(cancels(lines, "mirakl")) == 1


# -- schema versions ----------------------------------------------------------------------
def migrated_from_version_1(url: str) -> None:
    engine = sa.create_engine(engine_url(url))
    try:
        assert tables.migrate(engine, target=1) == 1
        with engine.begin() as connection:
            connection.execute(
                tables.entries.insert().values(
                    key="old-key",
                    fingerprint="c" * 64,
                    platform="mirakl",
                    outcome="cancelled",
                    answered=True,
                    attempt=1,
                    request="{}",
                    claimed_by="old:1",
                    claimed_at=sa.func.now(),
                    updated_at=sa.func.now(),
                )
            )
        assert not sa.inspect(engine).has_table(tables.jobs.name)
    finally:
        engine.dispose()
    with Ledger(url) as ledger, ledger.engine.connect() as connection:
        assert tables.current_version(connection) == tables.LATEST
        entry = ledger.get("old-key")
        assert entry is not None and entry.outcome == "cancelled"
        assert ledger.start_job("job-1", source="x.jsonl", fmt="jsonl", total=1)
        held = ledger.claim("old-key", fingerprint="c" * 64, platform="mirakl", request={})
        assert isinstance(held, Held)


def newer_is_refused(url: str) -> None:
    Ledger(url).close()
    engine = sa.create_engine(engine_url(url))
    with engine.begin() as connection:
        connection.execute(tables.schema_version.update().values(version=tables.LATEST + 1))
    engine.dispose()
    before = snapshot(engine_url(url))
    with pytest.raises(ConfigurationError, match="newer") as raised:
        Ledger(url)
    assert f"version {tables.LATEST + 1}" in str(raised.value)
    assert snapshot(engine_url(url)) == before
