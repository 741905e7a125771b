"""The bulk benchmark: ``python benchmarks/bulk.py`` (``--sizes 10000,100000``).

1. Throughput and memory: N one-line Mirakl requests (Mirakl has no client-side rate
   limit) streamed from a JSON Lines file through ``Client.send_many`` (what
   ``cancelkit bulk`` sends with, 4 workers) in a child process, against a sandbox
   served by another process (so its growing record of actions is not counted); run
   twice per size in the same session: with the ledger (SQLite, the default) and
   with ``ledger=False`` (the baseline). Peak RSS is the sending process's.
2. Rate limit: About You's 50 cancels a minute per key, on a controlled clock shared
   by the client and the sandbox (no real waiting): achieved / allowed rate, and the
   most sends seen in any 60-second window (must never exceed 50); the emulator, which
   enforces the limit on its side too, must never have answered 429.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEND = """
import json
import sys
from cancelkit.core.bulkinput import read_items
from cancelkit.core.client import Client
path, ledger, config = sys.argv[1], sys.argv[2] == "1", json.loads(sys.argv[3])
# The sandbox's settings as an ordinary client's: the ledger is the real code path.
client = Client(config=config, ledger=None if ledger else False)
with open(path, encoding="utf-8") as stream, client:
    items = ((item.platform, item.request) for item in read_items(stream, "jsonl"))
    outcomes = {}
    for done in client.send_many(items, concurrency=4):
        outcomes[done.outcome] = outcomes.get(done.outcome, 0) + 1
import resource
print(outcomes)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # this process's peak, in KiB
"""
SERVE = """
import json
from cancelkit.core.registry import PluginRegistry
from cancelkit.core.sandbox.server import Sandbox
box = Sandbox(PluginRegistry().emulators(), port=0)
box.serve_forever(ready=lambda: print(json.dumps(dict(box.client_config())), flush=True))
"""


def write_input(path: Path, count: int) -> None:
    example = json.loads((ROOT / "examples" / "mirakl.json").read_text())
    with path.open("w") as stream:
        for number in range(count):
            line = {**example["lines"][0], "line_id": f"bench-{number}", "quantity": 1}
            stream.write(json.dumps({**example, "lines": [line], "platform": "mirakl"}) + "\n")


def throughput(count: int, ledger: bool, work: Path) -> dict[str, float]:
    """One ``cancelkit bulk`` run of ``count`` requests; requests/s and peak RSS (MB)."""
    server = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    config = server.stdout.readline().strip()
    threading.Thread(target=server.stdout.read, daemon=True).start()
    try:
        path = work / f"in-{count}.jsonl"
        if not path.exists():
            write_input(path, count)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANCELKIT_")}
        env["CANCELKIT_LEDGER_URL"] = f"sqlite:///{work}/ledger-{count}-{time.time()}.db"
        command = [sys.executable, "-c", SEND, str(path), "1" if ledger else "0", config]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak = int(done.stdout.split()[-1])  # the sender's own peak: not the server's
        if done.returncode != 0 or "accepted" not in done.stdout:
            raise SystemExit(f"send_many failed ({done.returncode}): {done.stdout[-500:]}"
                             f"{done.stderr[-2000:]}")  # fmt: skip
        return {
            "per_second": count / seconds,
            "seconds": seconds,
            "peak_rss_mb": peak / 1024,
        }
    finally:
        server.terminate()
        server.wait()


class VirtualTime:
    """A clock that moves only when someone sleeps (one sender thread)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(seconds, 0.0)


def rate_limited(count: int) -> dict[str, float]:
    """About You at 50 cancels a minute, on virtual time: achieved / allowed."""
    import pluggy

    from cancelkit.core.client import Client
    from cancelkit.core.registry import PluginRegistry
    from cancelkit.core.sandbox.server import Sandbox

    time_ = VirtualTime()
    sent: list[float] = []
    refused: list[int] = []
    mark = pluggy.HookimplMarker("cancelkit")

    def arrived(line: str) -> None:  # the sandbox logs each request it answers
        if line.startswith("POST /aboutyou/") and "/orders/cancel" in line:
            sent.append(time_.clock())  # the moment the emulator took the cancel

    class Stamp:
        @mark
        def cancelkit_after_result(self, result: Any, call: Any, adapter: Any) -> None:
            if result.http_status == 429:
                refused.append(1)

    registry = PluginRegistry()
    registry.register(Stamp(), "bench-stamp")
    example = json.loads((ROOT / "examples" / "aboutyou.json").read_text())
    with Sandbox(registry.emulators(), clock=time_.clock, log=arrived) as box:
        client = Client(
            registry=registry, config=box.client_config(), sleep=time_.sleep,
            clock=time_.clock, ledger=False,
        )  # fmt: skip
        items = (("aboutyou", {**example, "idempotency_key": f"rate-{n}"}) for n in range(count))
        start = time_.clock()
        results = list(client.send_many(items, concurrency=1))
        elapsed = time_.clock() - start
        client.close()
    assert len(results) == count
    # The most sends in any window [t, t + 60 s) (a microsecond spared for float sums).
    windows = max(bisect_right(sent, t + 60.0 - 1e-6) - i for i, t in enumerate(sent))
    # Achieved rate over the whole minutes from the first send: a sliding window lets
    # 50 go at the start of each minute, so whole minutes are the fair measure.
    minutes = int((sent[-1] - sent[0]) // 60)
    in_whole_minutes = bisect_right(sent, sent[0] + minutes * 60.0 - 1e-6)
    achieved = in_whole_minutes / minutes if minutes else float("nan")
    return {
        "sends": len(sent),
        "virtual_seconds": elapsed,
        "achieved_per_minute": achieved,
        "ratio": achieved / 50.0,
        "most_in_any_60s": windows,
        "answered_429": len(refused),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rate-count", type=int, default=1000)
    args = parser.parse_args()
    rate = rate_limited(args.rate_count)
    print(
        f"rate limit (About You, 50/min, virtual clock): {rate['sends']} sends in "
        f"{rate['virtual_seconds']:.0f} s: {rate['achieved_per_minute']:.2f}/min, "
        f"achieved/allowed {rate['ratio']:.4f}; most in any 60 s window "
        f"{rate['most_in_any_60s']}; 429s from the emulator {rate['answered_429']}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="cancelkit-bench-") as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            with_ledger = throughput(size, True, Path(folder))
            without = throughput(size, False, Path(folder))
            overhead_ms = (with_ledger["seconds"] - without["seconds"]) / size * 1000
            print(
                f"bulk {size} requests: {with_ledger['per_second']:.0f}/s with the ledger, "
                f"{without['per_second']:.0f}/s without (ratio "
                f"{with_ledger['per_second'] / without['per_second']:.2f}); ledger overhead "
                f"{overhead_ms:.2f} ms per request; peak RSS {with_ledger['peak_rss_mb']:.0f} MB "
                f"(without the ledger {without['peak_rss_mb']:.0f} MB)",
                flush=True,
            )


if __name__ == "__main__":
    main()
