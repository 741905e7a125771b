"""The reliability matrix: every wire fault x every platform gives the contract's outcome.

Each cell runs the real client against a fresh sandbox with one fault queued and
records the outcome (or the error), the CLI exit code it maps to, and how many
cancel requests reached the server. ``python tests/test_reliability.py`` prints
the same matrix as a Markdown table (the closing note of issue 8 quotes it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import cancelkit
from cancelkit.cli import EXIT_BY_OUTCOME
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import CancelkitError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PLATFORMS = ("mirakl", "salesforce", "salesforce-flow", "carriyo", "aboutyou")
#: What each platform answers when nothing goes wrong.
NORMAL = {
    "mirakl": "accepted",
    "salesforce": "cancelled",
    "salesforce-flow": "cancelled",
    "carriyo": "cancelled",
    "aboutyou": "accepted",
}
#: Platforms that deduplicate identical requests, so core resends once after "unknown".
DEDUPLICATING = {"aboutyou"}


@dataclass(frozen=True)
class Cell:
    outcome: str  # a result's outcome, or the name of the error raised
    exit_code: int
    requests: int  # cancel requests that reached the server (token calls not counted)
    retry_after: float | None = None
    message: str = ""
    sleeps: tuple[float, ...] = ()  # the waits the client made (recorded, not waited)


@dataclass(frozen=True)
class Fault:
    """One row: how to provoke it, and what the contract says must happen."""

    name: str
    inject: dict[str, Any]
    expected: Callable[[str], tuple[str, int, int]]
    timeout: str | None = None


def _unknown_unless_deduplicated(platform: str) -> tuple[str, int, int]:
    # Processed, answer lost: unknown and never resent - unless the platform
    # deduplicates, where one resend returns the same in-flight batch.
    if platform in DEDUPLICATING:
        return (NORMAL[platform], 0, 2)
    return ("unknown", 3, 1)


def _normal_after_one_retry(platform: str) -> tuple[str, int, int]:
    return (NORMAL[platform], EXIT_BY_OUTCOME[NORMAL[platform]], 2)


FAULTS = (
    Fault("429 with Retry-After", {"kind": "429", "retry_after": 1}, _normal_after_one_retry),
    Fault("429 without Retry-After", {"kind": "429", "retry_after": None}, _normal_after_one_retry),
    Fault("429 exhausted", {"kind": "429", "count": 3}, lambda p: ("rejected", 1, 3)),
    Fault("503 Retry-After exhausted", {"kind": "503", "count": 3}, lambda p: ("rejected", 1, 3)),
    Fault(
        "503 Retry-After beyond the bound",
        {"kind": "503", "retry_after": 3600},
        lambda p: ("rejected", 1, 1),
    ),
    Fault("500", {"kind": "500"}, _unknown_unless_deduplicated),
    Fault("502 HTML", {"kind": "html"}, _unknown_unless_deduplicated),
    Fault("malformed JSON", {"kind": "malformed"}, _unknown_unless_deduplicated),
    Fault("empty 2xx", {"kind": "empty"}, _unknown_unless_deduplicated),
    Fault("302 redirect", {"kind": "redirect"}, lambda p: ("unknown", 3, 1)),
    Fault("connection refused", {}, lambda p: ("TransportError", 3, 0)),
    Fault("reset after the request", {"kind": "reset"}, _unknown_unless_deduplicated),
    Fault("answer cut short", {"kind": "partial"}, _unknown_unless_deduplicated),
    Fault("read timeout", {"kind": "slow", "delay": 1.0}, _unknown_unless_deduplicated, "0.3"),
)


def example(platform: str) -> dict[str, Any]:
    return jsonutil.loads((EXAMPLES / f"{platform}.json").read_text())  # type: ignore[no-any-return]


def run_cell(platform: str, fault: Fault) -> Cell:
    """One platform, one fault, a fresh sandbox; sleeps are recorded, not waited."""
    seen: list[str] = []
    box = Sandbox(cancelkit.PluginRegistry().emulators(), log=seen.append).start()
    config = box.client_config()
    settings_name = box.emulator_for(platform).platform
    if fault.timeout:
        config[settings_name]["timeout"] = fault.timeout
    if fault.inject:
        box.inject(platform=platform, **fault.inject)
    else:
        box.stop()  # nothing listens on the port any more: connection refused
    sleeps: list[float] = []
    client = Client(config=config, sleep=sleeps.append)
    try:
        result = client.send(example(platform), platform)
        cell = Cell(
            result.outcome,
            EXIT_BY_OUTCOME[result.outcome],
            0,
            result.retry_after,
            result.message or "",
        )
    except CancelkitError as error:
        cell = Cell(type(error).__name__, error.exit_code, 0, None, str(error))
    finally:
        client.close()
        box.stop()
    prefix = f"/{settings_name}/"
    requests = sum(1 for line in seen if prefix in line and "/oauth" not in line)
    return Cell(
        cell.outcome, cell.exit_code, requests, cell.retry_after, cell.message, tuple(sleeps)
    )


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_fault_gives_the_contract_outcome(platform: str, fault: Fault) -> None:
    cell = run_cell(platform, fault)
    assert (cell.outcome, cell.exit_code, cell.requests) == fault.expected(platform), cell.message
    if cell.outcome == "rejected":  # only rate limits reject here
        assert cell.retry_after is not None, cell.message
        assert "rate limited" in cell.message
    if cell.outcome == "unknown":
        sent = "sent once" if cell.requests == 1 else f"sent {cell.requests} times"
        assert sent in cell.message  # the message says truthfully how often it went out
    if fault.name == "429 with Retry-After":  # every emulator's 429 carries it, honoured
        assert cell.sleeps == (1.0,), cell.sleeps
    if fault.name == "429 without Retry-After":  # core's own backoff
        assert cell.sleeps == (2.0,), cell.sleeps
    if fault.name == "302 redirect":
        assert "/moved/" in cell.message  # it names the Location
    if cell.outcome == "TransportError":
        assert "nothing was sent" in cell.message


@pytest.mark.parametrize("platform", ["salesforce", "salesforce-flow"])
def test_a_spent_quota_is_rate_limited_at_once(platform: str) -> None:
    cell = run_cell(platform, Fault("quota", {"kind": "quota"}, lambda p: ("rejected", 1, 1)))
    assert (cell.outcome, cell.exit_code, cell.requests) == ("rejected", 1, 1)


def table() -> str:
    """The whole matrix as Markdown: outcome, exit code and requests per cell."""
    rows = ["| fault | " + " | ".join(PLATFORMS) + " |", "|---" * (len(PLATFORMS) + 1) + "|"]
    wrong = 0
    for fault in FAULTS:
        cells = []
        for platform in PLATFORMS:
            cell = run_cell(platform, fault)
            ok = (cell.outcome, cell.exit_code, cell.requests) == fault.expected(platform)
            wrong += not ok
            cells.append(
                f"{cell.outcome}, exit {cell.exit_code}, {cell.requests} sent"
                + ("" if ok else " **!**")
            )
        rows.append(f"| {fault.name} | " + " | ".join(cells) + " |")
    total = len(FAULTS) * len(PLATFORMS)
    rows.append(f"\n{total - wrong} of {total} cells as the contract says")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    sys.exit(0)
