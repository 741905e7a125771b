"""Attacks on the shared (Redis) rate limiter: secrets in messages, a Redis that stops
or stalls mid-run, keys that collide or split, threads racing the first choice of
store, and ``import cancelkit`` staying free of ``redis``. Runs against a real
``redis-server`` (the ``redis_server`` fixture, or a private one where it is stopped)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from redisserver import RedisServer

from cancelkit.core import limiterlocation, ratelimit, ratelimit_redis
from cancelkit.core.client import Client
from cancelkit.core.ledger.location import sqlite_url
from cancelkit.core.limiterlocation import open_store
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import ConfigurationError


def _cancel(n: int) -> dict[str, Any]:
    return {"lines": [{"line_id": str(8100 + n), "quantity": 1}]}


# --- secrets in messages -------------------------------------------------------------


@pytest.mark.parametrize("password", ["Zx9/Qw7k", "Zx9#Qw7k", "Zx9?Qw7k"])
def test_a_password_with_url_delimiters_is_never_printed(password: str) -> None:
    # Generated passwords (base64) often hold '/': a careless user pastes them raw.
    with pytest.raises(ConfigurationError) as caught:
        open_store(f"redis://:{password}@127.0.0.1:1/0", "limiter_url")
    message = str(caught.value)
    assert "limiter_url" in message
    assert "Zx9" not in message and "Qw7k" not in message


def test_query_password_in_any_case_and_repeated_is_masked() -> None:
    shown = limiterlocation.shown_url("redis://h/0?Password=Aa1&password=Bb2&db=3")
    assert "Aa1" not in shown and "Bb2" not in shown and "db=3" in shown


def test_store_and_limiter_reprs_hold_no_password(redis_server: RedisServer) -> None:
    with _admin(redis_server) as r:
        r.config_set("requirepass", "pw-Repr-9")
    try:
        url = f"redis://:pw-Repr-9@127.0.0.1:{redis_server.port}/0"
        store = open_store(url, "limiter_url")
        limiter = store.limiter("p", "e", "d", 1, 1.0)
        assert "pw-Repr-9" not in repr(store) + repr(limiter) + str(vars(store)["shown"])
    finally:
        with _admin(redis_server, password="pw-Repr-9") as r:
            r.config_set("requirepass", "")


def _admin(server: RedisServer, password: str | None = None) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=server.port, password=password, socket_timeout=5)


# --- Redis slow or gone in the middle of a run ---------------------------------------


def test_a_stalled_redis_is_given_up_on_within_the_grace(
    redis_server: RedisServer, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit_redis, "REDIS_TIMEOUT", 0.3)
    monkeypatch.setattr(ratelimit_redis, "OUTAGE_GRACE", 0.3)
    monkeypatch.setattr(ratelimit_redis, "OUTAGE_PAUSE", 0.1)
    limiter = open_store(redis_url, "limiter_url").limiter("p", "stall", "d", 5, 1.0)
    with _admin(redis_server) as r:
        r.execute_command("CLIENT", "PAUSE", "2500", "ALL")  # Redis answers nobody
    started = time.monotonic()
    try:
        with pytest.raises(ConfigurationError):
            limiter.acquire(time.monotonic, time.sleep)
        elapsed = time.monotonic() - started
    finally:
        time.sleep(max(0.0, 2.6 - (time.monotonic() - started)))  # the pause ends
    # The grace, one call that may time out at its end, and scheduling slack.
    assert elapsed <= 0.3 + 0.3 + 0.3, f"gave up after {elapsed:.2f} s"


def test_redis_stopping_mid_run_frees_the_key_and_leaks_no_password(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit_redis, "OUTAGE_GRACE", 0.2)
    server = RedisServer().start()
    try:
        with _admin(server) as r:
            r.config_set("requirepass", "pw-Mid-4")
        url = f"redis://:pw-Mid-4@127.0.0.1:{server.port}/0"
        monkeypatch.setenv("CANCELKIT_LIMITER_URL", url)
        ledger = sqlite_url(tmp_path / "ledger.sqlite3")
        with Client(config=sandbox.client_config(), ledger=ledger) as client:
            assert client.send(_cancel(1), "aboutyou").outcome == "accepted"
            server.stop()  # Redis goes away between two cancels of a bulk run
            with pytest.raises(ConfigurationError) as caught:
                client.send(_cancel(2), "aboutyou")
            message = str(caught.value)
            assert "pw-Mid-4" not in message and ":***@" in message
            assert "nothing was sent" in message
            assert len(sandbox.emulators["aboutyou"].batches) == 1  # the 2nd never left
        # Redis is back (a new one): the same request is sent now, exactly once.
        server.start()
        monkeypatch.setenv("CANCELKIT_LIMITER_URL", f"redis://127.0.0.1:{server.port}/0")
        with Client(config=sandbox.client_config(), ledger=ledger) as client:
            again = client.send(_cancel(2), "aboutyou")
        assert again.outcome == "accepted"
        assert not (again.details.get("ledger") or {}).get("held")
        assert len(sandbox.emulators["aboutyou"].batches) == 2
    finally:
        server.stop()


def test_a_bulk_run_reports_each_cancel_unsent_when_redis_is_gone(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redisserver import free_port

    monkeypatch.setenv("CANCELKIT_LIMITER_URL", f"redis://:pw-Bulk-1@127.0.0.1:{free_port()}/0")
    with Client(config=sandbox.client_config(), ledger=False) as client:
        results = list(client.send_many([("aboutyou", _cancel(n)) for n in range(3)]))
    assert len(results) == 3
    for result in results:
        assert isinstance(result.error, ConfigurationError)
        assert "pw-Bulk-1" not in str(result.error)
    assert sandbox.emulators["aboutyou"].batches == {}


# --- keys: never shared by two credentials, never split for one ----------------------


def test_two_credentials_never_share_and_one_credential_never_splits(redis_url: str) -> None:
    stores = [open_store(redis_url, "limiter_url") for _ in range(2)]
    provider = iter(stores)

    def take(credential: str) -> bool:
        store = next(provider, stores[0])
        with ratelimit.limits_from(lambda: store):
            limiter = ratelimit.shared_limiter("aboutyou", "cancel", credential, 1, 60.0)
        assert isinstance(limiter, ratelimit_redis.RedisWindowLimiter)
        return bool(store.hit(limiter._item, limiter._identifiers))

    assert take("key-A") is True
    assert take("key-A") is False  # another store (process), same credential: one limit
    assert take("key-B") is True  # another credential: its own limit


# --- threads and imports -------------------------------------------------------------


def test_threads_racing_the_first_send_open_the_store_once(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def slow_open(url: str, where: str) -> Any:
        opened.append(url)
        time.sleep(0.05)
        return None

    monkeypatch.setenv("CANCELKIT_LIMITER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(limiterlocation, "open_store", slow_open)
    client = Client(config=sandbox.client_config(), ledger=False)
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def run() -> None:
        barrier.wait()
        seen.append(client._limits())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened == ["redis://127.0.0.1:1/0"] and seen == [None] * 8


def test_importing_cancelkit_loads_neither_redis_nor_limits() -> None:
    code = (
        "import sys, cancelkit, cancelkit.plugin, cancelkit.cli, cancelkit.core.client;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'limits')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
