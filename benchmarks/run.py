"""cancelkit benchmarks: ``python benchmarks/run.py`` (``--quick``: a smoke run of seconds).

One table of medians of interleaved runs, each against a baseline measured in the
same run, with the issue's goals as ratios:

1. send: ``Client.send`` of a 5-line Mirakl request to a loopback server
   (``loopback.py``, in a child process) with the ledger off and with a SQLite ledger
   in a temporary directory, against a raw ``requests.Session.post`` of the same body
   (``sending.py``).
2. translate: the same request through ``Client.translate`` + wire serialisation,
   against building the same body dict by hand and ``json.dumps``-ing it.
3. bulk: ``Client.send_many`` (4 workers) of one-line requests to the loopback server,
   ledger off and on, against 4 threads of raw requests (``sending.py``).
4. start-up: ``cancelkit translate -p mirakl FILE`` and ``cancelkit --help`` wall time,
   against ``python -c "import click"`` (fresh processes, bytecode cached on both sides;
   ``plugin_api.py``).

Then the plugin API's facts (``plugin_api.py``): modules ``translate`` imports, module
switches in one send. ``--quick`` checks that everything runs; its numbers are rough.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plugin_api
import sending

LINES = 5


def canonical_request() -> dict[str, Any]:
    return {
        "order_id": "0024_COMMERCIAL_ID-A",
        "reason": "CUSTOMER_REQUEST",
        "currency": "USD",
        "lines": [
            {
                "line_id": f"0002_3202630-A-{i}",
                "quantity": 1,
                "product_id": f"1000{i}",
                "price": "15.00",
                "shipping_price": "8.00",
                "taxes": [{"code": "Tax1", "amount": "1.00"}],
                "shipping_taxes": [{"code": "ShippingTax1", "amount": "3.00"}],
            }
            for i in range(LINES)
        ],
    }


def by_hand(data: dict[str, Any]) -> str:
    """The baseline: the same Mirakl body, built directly, no validation."""
    currency = data["currency"]
    body = {
        "cancelations": [
            {
                "order_line_id": line["line_id"],
                "product_id": line["product_id"],
                "quantity": line["quantity"],
                "reason": "CUSTOMER_CANCELATION",
                "price": {"amount": line["price"], "currency": currency},
                "shipping_price": {"amount": line["shipping_price"], "currency": currency},
                "taxes": [
                    {"code": t["code"], "amount": {"amount": t["amount"], "currency": currency}}
                    for t in line["taxes"]
                ],
                "shipping_taxes": [
                    {"code": t["code"], "amount": {"amount": t["amount"], "currency": currency}}
                    for t in line["shipping_taxes"]
                ],
            }
            for line in data["lines"]
        ]
    }
    return json.dumps(body)


def per_second(fn: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return iterations / (time.perf_counter() - start)


def translate_rates(runs: int, iterations: int) -> dict[str, float]:
    """Median translates/s: ``ours`` (validate, translate, serialise) and ``hand``."""
    from cancelkit.core.client import Client

    client = Client(env={})
    data = canonical_request()
    client.translate(data, "mirakl")  # warm up: plugins loaded once per client
    ours_fn = lambda: client.translate(data, "mirakl").body_bytes()  # noqa: E731
    base_fn = lambda: by_hand(data)  # noqa: E731
    ours, base = [], []
    for _ in range(runs):  # interleaved, so drift hits both alike
        ours.append(per_second(ours_fn, iterations))
        base.append(per_second(base_fn, iterations))
    return {"ours": statistics.median(ours), "hand": statistics.median(base)}


def start_times(runs: int) -> dict[str, float]:
    """Median wall seconds of ``translate``, ``help`` and bare ``click`` processes."""
    cli = [sys.executable, "-m", "cancelkit.cli"]
    argvs = {
        "translate": [*cli, *plugin_api.TRANSLATE],
        "help": [*cli, "--help"],
        "click": [sys.executable, "-c", "import click"],
    }
    timings: dict[str, list[float]] = {name: [] for name in argvs}
    with tempfile.TemporaryDirectory() as cache:
        env = plugin_api.bytecode_cached_env(cache)
        for argv in argvs.values():
            plugin_api.wall(argv, env)  # warm the file cache, write the bytecode caches
        for _ in range(runs):  # interleaved, so drift hits all alike
            for name, argv in argvs.items():
                timings[name].append(plugin_api.wall(argv, env))
    return {name: statistics.median(values) for name, values in timings.items()}


def machine() -> str:
    """What the numbers were taken on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    where = subprocess.run(
        ["df", "-T", tempfile.gettempdir()], capture_output=True, text=True, check=False
    ).stdout.splitlines()[-1:]
    filesystem = where[0].split()[1] if where and len(where[0].split()) > 1 else "?"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({cpu or platform.processor() or '?'}), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"SQLite ledger on {filesystem} ({tempfile.gettempdir()})"
    )


def row(
    what: str, ours: str, base: str, ratio: float, goal: str = "", met: bool | None = None
) -> str:
    verdict = "" if met is None else (" (met)" if met else " (missed)")
    return f"| {what} | {ours} | {base} | {ratio:.2f}x | {goal}{verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few iterations")
    args = parser.parse_args()
    if args.quick:
        send_runs, send_calls, tr_runs, tr_calls, bulk_n, bulk_runs, starts = (
            3,
            20,
            3,
            100,
            40,
            1,
            3,
        )
    else:
        send_runs, send_calls, tr_runs, tr_calls, bulk_n, bulk_runs, starts = (
            9,
            300,
            9,
            2000,
            2000,
            3,
            15,
        )

    send = sending.single(canonical_request(), send_runs, send_calls)
    tr = translate_rates(tr_runs, tr_calls)
    bulk = sending.bulk(bulk_n, bulk_runs)
    start = start_times(starts)

    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    per_s = lambda rate: f"{rate:,.0f}/s"  # noqa: E731
    raw, raw_bulk = f"{per_s(send['raw'])} raw requests", f"{per_s(bulk['raw'])} raw, 4 threads"
    click = f"{ms(start['click'])} python -c 'import click'"
    off, on = send["off"] / send["raw"], send["sqlite"] / send["raw"]
    cost, starting = tr["hand"] / tr["ours"], start["translate"] / start["click"]
    sent = f"{LINES}-line Mirakl"
    rows = [
        row(f"send, {sent}, ledger off ({send_runs} x {send_calls} calls)",
            per_s(send["off"]), raw, off, ">= 0.9x", off >= 0.9),
        row(f"send, {sent}, SQLite ledger", per_s(send["sqlite"]), raw, on, ">= 0.8x", on >= 0.8),
        row(f"translate + serialise, {sent} ({tr_runs} x {tr_calls}; ratio: cost)",
            per_s(tr["ours"]), f"{per_s(tr['hand'])} by hand + json.dumps", cost, "<= 5x",
            cost <= 5),
        *(
            row(f"bulk, {bulk_n:,} one-line requests, 4 workers, {label} ({bulk_runs} runs)",
                per_s(bulk[name]), raw_bulk, bulk[name] / bulk["raw"])
            for name, label in (("off", "ledger off"), ("sqlite", "SQLite ledger"))
        ),
        row(f"start: cancelkit translate -p mirakl FILE ({starts} runs; ratio: time)",
            ms(start["translate"]), click, starting, "<= 2.5x", starting <= 2.5),
        row("start: cancelkit --help", ms(start["help"]), click, start["help"] / start["click"]),
    ]  # fmt: skip
    rough = " (--quick: a smoke run, rough numbers)" if args.quick else ""
    print(f"cancelkit benchmarks{rough}, {time.strftime('%Y-%m-%d')}")
    print(f"machine: {machine()}")
    print()
    print("| measure | cancelkit | baseline (same run) | ratio | goal |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print()
    imports = plugin_api._child(plugin_api._IMPORTS, json.dumps(plugin_api.TRANSLATE))
    heavy, emulators = imports["heavy"] or "none", imports["emulators"] or "none"
    print(f"translate imports {imports['cancelkit']} cancelkit modules; "
          f"heavy: {heavy}; emulators: {emulators}")  # fmt: skip
    switches = plugin_api._child(plugin_api._SWITCHES, plugin_api.EXAMPLE)
    print(f"one Client.send switches between cancelkit modules {switches['switches']} times")


if __name__ == "__main__":
    main()
