"""One rate limit shared through Redis: ``python benchmarks/shared_limit.py``.

Starts a throwaway ``redis-server`` on a free loopback port, then ``--workers``
processes that each take ``--each`` slots of one limit (``--limit`` per
``--window`` seconds) through ``limiter_url``'s Redis limiter. Prints the most slots
in any window, counted when each slot was taken (must never exceed the limit) and
when each acquire returned (what a platform counting arrivals would see, a Redis
round trip later), and the achieved rate after the first window against the allowed.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time


def worker(url: str, limit: int, window: float, each: int) -> None:
    """Take ``each`` slots; print ``asked,returned`` wall-clock times of the slots taken."""
    from cancelkit.core.limiterlocation import open_store

    store = open_store(url, "CANCELKIT_LIMITER_URL")
    limiter = store.limiter("bench", "cancel", "shared", limit, window)
    times: list[tuple[float, float]] = []
    hit = store.hit

    def timed(item, identifiers):  # type: ignore[no-untyped-def]
        asked = time.time()
        taken = hit(item, identifiers)
        if taken:
            times.append((asked, time.time()))
        return taken

    store.hit = timed  # type: ignore[method-assign]
    for _ in range(each):
        limiter.acquire(time.time, time.sleep)
    print(" ".join(f"{a:.6f},{b:.6f}" for a, b in times))


def most_in_a_window(times: list[float], window: float) -> int:
    """The most of ``times`` inside any half-open window of ``window`` seconds."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--each", type=int, default=50)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a child: the Redis URL
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.limit, args.window, args.each)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="cancelkit-redis-bench-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
        command = [sys.executable, __file__, "--worker", url, "--limit", str(args.limit),
                   "--window", str(args.window), "--each", str(args.each)]  # fmt: skip
        children = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            for _ in range(args.workers)
        ]
        pairs = [
            tuple(map(float, item.split(",")))
            for child in children
            for item in child.communicate()[0].split()
        ]
    finally:
        server.terminate()
    asked = sorted(a for a, _ in pairs)
    returned = sorted(b for _, b in pairs)
    allowed = args.limit / args.window
    span = asked[-1] - asked[args.limit - 1]
    achieved = (len(asked) - args.limit) / span
    print(f"{args.workers} processes, {len(asked)} slots, limit {args.limit} per {args.window:g} s")
    print(f"most in any window, when taken: {most_in_a_window(asked, args.window)}")
    print(f"most in any window, when returned: {most_in_a_window(returned, args.window)}")
    print(f"achieved {achieved:.2f}/s, allowed {allowed:.2f}/s, ratio {achieved / allowed:.4f}")


if __name__ == "__main__":
    main()
