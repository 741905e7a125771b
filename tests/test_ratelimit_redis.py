"""One rate limit across processes: ``limiter_url`` names a Redis server (a real
``redis-server``, started by the ``redis_server`` fixture) and every process that names
it shares each platform's limits; unset, limits stay in each process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from bulkhelp import cli
from redisserver import free_port

from cancelkit.core import ratelimit, ratelimit_redis
from cancelkit.core.client import Client
from cancelkit.core.limiterlocation import limiter_url, open_store, shown_url
from cancelkit.core.ratelimit_redis import RedisWindowLimiter
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import ConfigurationError, ServiceUnavailableError
from cancelkit.plugin import RateLimiter, SlidingWindowLimiter, shared_limiter
from cancelkit.plugins.aboutyou import adapter as aboutyou

#: One worker: waits for the go line, then takes ``count`` slots of one shared limit
#: (found through CANCELKIT_LIMITER_URL, as a client finds it) and prints their times.
_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from cancelkit.core.limiterlocation import limiter_url, open_store
    from cancelkit.core.ratelimit import limits_from
    from cancelkit.plugin import shared_limiter

    found = limiter_url()
    store = open_store(*found) if found else None
    limit, window, count = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    with limits_from(lambda: store):
        limiter = shared_limiter("aboutyou", "cancel", "one-api-key", limit, window)
    print(type(limiter).__name__, flush=True)
    sys.stdin.readline()
    times = []
    for _ in range(count):
        limiter.acquire(time.monotonic, time.sleep)
        times.append(time.time())
    print(json.dumps(times), flush=True)
    """
)


def _most_in_any_window(times: list[float], window: float) -> int:
    """The most timestamps in any half-open span of ``window`` seconds."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def _run_workers(env: dict[str, str], limit: int, window: float, count: int) -> list[float]:
    """Two worker processes started together; every slot time they took, sorted."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(limit), str(window), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    kinds = {w.stdout.readline().strip() for w in workers if w.stdout}  # both are ready
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    times: list[float] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        times += json.loads(out)
    assert len(kinds) == 1
    env["KIND"] = kinds.pop()
    return sorted(times)


def _worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANCELKIT_")}
    return {**env, **extra}


def test_two_processes_sharing_one_limit_never_exceed_it(redis_url: str) -> None:
    limit, window, count = 4, 1.0, 10
    env = _worker_env(CANCELKIT_LIMITER_URL=redis_url)
    times = _run_workers(env, limit, window, count)
    assert env["KIND"] == "RedisWindowLimiter"
    # Shared windows are kept a margin longer than asked, against arrival jitter.
    kept = window + ratelimit_redis.ARRIVAL_MARGIN
    # The slot is taken in Redis a moment before the worker reads its clock: 20 ms of
    # slack for that, far less than the gap a broken limit would leave.
    assert _most_in_any_window(times, kept - 0.02) <= limit
    # ...and the limit is used, not merely respected: 20 slots at 4 a window.
    assert times[-1] - times[0] >= (2 * count / limit - 1) * kept - 0.05
    assert times[-1] - times[0] < (2 * count / limit + 1) * kept


def test_without_limiter_url_each_process_keeps_its_own_limit() -> None:
    # The same two workers with no setting: each keeps 4 a second, so together 8.
    env = _worker_env()
    times = _run_workers(env, 4, 1.0, 4)
    assert env["KIND"] == "SlidingWindowLimiter"
    assert _most_in_any_window(times, 0.5) == 8


def test_in_process_is_the_default(sandbox: Sandbox) -> None:
    limiter = shared_limiter("aboutyou", "cancel", "key", 50, 60.0)
    assert isinstance(limiter, SlidingWindowLimiter)
    assert shared_limiter("aboutyou", "cancel", "key", 50, 60.0) is limiter
    assert limiter_url(env={}) is None
    client = Client(config=sandbox.client_config(), env={})
    settings = client.settings("aboutyou")
    with ratelimit.limits_from(client._limits):  # as the sender asks the adapter
        mine = aboutyou.AboutYouAdapter().rate_limiter(_post(), settings)
    assert isinstance(mine, SlidingWindowLimiter)
    assert mine is shared_limiter("aboutyou", "cancel", settings["api_key"], 50, 60.0)
    assert client.send(_cancel(1), "aboutyou").outcome == "accepted"


def test_redis_limiter_is_a_rate_limiter(redis_url: str) -> None:
    store = open_store(redis_url, "limiter_url")
    limiter: RateLimiter = store.limiter("p", "e", "d", 2, 1.5)
    assert isinstance(limiter, RedisWindowLimiter)
    waits: list[float] = []
    assert [limiter.acquire(lambda: 0.0, waits.append) for _ in range(2)] == [0.0, 0.0]
    assert waits == []  # two free slots, no wait


def test_aboutyou_waits_for_a_slot_another_process_took(
    redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aboutyou, "CANCEL_LIMIT_PER_MINUTE", 2)
    api_key = sandbox.client_config()["aboutyou"]["api_key"]
    # "Another worker" took the API key's two cancels of this minute, through Redis.
    other = open_store(redis_url, "limiter_url")
    for _ in range(2):
        assert (
            other.limiter("aboutyou", "cancel", _digest(api_key), 2, 60.0).acquire(
                lambda: 0.0, lambda s: None
            )
            == 0.0
        )
    ratelimit.reset_all()  # nothing of it is kept in this process

    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the minute passes: Redis forgets the slots
        waits.append(seconds)
        import redis

        with redis.Redis.from_url(redis_url) as connection:
            connection.flushall()

    monkeypatch.setenv("CANCELKIT_LIMITER_URL", redis_url)
    client = Client(config=sandbox.client_config(), sleep=sleep)
    assert client.send(_cancel(1), "aboutyou").outcome == "accepted"
    assert len(waits) == 1 and 55.0 < waits[0] <= 60.0 + ratelimit_redis.ARRIVAL_MARGIN
    assert len(sandbox.emulators["aboutyou"].batches) == 1

    # The same client with no setting does not know of the other worker: no wait.
    other.limiter("aboutyou", "cancel", _digest(api_key), 2, 60.0).acquire(
        lambda: 0.0, lambda s: None
    )
    local = Client(config=sandbox.client_config(), env={}, sleep=sleep)
    waits.clear()
    assert local.send(_cancel(2), "aboutyou").outcome == "accepted"
    assert waits == []


def test_unreachable_redis_is_a_configuration_error_and_nothing_is_sent(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("CANCELKIT_LIMITER_URL", url)
    client = Client(config=sandbox.client_config())
    with pytest.raises(ConfigurationError) as caught:
        client.send(_cancel(1), "aboutyou")
    assert isinstance(caught.value, ServiceUnavailableError)  # an outage: a worker retries
    message = str(caught.value)
    assert "limiter_url (from $CANCELKIT_LIMITER_URL)" in message
    assert "redis://:***@127.0.0.1:" in message and "s3cret-pw" not in message
    assert "nothing was sent" in message
    assert sandbox.emulators["aboutyou"].batches == {}


def test_the_cli_exits_4_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"redis://user:s3cret-pw@127.0.0.1:{free_port()}"
    monkeypatch.setenv("CANCELKIT_LIMITER_URL", url)
    result = cli("send", "--sandbox", "-p", "aboutyou", "-", stdin=json.dumps(_cancel(1)))
    assert result.exit_code == 4, result.output
    assert "limiter_url" in result.stderr and "user:***@127.0.0.1" in result.stderr
    assert "s3cret-pw" not in result.output + result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_password_or_scheme_is_refused_masked(redis_url: str, tmp_path: Path) -> None:
    wrong = redis_url.replace("redis://", "redis://:n0t-it@")
    with pytest.raises(ConfigurationError) as caught:
        open_store(wrong, "limiter_url")
    assert "limiter_url redis://:***@" in str(caught.value) and "n0t-it" not in str(caught.value)

    config = tmp_path / "config.toml"
    config.write_text('[default]\nlimiter_url = "http://me:pw-x@example.invalid/?password=pw-y"\n')
    found = limiter_url(env={}, config_path=config)
    assert found is not None
    with pytest.raises(ConfigurationError) as caught:
        open_store(*found)
    message = str(caught.value)
    assert f"config file {config}: [default] limiter_url" in message
    assert "must be a redis:// or rediss:// URL" in message
    assert "pw-x" not in message and "pw-y" not in message


def test_a_sandbox_reads_no_config_file_limiter_url(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config file names a Redis nobody runs: a sandbox client never looks there.
    config = tmp_path / "xdg-config" / "cancelkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[default]\nlimiter_url = "redis://127.0.0.1:{free_port()}"\n')
    assert limiter_url() is not None  # a real-mode client would use it
    client = Client(config=sandbox.client_config())
    assert client.send(_cancel(1), "aboutyou").outcome == "accepted"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:pw@h/1", "rediss://user:***@h/1"),
        ("redis://pw@h", "redis://***@h"),
        ("redis://h:6379/0?password=pw&db=2", "redis://h:6379/0?password=***&db=2"),
        ("redis://h:6379", "redis://h:6379"),
    ],
)
def test_shown_url_masks_every_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def _digest(credential: str) -> str:
    import hashlib

    return hashlib.sha256(credential.encode()).hexdigest()[:16]


def _cancel(n: int) -> dict[str, Any]:
    return {"lines": [{"line_id": str(7000 + n), "quantity": 1}]}


def _post() -> Any:
    from cancelkit.plugin import HttpCall

    return HttpCall("POST", "http://127.0.0.1/orders/cancel")


def test_an_unreachable_redis_is_not_tried_again_for_every_request(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk run against a Redis that is gone fails each request at once, not after a
    connection attempt each; after LIMITER_RETRY_SECONDS the store is tried again."""
    from cancelkit.core import client as client_module
    from cancelkit.core import limiterlocation

    tries: list[str] = []
    real_open = limiterlocation.open_store

    def counted(url: str, where: str) -> Any:
        tries.append(url)
        return real_open(url, where)

    monkeypatch.setattr(limiterlocation, "open_store", counted)
    monkeypatch.setenv("CANCELKIT_LIMITER_URL", f"redis://:pw@127.0.0.1:{free_port()}/0")
    client = Client(config=sandbox.client_config())
    for n in range(3):
        with pytest.raises(ConfigurationError, match="limiter_url"):
            client.send(_cancel(n), "aboutyou")
    assert len(tries) == 1  # the later requests were refused without a new attempt
    monkeypatch.setattr(client_module, "LIMITER_RETRY_SECONDS", 0.0)
    with pytest.raises(ConfigurationError, match="limiter_url"):
        client.send(_cancel(9), "aboutyou")
    assert len(tries) == 2
    assert sandbox.emulators["aboutyou"].batches == {}


def test_status_pacing_is_kept_in_redis_for_every_worker(
    redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mirakl allows one status call a minute per action: a second worker asking about
    the same action waits for the minute the first worker's call started."""
    import redis

    from cancelkit.core import jsonutil

    monkeypatch.setenv("CANCELKIT_LIMITER_URL", redis_url)
    request = jsonutil.loads((Path(__file__).parent.parent / "examples/mirakl.json").read_text())
    first = Client(config=sandbox.client_config(), sleep=lambda s: None)
    accepted = first.send(request, "mirakl")
    assert accepted.outcome == "accepted" and accepted.tracking_id
    first.status("mirakl", accepted.tracking_id)  # this worker's call of the minute
    ratelimit.reset_all()  # the second worker is another process: nothing shared in memory

    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the minute passes, for Redis and the emulator
        waits.append(seconds)
        sandbox.advance(seconds)
        with redis.Redis.from_url(redis_url) as connection:
            connection.flushall()

    second = Client(config=sandbox.client_config(), sleep=sleep)
    second.status("mirakl", accepted.tracking_id)
    assert len(waits) == 1 and 55.0 < waits[0] <= 60.0 + ratelimit_redis.ARRIVAL_MARGIN, waits
    statuses = [a["polls"] for a in sandbox.emulators["mirakl"].actions.values()]
    assert statuses == [2]  # both calls reached the emulator, a minute apart
