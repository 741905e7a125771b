"""Cluster mode attacked as a careless user or an attacker would: bad broker URLs,
secrets in them, messages delivered twice at once, tricky numbers in queued requests,
a whole service signalled to stop mid-send, ``python -m celery`` from a checkout.

What a test concludes about sends comes from the emulator's own request log (or the
ledger), never from the tool's report alone.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from bulkhelp import cli, job_id
from kombu.serialization import loads
from ledgerhelp import cancels, example, logged_sandbox, plant_claim, sandbox_client
from pgserver import free_port
from test_sandbox_command import cancelkit_command, clean_environment, start_sandbox, stop

from cancelkit.cluster import tasks
from cancelkit.cluster.app import QUEUE, make_app
from cancelkit.cluster.settings import broker_problem
from cancelkit.core import jsonutil
from cancelkit.core.ledger.location import ledger_url
from cancelkit.core.ledger.store import Ledger
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD = 120.0
SECRET = "Zq7-s3cr3t-Pw"


def write_lines(path: Path, requests: list[dict[str, Any]]) -> bytes:
    text = "".join(jsonutil.dumps(r) + "\n" for r in requests)
    path.write_text(text, encoding="utf-8")
    return text.encode("utf-8")


def listed(job: str) -> bool:
    """True when the CLI's ledger lists ``job``."""
    with Ledger(ledger_url()) as ledger:
        return ledger.find_job(job) is not None


def queued_messages(url: str) -> list[dict[str, Any]]:
    server = redis.Redis.from_url(url)
    try:
        return [json.loads(raw) for raw in server.lrange(QUEUE, 0, -1)]
    finally:
        server.close()


def decode(message: dict[str, Any]) -> list[Any]:
    """The task arguments a worker decodes from a raw Redis message (kombu's JSON)."""
    body = base64.b64decode(message["body"])
    args, _kwargs, _embed = loads(body, message["content-type"], message["content-encoding"])
    return list(args)


# -- bad broker URLs: exit 2 naming --queue, nothing listed, nothing queued -------------
BAD_URLS = {
    # A password holding "/", "#", "?" or "@" not percent-encoded: kombu reads a
    # piece of it as the database; was exit 4 "cannot be reached", job listed.
    "unencoded": f"redis://:{SECRET}/x#y?z@127.0.0.1:6379/0",
    # The password twice (user part and query): was an internal error (exit 70).
    "twice": f"redis://:{SECRET}@127.0.0.1:6379/0?password={SECRET}",
    # No scheme: kombu took it for an AMQP host name.
    "no scheme": "queue.internal",
    # A bad port: was an internal error (exit 70).
    "port": f"redis://:{SECRET}@127.0.0.1:99999/0",
    # An unknown transport: was an internal error (exit 70).
    "transport": f"foo://user:{SECRET}@host/",
    # A transport whose package is not installed: was an internal error (exit 70).
    "not installed": f"sqs://AKIAEXAMPLE:{SECRET}@",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_bad_broker_url_is_bad_input_and_nothing_is_listed_or_queued(
    url: str, tmp_path: Path
) -> None:
    data = write_lines(tmp_path / "job.jsonl", [{**example("carriyo"), "platform": "carriyo"}])
    done = cli("bulk", str(tmp_path / "job.jsonl"), "--queue", url)
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith("error: --queue: "), done.stderr
    assert SECRET not in done.output and "Traceback" not in done.output
    assert not listed(job_id(data))  # the input was not even read
    assert broker_problem(url) is not None


def test_good_broker_urls_pass_the_check() -> None:
    for url in (
        "redis://127.0.0.1:6379/0",
        f"redis://:{SECRET.replace('-', '%2F')}@queue.internal:6379/15",
        "rediss://queue.internal:6380/1?ssl_cert_reqs=required",
        "sentinel://:pw@h1:26379;sentinel://:pw@h2:26379",
        "amqp://guest:guest@rabbit//",
        "memory://",
    ):
        assert broker_problem(url) is None, url


def test_an_unreachable_broker_exits_4_before_the_job_is_listed(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "job.jsonl", [{**example("carriyo"), "platform": "carriyo"}])
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    done = cli("bulk", str(tmp_path / "job.jsonl"), "--queue", url)
    assert done.exit_code == 4
    assert "broker_url redis://:***@127.0.0.1:" in done.stderr and SECRET not in done.output
    assert not listed(job_id(data))


def test_the_worker_refuses_a_bad_broker_url_with_exit_4(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import Celery

    monkeypatch.setattr(Celery, "start", lambda self, argv: pytest.fail("started"))
    monkeypatch.setenv("CANCELKIT_BROKER_URL", BAD_URLS["port"])
    done = cli("worker")
    assert done.exit_code == 4
    assert "error: broker_url (from $CANCELKIT_BROKER_URL) redis://:***@" in done.stderr
    assert "Port out of range" in done.stderr and SECRET not in done.output
    with pytest.raises(ConfigurationError, match="unknown broker transport"):
        make_app(BAD_URLS["transport"])


# -- secrets in Celery's own output -----------------------------------------------------
def test_celerys_connection_uris_mask_a_lone_user_part() -> None:
    # kombu masks only a password: ``redis://SECRET@host`` reached Celery's banner
    # (".> transport: redis://SECRET:**@...") and its "Cannot connect to" lines whole.
    app = make_app(f"redis://{SECRET}@127.0.0.1:6379/0")
    for connection in (
        app.connection(),
        app.connection_for_read(),
        app.connection_for_write(),
        app.connection_for_write().clone(),
    ):
        shown = connection.as_uri()
        assert SECRET not in shown and SECRET not in repr(connection)
        assert shown == "redis://***@127.0.0.1:6379/0"
        assert SECRET in connection.as_uri(include_password=True)  # still connects


def test_a_real_worker_never_prints_the_broker_secret(redis_url: str, tmp_path: Path) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    url = f"redis://{SECRET}@127.0.0.1:{port}/0"  # Redis refuses it: Celery logs the URL
    env = clean_environment(
        tmp_path, CANCELKIT_BROKER_URL=url,
        CANCELKIT_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )  # fmt: skip
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = subprocess.Popen(
            [*cancelkit_command(), "worker", "-P", "solo"],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: "Cannot connect to" in log.read_text(), log)
    finally:
        worker.terminate()
        worker.wait(timeout=HANG_GUARD)
    text = log.read_text()
    assert f".> transport:   redis://***@127.0.0.1:{port}/0" in text
    assert f"Cannot connect to redis://***@127.0.0.1:{port}/0" in text
    assert SECRET not in text


# -- the same message twice, at once ------------------------------------------------------
@pytest.fixture
def box() -> Iterator[tuple[Sandbox, list[str]]]:
    with logged_sandbox() as (sandbox, lines):
        yield sandbox, lines


def deliver_at_once(app: Any, platform: str, racers: int) -> list[dict[str, Any]]:
    """One ``cancelkit.send`` message run by ``racers`` threads at the same moment."""
    start = threading.Barrier(racers)
    results: list[dict[str, Any]] = []

    def deliver() -> None:
        start.wait(timeout=HANG_GUARD)
        results.append(app.tasks[tasks.SEND].apply(args=(platform, example(platform), "j")).get())

    threads = [threading.Thread(target=deliver) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG_GUARD)
    assert len(results) == racers, platform
    return results


def test_one_message_delivered_to_many_workers_at_once_is_sent_once(
    box: tuple[Sandbox, list[str]], postgres_url: str
) -> None:
    sandbox, lines = box
    app = make_app("memory://")
    # Each thread is a worker process of its own: its own client, one shared ledger.
    tasks.set_client_factory(lambda: sandbox_client(sandbox, ledger=postgres_url))
    try:
        for platform in ("carriyo", "salesforce", "mirakl"):
            results = deliver_at_once(app, platform, 4)
            assert len(cancels(lines, platform)) == 1, (platform, lines)  # the emulator
            assert sum(not r["held"] for r in results) == 1, results
            assert len({r["key"] for r in results}) == 1
        # About You deduplicates identical payloads (its documented "existing in-flight
        # ID"), and core resends an unanswered claim to it by design: a racer may post
        # again, but the platform keeps one batch, the same id for every sender.
        results = deliver_at_once(app, "aboutyou", 4)
        batches = {r["tracking_id"] for r in results if r["tracking_id"]}
        assert len(batches) == 1, results
    finally:
        tasks.set_client_factory(None)


@pytest.mark.parametrize("left", [False, True], ids=["died before it left", "died after"])
def test_a_task_redelivered_after_its_worker_died_sends_only_what_never_left(
    left: bool, box: tuple[Sandbox, list[str]], tmp_path: Path
) -> None:
    sandbox, lines = box
    app = make_app("memory://")
    client = sandbox_client(sandbox, ledger=f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    tasks.set_client_factory(lambda: client)
    try:
        ledger = client.ledger
        assert ledger is not None
        plant_claim(ledger, client, example("carriyo"), "carriyo", left=left)
        again = app.tasks[tasks.SEND].apply(args=("carriyo", example("carriyo"), "j")).get()
    finally:
        tasks.set_client_factory(None)
    if left:  # may have been applied: unknown, never resent, never retried
        assert again["held"] is True and again["outcome"] == "unknown"
        assert cancels(lines, "carriyo") == []
    else:  # never left: this delivery sends it, once
        assert again["held"] is False and again["outcome"] == "cancelled"
        assert len(cancels(lines, "carriyo")) == 1


# -- what is queued is what was checked ---------------------------------------------------
def tricky_requests() -> list[dict[str, Any]]:
    """Requests whose numbers and texts a JSON round trip could change."""
    mirakl = example("mirakl")
    line = mirakl["lines"][0]
    requests = []
    for n, (price, shipping) in enumerate(
        [("1E+2", "-0.0"), ("0.000000000001", "999999999999999999"), ("15.10", "8")]
    ):
        requests.append({
            **mirakl, "order_id": f"ORD-\u00e9\U0001f600-{n}", "platform": "mirakl",
            "lines": [{**line, "line_id": f"L\u0301-{n}", "price": price,
                       "shipping_price": shipping}],
        })  # fmt: skip
    # Decimal numbers (not strings) in the file: read as Decimal, queued as kombu's
    # tagged decimals.
    text = jsonutil.dumps(requests[0]).replace('"1E+2"', "1E+2").replace('"-0.0"', "-0.0")
    requests.append({**json.loads(text, parse_float=str), "order_id": "ORD-num"})
    return requests


def test_a_queued_message_sends_exactly_what_was_checked_and_twice_queued_sends_once(
    redis_url: str, box: tuple[Sandbox, list[str]], tmp_path: Path
) -> None:
    sandbox, lines = box
    path = tmp_path / "job.jsonl"
    raw = "".join(jsonutil.dumps(r) + "\n" for r in tricky_requests())
    raw = raw.replace('"price": "1E+2"', '"price": 1E+2', 1)  # a real JSON number too
    path.write_text(raw, encoding="utf-8")
    sandbox_config = sandbox.client_config()
    for platform, settings in sandbox_config.items():  # the enqueuer sees the same hosts
        for name, value in settings.items():
            os.environ[f"CANCELKIT_{platform.upper()}_{name.upper()}"] = str(value)
    try:
        for _ in range(2):  # the same job queued twice
            done = cli("bulk", str(path), "--queue", redis_url)
            assert done.exit_code == 0, done.output
    finally:
        for platform, settings in sandbox_config.items():
            for name in settings:
                os.environ.pop(f"CANCELKIT_{platform.upper()}_{name.upper()}", None)
    messages = [decode(m) for m in queued_messages(redis_url)]
    assert len(messages) == 2 * len(tricky_requests())
    app = make_app("memory://")
    client = sandbox_client(sandbox, ledger=f"sqlite:///{tmp_path / 'worker.sqlite3'}")
    tasks.set_client_factory(lambda: client)
    try:
        results = [app.tasks[tasks.SEND].apply(args=tuple(m)).get() for m in messages]
    finally:
        tasks.set_client_factory(None)
    for (_platform, request, _job, key), result in zip(messages, results, strict=True):
        # The worker's key is the one the enqueuer checked and listed: same request.
        assert result["key"] == key, (request, result)
    sent = [r for r in results if not r["held"]]
    assert len(sent) == len(tricky_requests()) and all(r["held"] for r in results[len(sent) :])
    assert len(cancels(lines, "mirakl")) == len(tricky_requests())


# -- a whole service signalled to stop, mid-send ------------------------------------------
def test_sigterm_to_every_process_of_the_worker_lets_the_send_finish(
    redis_url: str, tmp_path: Path
) -> None:
    # systemd's default KillMode=control-group (and kill -TERM -PGID) signals the pool
    # processes too; Celery left SIGTERM at its default there, so the pool process died
    # mid-send and the line was left unknown. It must finish and be recorded.
    sandbox = start_sandbox(tmp_path / "sandbox-state.json", tmp_path)
    env = clean_environment(
        tmp_path,
        **{k: v for k, v in sandbox.exports.items() if k != "CANCELKIT_LEDGER_URL"},
        CANCELKIT_LEDGER_URL=f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        CANCELKIT_BROKER_URL=redis_url,
    )
    log = tmp_path / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        with log.open("w") as output:
            worker = subprocess.Popen(
                [*cancelkit_command(), "worker", "-c", "1", "-P", "prefork"],
                env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        fault = json.dumps({"kind": "slow", "platform": "carriyo", "delay": 4}).encode()
        request = urllib.request.Request(
            sandbox.url + "/_sandbox/faults", data=fault, method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(request, timeout=HANG_GUARD).close()
        write_lines(tmp_path / "job.jsonl", [{**example("carriyo"), "platform": "carriyo"}])
        queued = subprocess.run(
            [*cancelkit_command(), "bulk", str(tmp_path / "job.jsonl"), "--queue", redis_url],
            env=env, capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr
        shared = Ledger(env["CANCELKIT_LEDGER_URL"])
        try:  # the cancel has left (claimed and marked leaving): the answer is 4 s away

            def left() -> bool:
                return any(e.in_flight and not e.never_left for e in shared.entries())

            wait_for(left, log)
        finally:
            shared.close()
        os.killpg(worker.pid, signal.SIGTERM)  # every process of the service
        worker.wait(timeout=HANG_GUARD)
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        received = stop(sandbox).splitlines()
    assert worker.returncode == 0, log.read_text()[-3000:]
    assert "WorkerLostError" not in log.read_text(), log.read_text()[-3000:]
    with Ledger(env["CANCELKIT_LEDGER_URL"]) as ledger:
        outcomes = [e.outcome for e in ledger.entries()]
    assert outcomes == ["cancelled"], log.read_text()[-3000:]
    assert len(cancels(received, "carriyo")) == 1


# -- python -m celery from a checkout -----------------------------------------------------
def test_python_m_celery_from_the_repository_root_runs_the_real_celery() -> None:
    # The repository root is the package: ``python -m celery`` found cancelkit's
    # celery.py as the script and failed on its relative import.
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "cancelkit.celery", "report"],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD,
        env={**os.environ, "CANCELKIT_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:1/0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "software -> celery:" in done.stdout
    assert "include:" in done.stdout or "broker_url" in done.stdout
    assert SECRET not in done.stdout + done.stderr


def wait_for(condition: Any, log: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
