"""Cluster mode against real servers: a seeded sandbox process, Celery workers, a Redis
that can be restarted on its port, and the emulators' own counts.

Used by tests/test_cluster_real.py and benchmarks/cluster.py. Everything it starts runs
as a child process on 127.0.0.1, in temporary directories, and is stopped by the
context managers here (``finally``), whatever the test does.

What a test concludes comes from the emulators' own state (fetched from the sandbox
process, :meth:`SandboxProcess.dump`) and from the shared ledger, never from the
requests it sent. Run as a script, this module *is* the sandbox process::

    python tests/clusterhelp.py --orders 200 --aboutyou-limit 20/2

It prints one JSON line (the sandbox URL and the client environment), then reads
commands on stdin: ``dump PATH`` writes every emulator's state to PATH and answers
``ok``; end of input stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The five built-in platforms (``cancelkit platforms`` lists them, outside plugins aside).
PLATFORMS = ("mirakl", "carriyo", "aboutyou", "salesforce", "salesforce-flow")
#: Seeded lines hold this many units and each request cancels one, so a second send of
#: the same request would be applied too and show in the emulator's counts.
UNITS = 2
#: About You item ids of the seeded orders start after this (the demo ones are 1001...).
ABOUTYOU_FIRST_ITEM = 700_000
#: The sandbox process answers its first line within this many seconds.
SANDBOX_START_TIMEOUT = 60.0
#: A worker is up when its log says so, within this many seconds.
WORKER_START_TIMEOUT = 90.0


# -- the seeded orders (the same ids in the sandbox process and in the requests) ---------
def mirakl_ids(number: int) -> tuple[str, str]:
    """Mirakl ``(order_id, line_id)`` of seeded order ``number``."""
    return f"CK-M-{number:05d}", f"CK-M-{number:05d}-1"


def carriyo_ids(number: int) -> tuple[str, str, str]:
    """Carriyo ``(order_id, fulfillment_order_id, line_id)`` of seeded order ``number``."""
    return f"CK-C-{number:05d}", f"CK-FO-{number:05d}", f"line-ck-{number:05d}"


def aboutyou_item(number: int) -> int:
    """The About You item id of seeded order ``number``."""
    return ABOUTYOU_FIRST_ITEM + number


def salesforce_ids(platform: str, number: int) -> tuple[str, str]:
    """Salesforce ``(fulfillment order id, line item id)``: 18 characters, as Salesforce's.

    ``salesforce`` and ``salesforce-flow`` (one org) get apart ranges.
    """
    tag = "CK" if platform == "salesforce" else "CF"
    return f"0a3{tag}{number:010d}AAA", f"0a4{tag}{number:010d}AAA"


def seed_emulators(emulators: Mapping[str, Any], orders: int) -> None:
    """Add ``orders`` cancellable orders per platform to the emulators, in each one's own
    state format (the demo orders stay)."""
    mirakl = emulators["mirakl"]
    for number in range(orders):
        order_id, line_id = mirakl_ids(number)
        mirakl.orders[order_id] = {
            "currency": "USD",
            "lines": {
                line_id: {
                    "product_id": "10000",
                    "quantity": UNITS,
                    "can_cancel": True,
                    "status": "AWAITING_SHIPMENT",
                }
            },
        }
    carriyo = emulators["carriyo"]
    key = carriyo.item_key  # the contract's name for the line (line_item_id)
    for number in range(orders):
        order_id, fo_id, line_id = carriyo_ids(number)
        carriyo.orders[order_id] = {
            "tenant": "sandbox-tenant",
            "order_id": order_id,
            "partner_order_reference": f"SHOP-{order_id}",
            "merchant": "DEMO",
            "status": "allocated",
            "line_items": [
                {"id": line_id, "sku": "SKU-CK", "quantity": UNITS, "removed_quantities": []}
            ],
            "fulfillment_orders": [
                {
                    "fulfillment_order_id": fo_id,
                    "status": "allocated",
                    "line_items": [{key: line_id, "quantity": UNITS, "status": "allocated"}],
                }
            ],
        }
    aboutyou = emulators["aboutyou"]
    for number in range(orders):
        aboutyou.items[str(aboutyou_item(number))] = "open"
    salesforce = emulators["salesforce"]
    for platform in ("salesforce", "salesforce-flow"):
        for number in range(orders):
            fo_id, line_id = salesforce_ids(platform, number)
            salesforce.fulfillment_orders[fo_id] = {
                "Status": "Allocated",
                "StatusCategory": "ACTIVATED",
                "lines": {line_id: {"Quantity": float(UNITS), "OriginalQuantity": float(UNITS)}},
            }
    for emulator in emulators.values():
        emulator.rebuild()


def example_requests() -> dict[str, dict[str, Any]]:
    """Each platform's example request (``cancelkit example PLATFORM``), exact decimals."""
    from cancelkit.core.registry import PluginRegistry

    examples = PluginRegistry().examples()
    return {platform: copy.deepcopy(dict(examples[platform])) for platform in PLATFORMS}


def request_for(platform: str, number: int, examples: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical request cancelling one unit of seeded order ``number``: the
    platform's example request with the seeded ids (and ``platform``, for bulk)."""
    request = copy.deepcopy(dict(examples[platform]))
    [first, *_] = request["lines"]
    line = {**first, "quantity": 1}
    if platform == "mirakl":
        request["order_id"], line["line_id"] = mirakl_ids(number)
    elif platform == "carriyo":
        request["order_id"], request["fulfillment_order_id"], line["line_id"] = carriyo_ids(number)
    elif platform == "aboutyou":
        line["line_id"] = str(aboutyou_item(number))
    else:
        request["fulfillment_order_id"], line["line_id"] = salesforce_ids(platform, number)
    request["lines"] = [line]
    return {**request, "platform": platform}


def requests_for(
    orders: int, platforms: Sequence[str] = PLATFORMS, *, interleave: bool = True
) -> list[dict[str, Any]]:
    """One request per seeded order of each platform: ``orders * len(platforms)``.

    Interleaved (mirakl 0, carriyo 0, ..., mirakl 1, ...) so every platform is busy
    from the start, as in a mixed job.
    """
    examples = example_requests()
    if interleave:
        return [request_for(p, n, examples) for n in range(orders) for p in platforms]
    return [request_for(p, n, examples) for p in platforms for n in range(orders)]


def write_jsonl(path: Path, requests: Sequence[Mapping[str, Any]]) -> str:
    """Write the requests as the JSON Lines ``cancelkit bulk`` reads; returns the job id."""
    from cancelkit.core import jsonutil

    data = "".join(jsonutil.dumps(dict(r)) + "\n" for r in requests).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()[:12]


# -- what the emulators say they did -------------------------------------------------
@dataclass
class Counts:
    """Per seeded order of each platform, as the emulators recorded it.

    ``applied``: how many times its cancel took effect (a unit went).
    ``received``: how many cancel calls naming it the emulator answered (where the
    emulator keeps a record of calls: Mirakl's actions, About You's cancel log).
    """

    applied: dict[str, list[int]] = field(default_factory=dict)
    received: dict[str, list[int]] = field(default_factory=dict)

    def histogram(self, platform: str) -> Counter[int]:
        """``{times applied: number of orders}``."""
        return Counter(self.applied[platform])

    def all_once(self, platforms: Sequence[str] = PLATFORMS) -> bool:
        """Whether every seeded order was cancelled exactly once."""
        return all(set(self.applied[p]) == {1} for p in platforms)

    def summary(self) -> dict[str, dict[str, int]]:
        """``{platform: {"applied 0": n, "applied 1": n, ...}}`` for messages."""
        return {
            p: {f"applied {k}": v for k, v in sorted(self.histogram(p).items())}
            for p in self.applied
        }


def emulator_counts(state: Mapping[str, Any], orders: int) -> Counts:
    """Read :class:`Counts` from the emulators' dumped state (:meth:`SandboxProcess.dump`)."""
    counts = Counts()
    mirakl = state["mirakl"]
    actions_of: dict[str, list[dict[str, Any]]] = {}
    for action in mirakl["actions"].values():
        actions_of.setdefault(action["order_id"], []).append(action)
    counts.applied["mirakl"], counts.received["mirakl"] = [], []
    for number in range(orders):
        order_id, line_id = mirakl_ids(number)
        mine = actions_of.get(order_id, [])
        successes = sum(1 for a in mine if a["status"] == "SUCCESS")
        left = mirakl["orders"][order_id]["lines"][line_id]["quantity"]
        assert UNITS - left == successes, (order_id, left, successes)
        counts.applied["mirakl"].append(successes)
        counts.received["mirakl"].append(len(mine))

    carriyo = state["carriyo"]["orders"]
    counts.applied["carriyo"] = []
    for number in range(orders):
        order_id, _, _ = carriyo_ids(number)
        [line] = carriyo[order_id]["line_items"]
        removed = sum(r["quantity"] for r in line["removed_quantities"])
        assert UNITS - line["quantity"] == removed, (order_id, line)
        counts.applied["carriyo"].append(len(line["removed_quantities"]))
    counts.received["carriyo"] = list(counts.applied["carriyo"])

    aboutyou = state["aboutyou"]
    batches = aboutyou["batches"]
    successes: Counter[int] = Counter()
    in_batches: Counter[int] = Counter()
    for batch in batches.values():
        for item in batch["ids"]:
            in_batches[item] += 1
        for result in batch["items"]:
            if result["success"]:
                successes[result["requestItem"]["id"]] += 1
    calls: Counter[int] = Counter()
    for call in aboutyou.get("cancel_log", []):
        if call["batch"] is not None:
            for item in batches[call["batch"]]["ids"]:
                calls[item] += 1
    counts.applied["aboutyou"], counts.received["aboutyou"] = [], []
    for number in range(orders):
        item = aboutyou_item(number)
        status = aboutyou["items"][str(item)]
        assert (status == "cancelled") == (successes[item] > 0), (item, status)
        counts.applied["aboutyou"].append(successes[item])
        counts.received["aboutyou"].append(calls[item])

    fulfillment_orders = state["salesforce"]["fulfillment_orders"]
    for platform in ("salesforce", "salesforce-flow"):
        counts.applied[platform] = []
        for number in range(orders):
            fo_id, line_id = salesforce_ids(platform, number)
            line = fulfillment_orders[fo_id]["lines"][line_id]
            counts.applied[platform].append(round(line["OriginalQuantity"] - line["Quantity"]))
        counts.received[platform] = list(counts.applied[platform])
    return counts


def aboutyou_calls(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every cancel call About You's emulator answered: ``{"at", "status", "batch"}``."""
    return list(state["aboutyou"].get("cancel_log", []))


def most_in_a_window(times: Sequence[float], window: float) -> int:
    """The most of ``times`` inside any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        most = max(most, end - start + 1)
    return most


# -- the sandbox process ---------------------------------------------------------------
class SandboxProcess:
    """This module run as a child: a sandbox with seeded orders, its emulators readable."""

    def __init__(
        self,
        orders: int,
        workdir: Path,
        *,
        aboutyou_limit: str | None = None,
    ) -> None:
        """Prepare (nothing runs yet); ``aboutyou_limit`` is About You's cancel limit as
        LIMIT/SECONDS for the emulator (the documented 50/60 when None)."""
        self.orders = orders
        self.workdir = workdir
        self.aboutyou_limit = aboutyou_limit
        self.url = ""
        #: The ``CANCELKIT_*`` settings that point clients here (no ledger among them).
        self.environment: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None
        self._dumps = 0

    def start(self) -> SandboxProcess:
        """Start it and read its URL and client environment."""
        argv = [sys.executable, str(Path(__file__).resolve()), "--orders", str(self.orders)]
        if self.aboutyou_limit:
            argv += ["--aboutyou-limit", self.aboutyou_limit]
        log = (self.workdir / "sandbox.log").open("w")
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_child_environment(),
            start_new_session=True,
        )
        log.close()
        assert self._process.stdout is not None
        ready = _read_line(self._process.stdout, SANDBOX_START_TIMEOUT)
        if not ready:
            self.stop()
            raise RuntimeError(
                "the sandbox process did not start:\n"
                + (self.workdir / "sandbox.log").read_text(errors="replace")
            )
        hello = json.loads(ready)
        self.url, self.environment = hello["url"], hello["environment"]
        return self

    def dump(self) -> dict[str, Any]:
        """Every emulator's state now (``dump_state``), taken between two requests."""
        assert self._process is not None and self._process.stdin and self._process.stdout
        self._dumps += 1
        path = self.workdir / f"state-{self._dumps}.json"
        self._process.stdin.write(f"dump {path}\n")
        self._process.stdin.flush()
        answer = _read_line(self._process.stdout, 60.0)
        if answer.strip() != "ok":
            raise RuntimeError(f"the sandbox process did not dump its state: {answer!r}")
        state: dict[str, Any] = json.loads(path.read_text())
        return state

    def inject(self, **fault: Any) -> None:
        """Queue a sandbox fault (``POST /_sandbox/faults``)."""
        _post_json(f"{self.url}/_sandbox/faults", fault)

    def settle(self) -> None:
        """Let the asynchronous platforms finish what they were given: wait out their
        processing time (2 s on the sandbox clock), then ask Mirakl and About You once
        each; their emulators move actions and batches on by the clock on every request,
        before checking credentials, so an unauthenticated request does."""
        import urllib.error
        import urllib.request

        time.sleep(2.2)
        for path in ("mirakl/api/v2/orders/actions/settle", "aboutyou/results/cancel-orders"):
            with contextlib.suppress(urllib.error.HTTPError):  # 401: no credentials, as meant
                urllib.request.urlopen(f"{self.url}/{path}", timeout=30).close()

    def stop(self) -> None:
        """Stop it (end of input, then SIGKILL if it lingers)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _post_json(url: str, payload: Mapping[str, Any]) -> Any:
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _read_line(stream: Any, timeout: float) -> str:
    """One line from a child's pipe, or "" when none comes within ``timeout`` seconds."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    line: str = stream.readline()
    return line


def _child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Ours, without any ``CANCELKIT_*`` (a test's own settings never leak in), plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANCELKIT_")}
    env.update(extra or {})
    return env


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def serve(orders: int, aboutyou_limit: str | None) -> None:
    """The sandbox process itself (``python tests/clusterhelp.py``)."""
    import cancelkit
    from cancelkit.core.registry import PluginRegistry
    from cancelkit.core.sandbox.environment import client_environment

    registry = PluginRegistry()
    box = cancelkit.sandbox(registry=registry)
    if aboutyou_limit:
        limit, window = aboutyou_limit.split("/")
        emulator = box.emulators["aboutyou"]
        replacement = type(emulator)(cancel_limit=int(limit), cancel_window=float(window))
        box.emulators["aboutyou"] = replacement
    seed_emulators(box.emulators, orders)
    box.start()
    try:
        environment = client_environment(box, registry.platforms())
        del environment["CANCELKIT_LEDGER_URL"]  # the test names the shared ledger
        print(json.dumps({"url": box.url, "environment": environment}), flush=True)
        for command in sys.stdin:
            verb, _, argument = command.strip().partition(" ")
            if verb == "dump":
                with box._lock:  # between two requests: one consistent picture
                    text = json.dumps({p: e.dump_state() for p, e in box.emulators.items()})
                Path(argument).write_text(text)
                print("ok", flush=True)
    finally:
        box.stop()


# -- Redis that keeps its data across a restart --------------------------------------
class RestartableRedis:
    """A ``redis-server`` on a free loopback port that :meth:`restart` brings back on the
    same port with its data: the append-only file is written on every command (a broker's
    queued tasks survive the restart, as on a production Redis with persistence)."""

    def __init__(self) -> None:
        from redisserver import find_binary

        self.binary = find_binary()
        self.base = Path(tempfile.mkdtemp(prefix="cancelkit-redis-cluster-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RestartableRedis:
        """Start on a free port (the same one again after :meth:`kill`)."""
        from pgserver import free_port

        if not self.port:
            self.port = free_port()
        log = self.base / "redis.log"
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.base), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--logfile", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("redis-server exited:\n" + log.read_text(errors="replace"))
            if self._answers():
                return self
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer:\n" + log.read_text(errors="replace"))

    def _answers(self) -> bool:
        import redis

        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as probe:
                return bool(probe.ping()) and probe.info("persistence")["loading"] == 0
        except redis.exceptions.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL the server (a crash): what it acknowledged is in its append-only file."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def restart(self, down: float = 1.0) -> None:
        """Crash the server, stay down ``down`` seconds, start it again on the same port."""
        self.kill()
        time.sleep(down)
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> RestartableRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Celery workers --------------------------------------------------------------------
class Workers:
    """``count`` ``cancelkit worker`` processes (each prefork with ``concurrency`` pool
    processes), logs in ``workdir``."""

    def __init__(
        self, count: int, environment: Mapping[str, str], workdir: Path, *, concurrency: int = 1
    ) -> None:
        self.count = count
        self.environment = _child_environment(environment)
        self.workdir = workdir
        self.concurrency = concurrency
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> Workers:
        """Start every worker and wait until each is ready for tasks."""
        for number in range(self.count):
            self.processes.append(self._launch(number))
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        for number in range(self.count):
            while "ready." not in self.log(number):
                if self.processes[number].poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"worker {number} did not start:\n{self.log(number)}")
                time.sleep(0.1)
        return self

    def _launch(self, number: int) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"worker-{number}.log").open("ab")
        argv = [
            cancelkit_command(), "worker", "--concurrency", str(self.concurrency),
            "--loglevel", "info", "--hostname", f"w{number}@%h",
        ]  # fmt: skip
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment,
                cwd=self.workdir,
                start_new_session=True,  # its own group: SIGKILL reaches its pool too
            )
        finally:
            log.close()

    def log(self, number: int) -> str:
        """Worker ``number``'s log so far."""
        path = self.workdir / f"worker-{number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pool_children(self, number: int) -> list[int]:
        """PIDs of worker ``number``'s pool processes (children of its main process)."""
        main = self.processes[number].pid
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == main:
                        found.append(int(entry.name))
        return found

    def kill(self, number: int) -> None:
        """SIGKILL worker ``number`` and its pool: the whole worker dies mid-task."""
        _kill_group(self.processes[number].pid)
        self.processes[number].wait()

    def pids(self) -> set[int]:
        """Every live process of every worker."""
        found = set()
        for number, process in enumerate(self.processes):
            if process.poll() is None:
                found.add(process.pid)
                found.update(self.pool_children(number))
        return found

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL whatever is left."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + 10
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            _kill_group(process.pid)
            process.wait()

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_environment(
    sandbox: SandboxProcess, *, broker: str, ledger: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What a worker (and ``bulk --queue``) needs: the sandbox's client settings, the
    broker and limiter (one Redis), the shared ledger."""
    return {
        **sandbox.environment,
        "CANCELKIT_BROKER_URL": broker,
        "CANCELKIT_LIMITER_URL": broker,
        "CANCELKIT_LEDGER_URL": ledger,
        # No config file of the machine's: the test's settings are all there is.
        "XDG_CONFIG_HOME": str(sandbox.workdir / "xdg-config"),
        **(extra or {}),
    }


def cancelkit_command() -> str:
    """The ``cancelkit`` script of this environment."""
    beside = Path(sys.executable).with_name("cancelkit")
    return str(beside) if beside.exists() else shutil.which("cancelkit") or "cancelkit"


def enqueue(path: Path, environment: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``cancelkit bulk FILE --queue BROKER``: check every request, list the job, queue it."""
    return subprocess.run(
        [cancelkit_command(), "bulk", str(path), "--queue", environment["CANCELKIT_BROKER_URL"]],
        capture_output=True,
        text=True,
        env=_child_environment(environment),
        timeout=300,
        check=False,
    )


# -- the ledger's view of a job --------------------------------------------------------
@dataclass
class JobState:
    """Where each request of a job is, read from the shared ledger."""

    total: int
    #: outcome -> how many (``in flight`` = claimed, no answer, its sender alive or
    #: its call never left; ``unknown (sender died)`` = the call left, its sender is dead).
    outcomes: Counter[str]
    #: Keys whose call left and whose sender died with no answer.
    died: list[str]

    @property
    def finished(self) -> bool:
        """Every request has an answer, or is unknown because its sender died sending."""
        settled = ("accepted", "cancelled", "rejected", "partial", "unknown")
        done = sum(n for outcome, n in self.outcomes.items() if outcome in settled)
        return done + len(self.died) == self.total


def job_state(ledger_url: str, job: str, live: set[int] | None = None) -> JobState:
    """The job as the ledger holds it now. ``live``: PIDs of senders still alive (None:
    ask the OS); an unanswered claim whose call left and whose sender is gone is
    counted as died (unknown, never resent)."""
    from cancelkit.core.ledger.store import Ledger

    outcomes: Counter[str] = Counter()
    died: list[str] = []
    total = 0
    with Ledger(ledger_url) as ledger:
        for _, entry in ledger.job_report(job):
            total += 1
            if entry is None:
                outcomes["not claimed"] += 1
            elif entry.answered:
                outcomes[entry.outcome] += 1
            elif entry.outcome == "not_sent":
                outcomes["not_sent"] += 1
            elif entry.left_at is not None and not _alive(entry.claimed_by, live):
                died.append(entry.key)
            else:
                outcomes["in flight"] += 1
    return JobState(total, outcomes, died)


def in_flight(ledger_url: str, job: str) -> list[tuple[str, int, bool]]:
    """The job's claims with no answer yet: ``(key, claimer's pid, whether its call left)``."""
    from cancelkit.core.ledger.store import Ledger

    found = []
    with Ledger(ledger_url) as ledger:
        for _, entry in ledger.job_report(job):
            if entry is not None and entry.in_flight:
                pid = entry.claimed_by.rpartition(":")[2]
                found.append(
                    (entry.key, int(pid) if pid.isdigit() else -1, entry.left_at is not None)
                )
    return found


def _alive(claimed_by: str, live: set[int] | None) -> bool:
    host, _, pid_text = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's: assume alive
    pid = int(pid_text)
    if live is not None:
        return pid in live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_job(
    ledger_url: str,
    job: str,
    *,
    deadline: float,
    workers: Workers | None = None,
    poll: float = 0.25,
) -> JobState:
    """Poll the ledger until the job is finished (see :attr:`JobState.finished`), or
    until ``deadline`` (``time.monotonic()``); returns its last state either way."""
    while True:
        live = workers.pids() if workers is not None else None
        state = job_state(ledger_url, job, live)
        if state.finished or time.monotonic() > deadline:
            return state
        time.sleep(poll)


def short_key(key: str) -> str:
    """The key as ``cancelkit ledger list`` shows it (``sha256:`` and 12 hex digits)."""
    from cancelkit.commands.ledger import short_key as shown

    return shown(key)


def unknown_in_ledger_list(environment: Mapping[str, str]) -> str:
    """``cancelkit ledger list --unknown`` against the shared ledger: its output."""
    done = subprocess.run(
        [cancelkit_command(), "ledger", "list", "--unknown"],
        capture_output=True,
        text=True,
        env=_child_environment(environment),
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


@contextlib.contextmanager
def workdir(prefix: str = "cancelkit-cluster-") -> Iterator[Path]:
    """A temporary directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    """The sandbox process (see the module docstring)."""
    parser = argparse.ArgumentParser(description="a seeded sandbox for cluster tests")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--aboutyou-limit", default=None, metavar="LIMIT/SECONDS")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it (end of input)
    serve(args.orders, args.aboutyou_limit)


if __name__ == "__main__":
    main()
