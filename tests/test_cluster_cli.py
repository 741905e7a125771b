"""Cluster mode from the command line: ``cancelkit bulk FILE --queue URL`` and
``cancelkit worker`` (docs/cluster.md), on a real Redis.

The last test runs the whole thing once, as a deployment would: a standalone sandbox
in its own process, a real ``cancelkit worker --concurrency 2`` subprocess, jobs queued
on Redis, followed with ``cancelkit bulk report``; and judged by what the emulators
received (each cancel exactly once, a second queueing of the job included).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from bulkhelp import cli, job_id
from ledgerhelp import cancels, example
from pgserver import free_port
from test_sandbox_command import cancelkit_command, clean_environment, start_sandbox, stop

from cancelkit.cluster.app import QUEUE
from cancelkit.cluster.tasks import SEND
from cancelkit.core import jsonutil

#: Hang guards for subprocesses and polling: a hang fails the test, never blocks the run.
HANG_GUARD = 120.0
#: The platforms of the smoke job: About You answers asynchronously (followed by
#: ``cancelkit.follow_status``), Carriyo and Salesforce synchronously. Mirakl's first
#: status poll waits its one-a-minute limit: tests/test_cluster_tasks.py covers it.
SMOKE_PLATFORMS = ("aboutyou", "carriyo", "salesforce")
FINAL = ("cancelled", "rejected", "partial", "unknown")


def write_job(path: Path, platforms: tuple[str, ...] = SMOKE_PLATFORMS) -> bytes:
    """A JSON Lines job: each platform's example request; its bytes."""
    text = "".join(jsonutil.dumps({**example(p), "platform": p}) + "\n" for p in platforms)
    path.write_text(text, encoding="utf-8")
    return text.encode("utf-8")


def queued_tasks(url: str) -> list[dict[str, Any]]:
    """The messages waiting on the ``cancelkit`` queue of the Redis at ``url``."""
    server = redis.Redis.from_url(url)
    try:
        return [json.loads(raw) for raw in server.lrange(QUEUE, 0, -1)]
    finally:
        server.close()


# -- cancelkit bulk FILE --queue --------------------------------------------------------
def test_bulk_queue_lists_the_job_and_queues_one_send_per_request(
    redis_url: str, tmp_path: Path
) -> None:
    data = write_job(tmp_path / "job.jsonl")
    job = job_id(data)
    done = cli("bulk", str(tmp_path / "job.jsonl"), "--queue", redis_url)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        f"bulk job {job}: 3 requests queued on {redis_url}",
        f"follow it: cancelkit bulk report {job}",
    ]
    messages = queued_tasks(redis_url)
    assert [m["headers"]["task"] for m in messages] == [SEND] * 3
    platforms = sorted(m["headers"]["argsrepr"].split("'")[1] for m in messages)
    assert platforms == sorted(SMOKE_PLATFORMS)
    # Listed in the ledger, not sent: the report already knows each line.
    report = cli("bulk", "report", job, "--format", "json")
    rows = [json.loads(line) for line in report.stdout.splitlines()]
    assert [(r["platform"], r["outcome"]) for r in rows] == [
        (p, "not sent") for p in SMOKE_PLATFORMS
    ]


def test_bulk_queue_refuses_bad_input_and_queues_nothing(redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = jsonutil.dumps({**example("carriyo"), "platform": "carriyo"})
    bad = jsonutil.dumps({**example("mirakl"), "currency": "EURO", "platform": "mirakl"})
    path.write_text(f"{good}\n{bad}\n", encoding="utf-8")
    done = cli("bulk", str(path), "--queue", redis_url)
    assert done.exit_code == 2
    assert "line 2: currency" in done.stderr
    assert queued_tasks(redis_url) == []


@pytest.mark.parametrize("flag", ["--sandbox", "--wait"])
def test_queue_with_sandbox_or_wait_is_a_usage_error(
    flag: str, redis_url: str, tmp_path: Path
) -> None:
    write_job(tmp_path / "job.jsonl")
    done = cli("bulk", str(tmp_path / "job.jsonl"), "--queue", redis_url, flag)
    assert done.exit_code == 2
    assert f"--queue: cannot be combined with {flag}" in done.stderr
    assert queued_tasks(redis_url) == []


def test_an_unreachable_broker_exits_4_naming_broker_url_without_its_password(
    tmp_path: Path,
) -> None:
    write_job(tmp_path / "job.jsonl")
    url = f"redis://:hunter2hunter2@127.0.0.1:{free_port()}/0"
    done = cli("bulk", str(tmp_path / "job.jsonl"), "--queue", url)
    assert done.exit_code == 4
    assert "error: broker_url redis://:***@127.0.0.1:" in done.stderr
    assert "cannot be reached" in done.stderr and "hunter2" not in done.output


# -- cancelkit worker -------------------------------------------------------------------
def test_worker_is_listed_and_its_help_gives_the_celery_line() -> None:
    assert "worker" in cli("--help").stdout
    shown = cli("worker", "--help")
    assert shown.exit_code == 0
    assert "celery -A cancelkit.celery worker --concurrency 4" in shown.stdout


def test_worker_runs_celery_with_cancelkits_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from celery import Celery

    started: list[tuple[str, list[str]]] = []

    def start(self: Celery, argv: list[str]) -> int:
        started.append((str(self.conf.broker_url), argv))
        return 0

    monkeypatch.setattr(Celery, "start", start)
    for name in ("CANCELKIT_CONFIG", "CANCELKIT_PROFILE"):  # what the worker sets: undone
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text('[night]\nbroker_url = "redis://:s3cretpass@queue.internal:6379/3"\n')
    done = cli("--config", str(config), "--profile", "night", "worker", "-c", "3", "-P", "solo")
    assert done.exit_code == 0, done.output
    assert started == [
        (
            "redis://:s3cretpass@queue.internal:6379/3",
            ["worker", "--loglevel=INFO", "--pool=solo", "--queues=cancelkit", "--concurrency=3"],
        )
    ]
    assert "broker redis://:***@queue.internal:6379/3 (config file" in done.stderr
    assert "s3cretpass" not in done.output
    # Pool processes read the same config file and profile.
    assert os.environ["CANCELKIT_CONFIG"] == str(config)
    assert os.environ["CANCELKIT_PROFILE"] == "night"
    # One machine's SQLite ledger and per-process limits: said, not hidden.
    assert "warning: the ledger is an SQLite file" in done.stderr
    assert "warning: limiter_url is not set" in done.stderr


def test_worker_with_an_unusable_ledger_exits_4_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from celery import Celery

    monkeypatch.setattr(Celery, "start", lambda self, argv: pytest.fail("started"))
    url = f"postgresql://cancelkit:pg-pass-word@127.0.0.1:{free_port()}/cancelkit"
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", url)
    done = cli("worker")
    assert done.exit_code == 4
    assert "cannot be used" in done.stderr and "pg-pass-word" not in done.output


# -- the whole thing, once --------------------------------------------------------------
def test_smoke_a_real_worker_sends_a_queued_job_exactly_once(
    redis_url: str, tmp_path: Path
) -> None:
    sandbox = start_sandbox(tmp_path / "sandbox-state.json", tmp_path)
    worker: subprocess.Popen[str] | None = None
    log = tmp_path / "worker.log"
    env = clean_environment(
        tmp_path,
        **{k: v for k, v in sandbox.exports.items() if k != "CANCELKIT_LEDGER_URL"},
        CANCELKIT_LEDGER_URL=f"sqlite:///{tmp_path / 'shared-ledger.sqlite3'}",
        CANCELKIT_BROKER_URL=redis_url,
        CANCELKIT_LIMITER_URL=redis_url,
    )
    try:
        job = job_id(write_job(tmp_path / "job.jsonl"))

        def command(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*cancelkit_command(), *args], env=env, capture_output=True, text=True,
                timeout=HANG_GUARD,
            )  # fmt: skip

        queued = command("bulk", str(tmp_path / "job.jsonl"), "--queue", redis_url)
        assert queued.returncode == 0, queued.stderr
        # The broker loses its data before any worker ran (a Redis with no persistence
        # restarted): the job's lines are listed, never claimed, and no task is left.
        with redis.Redis.from_url(redis_url) as connection:
            connection.flushall()
        lost = command("bulk", "report", job, "--format", "json")
        assert [json.loads(r)["outcome"] for r in lost.stdout.splitlines()] == ["not sent"] * 3
        # Queueing the same file again queues exactly those lines.
        again = command("bulk", str(tmp_path / "job.jsonl"), "--queue", redis_url)
        assert again.returncode == 0 and "3 requests queued" in again.stdout, again.stdout
        with log.open("w") as output:
            worker = subprocess.Popen(
                [*cancelkit_command(), "worker", "--concurrency", "2", "--loglevel", "INFO"],
                env=env, stdout=output, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        rows = follow(command, job)
        assert [(r["platform"], r["outcome"]) for r in rows] == [
            (p, "cancelled") for p in SMOKE_PLATFORMS
        ]
        # The same job queued again: every line is settled in the ledger, none queued.
        again = command("bulk", str(tmp_path / "job.jsonl"), "--queue", redis_url)
        assert again.returncode == 0, again.stderr
        assert "0 requests queued" in again.stdout
        assert "(3 settled in the ledger, not queued again)" in again.stdout
    finally:
        if worker is not None:
            worker.terminate()  # a warm shutdown, as systemd stops it
            try:
                worker.wait(timeout=HANG_GUARD)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        received = stop(sandbox).splitlines()
    assert worker.returncode == 0, log.read_text()[-3000:]
    for platform in SMOKE_PLATFORMS:
        assert len(cancels(received, platform)) == 1, (platform, received)
    secrets = [v for k, v in env.items() if k.endswith(("_SECRET", "_API_KEY"))]
    assert secrets and not [s for s in secrets if s in log.read_text()]  # never printed


def follow(command: Any, job: str) -> list[dict[str, Any]]:
    """``cancelkit bulk report JOB --format json`` until every line is final."""
    deadline = time.monotonic() + HANG_GUARD
    while True:
        report = command("bulk", "report", job, "--format", "json")
        rows = [json.loads(line) for line in report.stdout.splitlines()]
        if rows and all(r["outcome"] in FINAL for r in rows):
            return rows
        assert time.monotonic() < deadline, f"job {job} not final: {rows} {report.stderr}"
        time.sleep(0.5)


def wait_for(condition: Any, log: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
