"""Run the fault matrix (:mod:`.faults`): one cell is one fault on one platform.

``python -m cancelkit.testing.matrix [PLATFORM...]`` prints it for the installed
platforms as a Markdown table (outcome, exit code, times the call reached the
platform), each cell marked where it breaks the contract.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .clock import ControlledClock
from .faults import FAULT_MATRIX, Expected, FaultCase, Traits, cases_for, exit_code

if TYPE_CHECKING:
    from .harness import Harness
    from .subject import Subject


@dataclass(frozen=True)
class Cell:
    """What one fault came to."""

    outcome: str  # a result's outcome, or the name of the cancelkit error raised
    exit_code: int
    sent: int  # times the cancel call reached the platform (token calls not counted)
    message: str = ""
    retry_after: float | None = None
    sleeps: tuple[float, ...] = field(default=())


def traits(subject: Subject, config: Mapping[str, Mapping[str, str]], normal: str | None) -> Traits:
    """What the platform's contract outcomes depend on (``normal`` given or by its mode)."""
    caps = subject.adapter.capabilities
    with subject.client(config) as client:
        settings = subject.settings_of(client)
    refresh = subject.adapter.authenticator(settings, ControlledClock()).can_refresh
    usual = normal or ("accepted" if caps.mode == "async" else "cancelled")
    return Traits(usual, caps.resend_safe, refresh)


def run_cell(subject: Subject, harness: Harness, case: FaultCase) -> Cell:
    """Send the first example once with ``case``'s fault queued (the harness is reset)."""
    from cancelkit.core.sandbox.server import Sandbox
    from cancelkit.errors import CancelkitError

    harness.reset()
    config: dict[str, dict[str, str]] = harness.box.client_config()
    if case.timeout:
        config[harness.emulator.platform]["timeout"] = case.timeout
    if case.kind is None:  # a port nothing listens on any more: connection refused
        gone = Sandbox([subject.emulator()]).start()
        config = gone.client_config()
        gone.stop()
    else:
        harness.box.inject(case.kind, platform=subject.platform, **case.params)
    clock = ControlledClock()
    retry_after: float | None = None
    outcome: str
    with subject.client(config, clock) as client:
        try:
            result = client.send(subject.example(), subject.platform)
            outcome, code, message = result.outcome, exit_code(result.outcome), result.message
            retry_after = result.retry_after
        except CancelkitError as error:
            outcome, code, message = type(error).__name__, error.exit_code, str(error)
    sent = len(harness.api_calls()) if case.kind is not None else 0
    return Cell(outcome, code, sent, message or "", retry_after, tuple(clock.sleeps))


def problems(case: FaultCase, expected: Expected, cell: Cell) -> list[str]:
    """How ``cell`` breaks the contract for ``case`` (empty when it keeps it)."""
    found = []
    got = (cell.outcome, cell.exit_code, cell.sent)
    if got != (expected.outcome, expected.exit_code, expected.sent):
        found.append(
            f"got (outcome, exit code, times sent) {got}, the contract says "
            f"{(expected.outcome, expected.exit_code, expected.sent)}"
        )
    if cell.outcome == "rejected":  # only rate limits reject here
        if "rate limited" not in cell.message:
            found.append("a rejection that does not say it was rate limited")
        if case.kind in ("429", "503") and cell.retry_after is None:
            found.append("rate limited without saying when to retry")
    if cell.outcome == "unknown":  # the message says truthfully how often it went out
        told = "sent once" if cell.sent == 1 else f"sent {cell.sent} times"
        if told not in cell.message:
            found.append(f"an unknown outcome that does not say {told!r}")
    if case.sleeps is not None and cell.sleeps != case.sleeps:
        found.append(f"waited {cell.sleeps}, the contract says {case.sleeps}")
    if case.says is not None and case.says not in cell.message:
        found.append(f"the message does not say {case.says!r}")
    return found


def table(platforms: list[str] | None = None) -> tuple[str, int]:
    """The matrix of the installed platforms as Markdown, and how many cells break it."""
    from cancelkit.core.registry import PluginRegistry

    from .harness import Harness
    from .subject import subject_for

    registry = PluginRegistry()
    names = platforms or sorted(registry.platforms())
    registry.platforms()  # fills registry.providers
    columns: dict[str, dict[str, str]] = {}
    wrong = 0
    for name in names:
        registry.platform(name)  # an unknown name: UnknownPlatformError listing the known ones
        try:
            subject = subject_for(registry.pm.get_plugin(registry.providers[name]), name)
        except TypeError:  # no emulator or no example: nothing to run
            continue
        harness = Harness(subject)
        try:
            usual = traits(subject, harness.box.client_config(), None)
            for case in cases_for(tuple(harness.emulator.faults)):
                cell = run_cell(subject, harness, case)
                bad = problems(case, case.expected(usual), cell)
                wrong += bool(bad)
                columns.setdefault(case.name, {})[name] = (
                    f"{cell.outcome}, exit {cell.exit_code}, {cell.sent} sent"
                    + (" **!**" if bad else "")
                )
        finally:
            harness.close()
    shown = [n for n in names if any(n in row for row in columns.values())]
    rows = ["| fault | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for case in FAULT_MATRIX:
        if case.name in columns:
            cells = [columns[case.name].get(n, "n/a") for n in shown]
            rows.append(f"| {case.name} | " + " | ".join(cells) + " |")
    total = sum(len(row) for row in columns.values())
    rows.append(f"\n{total - wrong} of {total} cells as the contract says")
    return "\n".join(rows), wrong


def main(argv: list[str] | None = None) -> int:
    """Print the matrix; exit 1 if a cell breaks the contract."""
    text, wrong = table(list(sys.argv[1:] if argv is None else argv) or None)
    print(text)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
