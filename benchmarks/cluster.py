"""Cluster mode against the sandbox: ``python benchmarks/cluster.py`` (``--quick``: fewer).

Real servers, started here on free loopback ports and stopped at the end: redis-server
(broker and shared limiter), PostgreSQL (the shared ledger; run as ``nobody`` when we are
root), ``cancelkit worker`` processes (prefork, one pool process each), and the sandbox
seeded with many orders (tests/clusterhelp.py). Prints a table of medians, each ratio
measured in this same run:

1. Throughput with rate limits off (About You's client and emulator limit raised out of
   reach; the other four platforms have none): the job is queued first, then 1, 2 or 4
   workers start; cancels per second from the first claim to the last answer in the
   ledger (worker start-up and queuing excluded). Ratio against 1 worker.
2. About You's cancel limit on (``--limit`` per ``--window`` s, the emulator enforcing
   the same) across 4 workers: the achieved rate of accepted cancels as the emulator
   received them, after the first window, against the allowed rate; the median time
   before a slot was used again (window / that = the steady rate); the most cancel
   calls (refused ones included) the emulator saw in any window; its 429s. Then one run
   at the documented 50 per 60 s (``--no-minute`` skips it: about 2.5 minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import clusterhelp as ch  # tests/ holds the harness
from pgserver import PostgresServer

#: Far out of reach: the limit is "off" for the throughput runs.
NO_LIMIT = "1000000/60"


def ledger_span(ledger_url: str, job: str) -> tuple[int, float]:
    """``(answered, seconds)`` from the job's first claim to its last answer."""
    from cancelkit.core.ledger.store import Ledger

    first, last, answered = None, None, 0
    with Ledger(ledger_url) as ledger:
        for _, entry in ledger.job_report(job):
            if entry is None or entry.answered_at is None:
                continue
            answered += 1
            first = entry.claimed_at if first is None else min(first, entry.claimed_at)
            last = entry.answered_at if last is None else max(last, entry.answered_at)
    assert first is not None and last is not None
    return answered, (last - first).total_seconds()


def one_run(
    pg: PostgresServer,
    *,
    workers: int,
    orders: int,
    platforms: Sequence[str],
    aboutyou_limit: str,
) -> dict[str, Any]:
    """Queue one job, then start ``workers`` workers and wait for it; what it measured."""
    ledger_url = pg.create_database()
    try:
        with (
            ch.workdir() as work,
            ch.RestartableRedis() as redis,
            ch.SandboxProcess(orders, work, aboutyou_limit=aboutyou_limit) as sandbox,
        ):
            environment = ch.worker_environment(
                sandbox,
                broker=redis.url,
                ledger=ledger_url,
                extra={
                    "CANCELKIT_ABOUTYOU_CANCEL_LIMIT": aboutyou_limit,
                    # Follow-ups come after the measured sends, not among them.
                    "CANCELKIT_ABOUTYOU_POLL_INTERVAL": "600",
                },
            )
            requests = ch.requests_for(orders, platforms)
            job = ch.write_jsonl(work / "cancels.jsonl", requests)
            queued = ch.enqueue(work / "cancels.jsonl", environment)
            if queued.returncode != 0:
                raise SystemExit(f"bulk --queue failed:\n{queued.stderr}")
            with ch.Workers(workers, environment, work) as running:
                state = ch.wait_for_job(
                    ledger_url, job, deadline=time.monotonic() + 600, workers=running
                )
            if not state.finished:
                raise SystemExit(f"job not finished: {state}")
            answered, seconds = ledger_span(ledger_url, job)
            dumped = sandbox.dump()
    finally:
        pg.drop_database(ledger_url.rsplit("/", 1)[1])
    calls = ch.aboutyou_calls(dumped)
    return {
        "cancels": answered,
        "seconds": seconds,
        "rate": answered / seconds,
        "aboutyou": [(c["at"], c["status"]) for c in calls],
    }


def limit_figures(calls: list[tuple[float, int]], limit: int, window: float) -> dict[str, float]:
    """What the emulator saw of a limit: the achieved rate after the first window against
    the allowed one; the median time a slot took to be used again (the ``limit``-th next
    accepted call), whose ratio to the window is the steady rate; the most calls (refused
    ones included) in any window; the 429s."""
    accepted = sorted(at for at, status in calls if status == 200)
    span = accepted[-1] - accepted[limit - 1]
    achieved = (len(accepted) - limit) / span
    allowed = limit / window
    reuse = statistics.median(
        accepted[k] - accepted[k - limit] for k in range(limit, len(accepted))
    )
    return {
        "achieved": achieved,
        "allowed": allowed,
        "ratio": achieved / allowed,
        "reuse": reuse,
        "most": ch.most_in_a_window([at for at, _ in calls], window),
        "refused": sum(1 for _, status in calls if status == 429),
    }


def limited_runs(
    pg: PostgresServer, *, limit: int, window: float, cancels: int, runs: int
) -> list[dict[str, float]]:
    """``runs`` About You-only jobs of ``cancels`` across 4 workers, limit on."""
    found = []
    for _ in range(runs):
        run = one_run(
            pg,
            workers=4,
            orders=cancels,
            platforms=("aboutyou",),
            aboutyou_limit=f"{limit}/{window:g}",
        )
        figures = limit_figures(run["aboutyou"], limit, window)
        found.append(figures)
        print(
            f"  limit {limit}/{window:g} s: {figures['achieved']:.3f}/s of "
            f"{figures['allowed']:.3f}/s, slot reused after {figures['reuse']:.2f} s, "
            f"most in a window {figures['most']:.0f}, 429s {figures['refused']:.0f}",
            flush=True,
        )
    return found


def print_limited(found: list[dict[str, float]], limit: int, window: float, cancels: int) -> None:
    """One block of the table: a limit's medians."""
    print()
    print(f"About You limit {limit} per {window:g} s across 4 workers "
          f"({cancels} cancels, {len(found)} runs)")  # fmt: skip
    ratios = ", ".join(f"{f['ratio']:.4f}" for f in found)
    print(f"  achieved/allowed median {statistics.median(f['ratio'] for f in found):.4f} "
          f"(runs: {ratios})")  # fmt: skip
    reuse = statistics.median(f["reuse"] for f in found)
    print(f"  slot reused after {reuse:.3f} s (median): steady rate {window / reuse:.4f} "
          "of allowed")  # fmt: skip
    print(f"  most calls in any {window:g} s window: {max(f['most'] for f in found):.0f} "
          f"(limit {limit}); 429s from the emulator: "
          f"{', '.join(str(int(f['refused'])) for f in found)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer orders and runs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=100, help="per platform, throughput")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--limited", type=int, default=200, help="About You cancels, limits on")
    parser.add_argument(
        "--no-minute", dest="minute", action="store_false",
        help="skip the run at the documented 50 per 60 s (about 2.5 minutes)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.runs, args.orders, args.limited, args.minute = 1, 40, 100, False
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
    with PostgresServer() as pg:
        throughput: dict[int, list[float]] = {}
        for workers in (1, 2, 4):
            for _ in range(args.runs):
                found = one_run(
                    pg,
                    workers=workers,
                    orders=args.orders,
                    platforms=ch.PLATFORMS,
                    aboutyou_limit=NO_LIMIT,
                )
                throughput.setdefault(workers, []).append(found["rate"])
                print(
                    f"  {workers} workers: {found['cancels']} cancels in "
                    f"{found['seconds']:.2f} s = {found['rate']:.1f}/s",
                    flush=True,
                )
        limited = limited_runs(
            pg, limit=args.limit, window=args.window, cancels=args.limited, runs=args.runs
        )
        # The documented limit (50 a minute): one run, a few minutes.
        documented = (
            limited_runs(pg, limit=50, window=60.0, cancels=150, runs=1) if args.minute else []
        )
    base = statistics.median(throughput[1])
    total = args.orders * len(ch.PLATFORMS)
    print()
    print(f"Throughput, rate limits off ({total} cancels over 5 platforms, {args.runs} runs)")
    print(f"{'workers':>8} {'median cancels/s':>17} {'runs (cancels/s)':>30} {'vs 1':>6}")
    for workers, rates in throughput.items():
        median = statistics.median(rates)
        shown = ", ".join(f"{r:.1f}" for r in rates)
        print(f"{workers:>8} {median:>17.1f} {shown:>30} {median / base:>6.2f}")
    print_limited(limited, args.limit, args.window, args.limited)
    if documented:
        print_limited(documented, 50, 60.0, 150)


if __name__ == "__main__":
    main()
