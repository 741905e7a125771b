"""Helpers for tests/test_bulk.py: inputs, a watched in-process emulator, virtual time.

What a bulk test concludes comes from what the emulator received (its request log or
its saved state), never from the tool's own report alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from ledgerhelp import cancels, example

from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.ledger.location import sandbox_ledger_path, sqlite_url
from cancelkit.core.sandbox.server import Sandbox

#: The four platforms of a mixed job, each with its example request.
PLATFORMS = ("mirakl", "aboutyou", "carriyo", "salesforce")
#: Raw terminal controls: C0 (ESC, BEL...), DEL and C1 (0x9b is a one-byte CSI).
CONTROL = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} - {"\n", "\t"}
#: What a hostile platform puts in its texts: a title change, clear screen, a C1 CSI.
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31mEVIL\x1b[0m"


def cli(*args: str, stdin: str | bytes | None = None) -> Result:
    """``cancelkit ARGS`` in process (stdout and stderr apart)."""
    return CliRunner().invoke(main, list(args), input=stdin)


def job_id(data: bytes) -> str:
    """The documented job id: the first 12 hex digits of the SHA-256 of the input."""
    return hashlib.sha256(data).hexdigest()[:12]


def line(platform: str, request: dict[str, Any]) -> dict[str, Any]:
    """One JSON Lines object: the canonical request plus ``platform``."""
    return {**request, "platform": platform}


def mixed() -> list[dict[str, Any]]:
    """One example request per platform: mirakl and aboutyou are accepted (asynchronous),
    carriyo and salesforce cancelled."""
    return [line(p, example(p)) for p in PLATFORMS]


def carriyo_rejected() -> dict[str, Any]:
    """A carriyo request the emulator rejects (the line is not in the fulfillment order)."""
    request = example("carriyo")
    request["lines"] = [{"line_id": "no-such-line", "quantity": 1}]
    return line("carriyo", request)


def mirakl_line(number: int, prefix: str = "bulk") -> dict[str, Any]:
    """A one-line Mirakl request for its own order line id (each is its own request)."""
    base = example("mirakl")
    only = {**base["lines"][0], "line_id": f"{prefix}-{number:04d}", "quantity": 1}
    return line("mirakl", {**base, "lines": [only]})


@functools.cache
def _example_text(platform: str) -> str:
    return jsonutil.dumps(example(platform))


def keyed(platform: str, key: str) -> dict[str, Any]:
    """``platform``'s example with its own idempotency key (a request of its own)."""
    request: dict[str, Any] = jsonutil.loads(_example_text(platform))
    return {**request, "idempotency_key": key}


def write_jsonl(path: Path, objects: Iterable[dict[str, Any]]) -> bytes:
    data = "".join(json.dumps(o) + "\n" for o in objects).encode()
    path.write_bytes(data)
    return data


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def sandbox_ledger_url() -> str:
    """The ledger ``--sandbox`` runs record in (beside the test's sandbox state file)."""
    return str(sqlite_url(sandbox_ledger_path(Path(os.environ["CANCELKIT_SANDBOX_STATE"]))))


def raw_controls(text: str) -> set[str]:
    return {c for c in text if c in CONTROL}


@dataclass
class Watched:
    """Every in-process sandbox started while watched (the CLI's ``--sandbox`` ones):
    the requests they answered, and faults queued into the next one started."""

    log: list[str] = field(default_factory=list)
    faults: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    boxes: list[Sandbox] = field(default_factory=list)

    def cancels(self, platform: str | None = None) -> list[str]:
        return cancels(self.log, platform)

    def inject_next(self, kind: str, platform: str | None = None, **params: Any) -> None:
        self.faults.append((kind, platform, params))


def mirakl_received(state: Path) -> Counter[str]:
    """How many cancels the Mirakl emulator (its saved state) received per order line."""
    for _ in range(100):  # the sandbox may be writing it: read a whole one
        try:
            actions = json.loads(state.read_text(encoding="utf-8"))["mirakl"]["actions"]
            break
        except (ValueError, KeyError, FileNotFoundError):
            time.sleep(0.02)
    else:
        raise AssertionError(f"cannot read {state}")
    return Counter(
        line["order_line_id"] for action in actions.values() for line in action["cancelations"]
    )


class VirtualTime:
    """A clock that moves only when somebody sleeps; thread-safe.

    ``hold_first`` makes the first sleeper wait (real time, bounded) until a sleep
    comes from another thread too: proof that another worker was held back while the
    first one waited. ``before_advance`` runs (under the lock) before the clock moves.
    """

    def __init__(self, *, hold_first: bool = False) -> None:
        self.now = 1_000_000.0
        self.calls: list[tuple[str, float]] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._hold_first = hold_first
        self.before_advance: Callable[[], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        me = threading.current_thread().name
        with self._changed:
            if self.before_advance is not None:
                self.before_advance()
            self.calls.append((me, seconds))
            self.now += seconds
            self._changed.notify_all()
            if self._hold_first and len(self.calls) == 1:
                self._changed.wait_for(lambda: len(self.sleepers()) > 1, timeout=10)

    def sleepers(self) -> set[str]:
        with self._lock:
            return {name for name, _ in self.calls}

    def wait_for_a_sleep(self, timeout: float = 10.0) -> None:
        with self._changed:
            self._changed.wait_for(lambda: bool(self.calls), timeout=timeout)
