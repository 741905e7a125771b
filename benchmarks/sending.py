"""Sending against a loopback Mirakl (``loopback.py``): cancelkit against raw requests.

* ``single``: one call at a time, in this process: ``Client.send`` with the ledger off
  and with a SQLite ledger in a temporary directory, against a raw
  ``requests.Session.post`` of the same body, with the same headers, to the same server
  (its answer's JSON read, as cancelkit reads it). Interleaved rounds; medians.
* ``bulk``: ``Client.send_many`` (4 workers, what ``cancelkit bulk`` sends with) over a
  JSON Lines file of one-line requests, in a child process, ledger off and on, against 4
  threads of raw ``requests`` posting bodies built before the clock starts. Each child
  times only its sending (not its start-up).

Every cancelkit request has its own ``idempotency_key``: with a ledger, a key already
there would be answered from the ledger instead of being sent.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@contextmanager
def loopback() -> Iterator[int]:
    """The loopback Mirakl in a child process; yields its port."""
    server = subprocess.Popen(
        [sys.executable, str(HERE / "loopback.py")], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    try:
        yield int(server.stdout.readline())
    finally:
        server.terminate()
        server.wait()


def mirakl_config(port: int) -> dict[str, dict[str, str]]:
    """Client settings pointing Mirakl (API and OAuth2 token) at the loopback server."""
    return {
        "mirakl": {
            "base_url": f"http://127.0.0.1:{port}/api",
            "token_url": f"http://127.0.0.1:{port}/auth/oauth/token",
            "client_id": "bench-client",
            "client_secret": "bench-secret",
        }
    }


def _rate(fn: Callable[[int], object], iterations: int) -> float:
    start = time.perf_counter()
    for number in range(iterations):
        fn(number)
    return iterations / (time.perf_counter() - start)


def single(request: dict[str, Any], rounds: int, iterations: int) -> dict[str, float]:
    """Median calls/s of ``raw``, ``off`` (no ledger) and ``sqlite`` (ledger on)."""
    import requests

    from cancelkit.core.client import Client

    with loopback() as port, tempfile.TemporaryDirectory(prefix="cancelkit-bench-") as folder:
        config = mirakl_config(port)
        no_file = Path(folder) / "empty.toml"  # settings from ``config`` alone
        no_file.write_text("")
        off = Client(config=config, env={}, config_path=no_file, ledger=False)
        on = Client(
            config=config, env={}, config_path=no_file, ledger=f"sqlite:///{folder}/ledger.db"
        )
        call = off.translate(request, "mirakl")
        body = call.body_bytes()
        session = requests.Session()
        token = session.post(
            config["mirakl"]["token_url"],
            data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"},
        ).json()["access_token"]
        headers = {**HEADERS, "Authorization": f"Bearer {token}"}

        def raw(_: int) -> None:
            answer = session.post(call.url, data=body, headers=headers)
            if answer.status_code != 202 or not answer.json().get("action_id"):
                raise SystemExit(f"raw post: HTTP {answer.status_code}")

        def sender(client: Client, label: str) -> Callable[[int], None]:
            counter = iter(range(10**9))

            def send(_: int) -> None:
                keyed = {**request, "idempotency_key": f"{label}-{next(counter)}"}
                result = client.send(keyed, "mirakl")
                if result.outcome != "accepted":
                    raise SystemExit(f"send ({label}): {result.outcome} {result.message}")

            return send

        subjects = {"raw": raw, "off": sender(off, "off"), "sqlite": sender(on, "sqlite")}
        for fn in subjects.values():  # warm: token, connection, ledger schema
            _rate(fn, 3)
        rates: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(rounds):  # interleaved, so drift hits all alike
            for name, fn in subjects.items():
                rates[name].append(_rate(fn, iterations))
        off.close()
        on.close()
        session.close()
    return {name: statistics.median(values) for name, values in rates.items()}


_BULK_SEND = """
import json, sys, time
from pathlib import Path
from cancelkit.core.bulkinput import read_items
from cancelkit.core.client import Client
path, ledger, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = Client(config=config, env={}, config_path=Path(sys.argv[4]),
                ledger=ledger if ledger != "off" else False)
with open(path, encoding="utf-8") as stream, client:
    start = time.perf_counter()
    items = ((item.platform, item.request) for item in read_items(stream, "jsonl"))
    outcomes = {}
    for done in client.send_many(items, concurrency=4):
        outcomes[done.outcome] = outcomes.get(done.outcome, 0) + 1
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "outcomes": outcomes}))
"""

_BULK_RAW = """
import json, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import requests
path, base, token = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {"Content-Type": "application/json", "Accept": "application/json",
           "Authorization": f"Bearer {token}"}
calls = []
for text in open(path, encoding="utf-8"):
    item = json.loads(text)
    currency = item["currency"]
    money = lambda amount: {"amount": amount, "currency": currency}
    body = {"cancelations": [
        {"order_line_id": line["line_id"], "product_id": line.get("product_id"),
         "quantity": line["quantity"], "reason": "CUSTOMER_CANCELATION",
         "price": money(line["price"]), "shipping_price": money(line["shipping_price"])}
        for line in item["lines"]]}
    calls.append((f"{base}/v2/orders/{item['order_id']}/cancel", json.dumps(body).encode()))
local = threading.local()
def post(call):
    session = getattr(local, "session", None) or requests.Session()
    local.session = session
    answer = session.post(call[0], data=call[1], headers=headers)
    return answer.status_code == 202 and bool(answer.json().get("action_id"))
start = time.perf_counter()
with ThreadPoolExecutor(4) as pool:
    done = list(pool.map(post, calls))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "outcomes": {"accepted": sum(done)}}))
"""


def write_bulk_input(path: Path, count: int) -> None:
    """``count`` one-line Mirakl requests (each its own line id, so its own key)."""
    example = json.loads((ROOT / "examples" / "mirakl.json").read_text())
    with path.open("w") as stream:
        for number in range(count):
            line = {**example["lines"][0], "line_id": f"bench-{number}", "quantity": 1}
            request = {**example, "lines": [line], "platform": "mirakl"}
            stream.write(json.dumps(request) + "\n")


def bulk(count: int, rounds: int) -> dict[str, float]:
    """Median requests/s of ``raw`` (4 threads), ``off`` and ``sqlite`` (send_many, 4)."""
    with loopback() as port, tempfile.TemporaryDirectory(prefix="cancelkit-bench-") as folder:
        work = Path(folder)
        config = mirakl_config(port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANCELKIT_")}
        (work / "empty.toml").write_text("")  # settings from ``config`` alone
        rates: dict[str, list[float]] = {"raw": [], "off": [], "sqlite": []}
        for number in range(rounds):
            # A fresh input per round: a derived key already in the ledger is not resent.
            path = work / f"in-{number}.jsonl"
            write_bulk_input(path, count)
            for name in rates:
                if name == "raw":
                    code = [_BULK_RAW, str(path), config["mirakl"]["base_url"], "bench-token"]
                else:
                    ledger = "off" if name == "off" else f"sqlite:///{work}/ledger-{number}.db"
                    code = [
                        _BULK_SEND,
                        str(path),
                        ledger,
                        json.dumps(config),
                        str(work / "empty.toml"),
                    ]
                done = subprocess.run(
                    [sys.executable, "-c", *code], env=env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise SystemExit(f"bulk {name} failed: {done.stderr[-2000:]}")
                found = json.loads(done.stdout.strip().splitlines()[-1])
                if found["outcomes"] != {"accepted": count}:
                    raise SystemExit(f"bulk {name}: {found['outcomes']}")
                rates[name].append(count / found["seconds"])
    return {name: statistics.median(values) for name, values in rates.items()}


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from run import canonical_request

    print(single(canonical_request(), 3, 200))
    print(bulk(500, 1))
