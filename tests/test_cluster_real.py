"""Cluster mode against real servers: real ``redis-server`` (broker and shared limiter),
real PostgreSQL (the shared ledger), real ``cancelkit worker`` processes, and the
sandbox, seeded with many orders, as the five platforms (tests/clusterhelp.py).

What each test concludes comes from the emulators' own state, fetched from the sandbox
process after the job (Mirakl's actions, Carriyo's removed quantities, About You's
batches and cancel log, Salesforce's quantities), and from the shared ledger - never
from the requests sent. A missing server binary FAILS these tests (never a skip):
.ci/run installs redis-server and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clusterhelp as ch
import pytest

if TYPE_CHECKING:
    from pgserver import PostgresServer

pytestmark = pytest.mark.cluster

#: Seeded orders per platform in the big job: 5 x 200 = 1,000 cancels.
ORDERS = 200
WORKERS = 4
#: About You's cancel limit in the test (the documented one is 50/60): short, so the
#: job stays quick and crosses many windows.
AY_LIMIT, AY_WINDOW = 20, 2.0
#: How long a whole job may take before the test gives up (it takes ~30 s here).
JOB_DEADLINE = 240.0


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """``redis-server`` on PATH; its absence FAILS the test (never a skip)."""
    from redisserver import RedisUnavailable, find_binary

    try:
        return find_binary()
    except RedisUnavailable as error:
        missing = str(error)
    pytest.fail(missing, pytrace=False)


@pytest.fixture
def redis(redis_binary: str) -> Iterator[ch.RestartableRedis]:
    """A Redis of this test's own (broker and limiter), restartable on its port."""
    with ch.RestartableRedis() as server:
        yield server


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch directory for the job file, the logs and the state dumps."""
    with ch.workdir() as path:
        yield path


@dataclass
class Run:
    """One job through the cluster, and what the servers held afterwards."""

    job: str
    ledger: ch.JobState
    counts: ch.Counts
    state: dict[str, Any]
    environment: dict[str, str]
    seconds: float
    logs: str
    #: Lines found never claimed with no task left to send them (lost by the broker),
    #: queued again by running ``bulk --queue`` on the same file (``recover_after``).
    requeued: int = 0


def run_job(
    *,
    orders: int,
    work: Path,
    broker: str,
    ledger_url: str,
    aboutyou_limit: str | None = None,
    extra: dict[str, str] | None = None,
    during: Any = None,
    recover_after: float | None = None,
    before: Any = None,
) -> Run:
    """Seed a sandbox, start the workers, queue one request per seeded order with
    ``cancelkit bulk --queue``, wait for the ledger to show the job finished, and read
    the emulators. ``during(sandbox, workers, ledger_url, job)`` runs once the job is
    queued (faults, kills, restarts); ``before(sandbox)`` before it is queued;
    ``recover_after``: see :func:`_wait_or_requeue`."""
    settings = {"CANCELKIT_ABOUTYOU_POLL_INTERVAL": "3", **(extra or {})}
    if aboutyou_limit:
        settings["CANCELKIT_ABOUTYOU_CANCEL_LIMIT"] = aboutyou_limit
    with ch.SandboxProcess(orders, work, aboutyou_limit=aboutyou_limit) as sandbox:
        environment = ch.worker_environment(
            sandbox, broker=broker, ledger=ledger_url, extra=settings
        )
        job = ch.write_jsonl(work / "cancels.jsonl", ch.requests_for(orders))
        with ch.Workers(WORKERS, environment, work) as workers:
            if before is not None:
                before(sandbox)
            began = time.monotonic()
            queued = ch.enqueue(work / "cancels.jsonl", environment)
            assert queued.returncode == 0, queued.stderr
            assert f"{orders * len(ch.PLATFORMS)} requests queued" in queued.stdout
            if during is not None:
                during(sandbox, workers, ledger_url, job)
            requeued = 0
            if recover_after is None:
                state = ch.wait_for_job(
                    ledger_url, job, deadline=time.monotonic() + JOB_DEADLINE, workers=workers
                )
            else:
                state, requeued = _wait_or_requeue(
                    ledger_url, job, workers, environment, work, recover_after
                )
            seconds = time.monotonic() - began
            logs = "\n".join(workers.log(n)[-3000:] for n in range(WORKERS))
        assert state.finished, f"job not finished in {JOB_DEADLINE:g} s: {state}\n{logs}"
        sandbox.settle()
        dumped = sandbox.dump()
    counts = ch.emulator_counts(dumped, orders)
    return Run(job, state, counts, dumped, environment, seconds, logs, requeued)


def _wait_or_requeue(
    ledger_url: str,
    job: str,
    workers: ch.Workers,
    environment: dict[str, str],
    work: Path,
    stall: float,
) -> tuple[ch.JobState, int]:
    """Wait for the job; when it stops moving for ``stall`` seconds with only lines never
    claimed left (their tasks lost by the broker), do what docs/cluster.md tells an
    operator: queue the same file again (only the unsettled lines go). Once at most."""
    deadline = time.monotonic() + JOB_DEADLINE
    requeued, last, since = 0, -1, time.monotonic()
    while True:
        state = ch.job_state(ledger_url, job, workers.pids())
        if state.finished or time.monotonic() > deadline:
            return state, requeued
        settled = state.total - state.outcomes["not claimed"] - state.outcomes["in flight"]
        if settled != last:
            last, since = settled, time.monotonic()
        stuck = state.outcomes["not claimed"] and not state.outcomes["in flight"]
        if stuck and not requeued and time.monotonic() - since > stall:
            requeued = state.outcomes["not claimed"]
            again = ch.enqueue(work / "cancels.jsonl", environment)
            assert again.returncode == 0, again.stderr
        time.sleep(0.25)


# -- 1,000 cancels over the five platforms through 4 worker processes ----------------------
@pytest.fixture(scope="module")
def thousand(postgres_server: PostgresServer, redis_binary: str) -> Iterator[Run]:
    """The big job, run once for the tests below."""
    ledger_url = postgres_server.create_database()
    try:
        with ch.workdir() as work, ch.RestartableRedis() as redis:
            yield run_job(
                orders=ORDERS,
                work=work,
                broker=redis.url,
                ledger_url=ledger_url,
                aboutyou_limit=f"{AY_LIMIT}/{AY_WINDOW:g}",
            )
    finally:
        postgres_server.drop_database(ledger_url.rsplit("/", 1)[1])


def test_a_thousand_cancels_each_cancelled_exactly_once_by_the_emulators_counts(
    thousand: Run,
) -> None:
    counts = thousand.counts
    assert sum(len(applied) for applied in counts.applied.values()) == 1000
    assert counts.all_once(), counts.summary()
    # Mirakl and About You keep a record of every call: each order was asked for once.
    assert set(counts.received["mirakl"]) == {1}
    assert set(counts.received["aboutyou"]) == {1}
    # The ledger agrees: every request answered, none unknown, none rejected.
    assert thousand.ledger.total == 1000
    assert set(thousand.ledger.outcomes) <= {"accepted", "cancelled"}, thousand.ledger
    assert thousand.ledger.died == []


def test_about_you_across_four_workers_never_exceeds_its_limit_in_any_window(
    thousand: Run,
) -> None:
    calls = ch.aboutyou_calls(thousand.state)
    statuses = Counter(call["status"] for call in calls)
    # What the platform saw: every cancel call it received, refused ones included.
    most = ch.most_in_a_window([call["at"] for call in calls], AY_WINDOW)
    assert statuses[200] == ORDERS
    assert most <= AY_LIMIT, f"{most} About You cancels in one {AY_WINDOW:g} s window"
    assert statuses[429] == 0, f"About You refused {statuses[429]} cancels as over its limit"


# -- faults --------------------------------------------------------------------------------
def test_sigkill_of_workers_mid_task_sends_nothing_twice_and_loses_nothing(
    work: Path, redis: ch.RestartableRedis, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = 30
    killed: dict[str, Any] = {}

    def kill_mid_task(
        sandbox: ch.SandboxProcess, workers: ch.Workers, ledger: str, job: str
    ) -> None:
        # Answers held back 2 s (the cancel is applied first): calls are in flight.
        for platform in ("mirakl", "carriyo", "salesforce"):
            sandbox.inject(kind="slow", platform=platform, count=orders, delay=2.0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until both victims have a task in flight
            owners = {pid for _, pid, _ in ch.in_flight(ledger, job)}
            if owners & set(workers.pool_children(0)) and owners & {
                workers.processes[1].pid,
                *workers.pool_children(1),
            }:
                break
            time.sleep(0.05)
        killed["in flight"] = ch.in_flight(ledger, job)
        killed["pool child of worker 0"] = pool = workers.pool_children(0)
        for pid in pool:
            os.kill(pid, signal.SIGKILL)
        killed["worker 1"] = [workers.processes[1].pid, *workers.pool_children(1)]
        workers.kill(1)

    run = run_job(
        orders=orders,
        work=work,
        broker=redis.url,
        ledger_url=postgres_url,
        aboutyou_limit="5/1",  # workers also die waiting for About You's limiter
        extra={"CANCELKIT_VISIBILITY_TIMEOUT": "5"},
        during=kill_mid_task,
    )
    dead = set(killed["pool child of worker 0"]) | set(killed["worker 1"])
    assert dead, "nothing was killed"
    in_flight_at_kill = [k for k, pid, _ in killed["in flight"] if pid in dead]
    never_left = {k for k, pid, left in killed["in flight"] if pid in dead and not left}
    assert in_flight_at_kill, f"no killed process had a task in flight: {killed}"

    counts = run.counts
    # Never sent twice: no order applied more than once.
    for platform in ch.PLATFORMS:
        assert max(counts.applied[platform]) <= 1, (platform, counts.summary())
    # Never lost: each request is applied once, or unknown in the ledger because its
    # call may have left when its worker died - and then listed by `ledger list --unknown`.
    keys = _keys_by_order(run)
    unknown = set(run.ledger.died)
    listed = ch.unknown_in_ledger_list(run.environment)
    lost = []
    for platform in ch.PLATFORMS:
        for number, applied in enumerate(counts.applied[platform]):
            key = keys[platform][number]
            if applied == 1:
                continue
            if key in unknown and ch.short_key(key) in listed:
                continue
            lost.append((platform, number, key))
    assert lost == [], lost
    for key in unknown:
        assert ch.short_key(key) in listed, (key, listed)
    ended = Counter(
        "cancelled once" if applied == 1 else "unknown (call left, worker killed)"
        for platform in ch.PLATFORMS
        for applied in counts.applied[platform]
    )
    with capsys.disabled():
        print(
            f"\nSIGKILL: {len(in_flight_at_kill)} tasks of killed processes in flight "
            f"({len(never_left)} of them before their call left, of which "
            f"{len(never_left - unknown)} were sent later by a redelivery); "
            f"job took {run.seconds:.0f} s; "
            f"{dict(ended)}; unknown in the ledger: {len(unknown)} "
            f"(of them applied on the platform: "
            f"{sum(1 for k in unknown if _applied(run, keys, k))}); "
            f"About You calls received twice: {counts.received['aboutyou'].count(2)}"
        )


def test_a_redis_restart_mid_job_is_survived(
    work: Path, redis: ch.RestartableRedis, postgres_url: str
) -> None:
    orders = 40
    restarted: list[int] = []

    def slow_answers(sandbox: ch.SandboxProcess) -> None:
        # Each answer held back 0.3 s: the job lasts longer than queueing it, so the
        # restart comes mid-job however fast the sends are.
        for platform in ch.PLATFORMS:
            sandbox.inject(kind="slow", platform=platform, count=2 * orders, delay=0.3)

    def restart_when_a_third_is_done(
        sandbox: ch.SandboxProcess, workers: ch.Workers, ledger: str, job: str
    ) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = ch.job_state(ledger, job)
            done = sum(state.outcomes[o] for o in ("accepted", "cancelled"))
            if done >= orders * len(ch.PLATFORMS) // 3:
                break
            time.sleep(0.05)
        restarted.append(done)
        redis.restart(down=2.0)

    run = run_job(
        orders=orders,
        work=work,
        broker=redis.url,
        ledger_url=postgres_url,
        extra={"CANCELKIT_VISIBILITY_TIMEOUT": "10"},
        before=slow_answers,
        during=restart_when_a_third_is_done,
        recover_after=20.0,
    )
    assert redis.restarts == 1
    # Celery's Redis transport takes a task (BRPOP), then records it as held (a second
    # command): Redis dying between the two loses that task. Each worker holds at most
    # one at a time, so at most one per worker; queueing the file again sends them.
    assert run.requeued <= WORKERS, run.requeued
    print(f"redis restart: lines lost by the broker and queued again: {run.requeued}")
    assert restarted[0] < orders * len(ch.PLATFORMS), "the job finished before the restart"
    assert run.counts.all_once(), run.counts.summary()
    assert set(run.ledger.outcomes) <= {"accepted", "cancelled"}, run.ledger
    assert run.ledger.died == []


def _keys_by_order(run: Run) -> dict[str, list[str]]:
    """Each platform's ledger keys in seeded-order order (the job's input order)."""
    from cancelkit.core.ledger.store import Ledger

    keys: dict[str, list[str]] = {p: [] for p in ch.PLATFORMS}
    with Ledger(run.environment["CANCELKIT_LEDGER_URL"]) as ledger:
        for line, _ in ledger.job_report(run.job):
            keys[line["platform"]].append(line["key"])
    return keys


def _applied(run: Run, keys: dict[str, list[str]], key: str) -> bool:
    for platform, listed in keys.items():
        if key in listed:
            return run.counts.applied[platform][listed.index(key)] == 1
    return False
