"""``cancelkit bulk FILE``: many cancellations, resumable; ``cancelkit bulk report JOB``.

A run reads its input twice, streaming both times (memory stays flat in its size):
first to check every request (bad input anywhere: nothing is sent, exit 2) and list
them under the job, then to send. The job's id is the hash of the input's bytes, so
running the same command again is the same job: what the ledger already holds is
not sent again (held), and the rest goes out. Ctrl-C stops starting new sends; the
ones in flight finish and are recorded; a second Ctrl-C leaves at once (the ledger
keeps those in flight as unknown, never resent by themselves).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..cli import (
    EXIT_BY_OUTCOME,
    EXIT_INTERRUPTED,
    EXIT_PENDING,
    _maybe_sandbox,
    _reports_errors,
    _State,
    pass_state,
)
from ..core.bulkinput import FORMATS, BulkItem, Format, InputProblem, detect_format, read_items
from ..core.bulkprogress import escape_control as _say
from ..core.ledger.keys import DERIVED_PREFIX
from ..errors import FieldError, InvalidRequestError

#: Problems listed before "and N more" when the input is refused.
PROBLEMS_SHOWN = 20
#: Exit codes by how bad, worst first: unknown over rejected over pending over done.
SEVERITY = (3, 1, EXIT_PENDING, 0)


class _BulkGroup(click.Group):
    """``bulk FILE`` runs a job; ``bulk report JOB`` reports one (``./report`` for a file)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("bulk", cls=_BulkGroup)
def bulk() -> None:
    """Send many cancellations from a file; resume by running it again.

    \b
    FILE holds JSON Lines (one canonical request per line, plus "platform") or
    CSV (.csv: one order line per row; see the README for the columns).
    Every request is checked first: bad input anywhere, nothing is sent.
    The ledger holds what was sent: rerunning the same command sends the rest.

    \b
    Examples:
      cancelkit bulk cancels.jsonl --sandbox
      cancelkit bulk stock-out.csv --wait
      cancelkit bulk report 3f2a9c41d0be --format csv
    """


@bulk.command("run")
@click.argument("input_file", metavar="FILE|-")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="Input format (default: by its name)."
)
@click.option("--sandbox", is_flag=True, help="Send to the built-in emulator (no account).")
@click.option("--wait", is_flag=True, help="Follow asynchronous outcomes to their end.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=0, min_open=True), default=600.0,
    show_default=True, metavar="SECONDS", help="With --wait: the longest wait per request.",
)  # fmt: skip
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
    help="Sends in flight at once, per platform.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON result per line on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.option(
    "--queue", metavar="URL", default=None,
    help="Queue the requests on this Celery broker for `cancelkit worker`s instead of "
    "sending them here (cluster mode; see docs/cluster.md).",
)  # fmt: skip
@pass_state
@_reports_errors
def run(
    state: _State,
    input_file: str,
    fmt: Format | None,
    sandbox: bool,
    wait: bool,
    wait_timeout: float,
    concurrency: int,
    as_json: bool,
    quiet: bool,
    queue: str | None,
) -> None:
    """Send every request of FILE (- for stdin)."""
    from ..core import jsonutil
    from ..core.bulkprogress import BulkProgress

    if queue is not None:  # cluster mode: workers send, through the shared ledger
        from ..cluster.bulkjob import queue_job

        for flag, given in (("--sandbox", sandbox), ("--wait", wait)):
            if given:
                raise InvalidRequestError(FieldError(
                    "--queue", f"cannot be combined with {flag}: workers send queued jobs"
                    + (" (follow it with cancelkit bulk report JOB)" if flag == "--wait" else "")
                ))  # fmt: skip
        if not queue.strip():
            raise InvalidRequestError(FieldError("--queue", "must be a broker URL"))
        sys.exit(queue_job(state, input_file, fmt, queue, as_json=as_json, quiet=quiet))

    chosen = detect_format(input_file, fmt)
    with _input(input_file, chosen) as (path, job_id), _maybe_sandbox(state, sandbox) as config:
        client = state.client(config)
        ledger = client.ledger
        assert ledger is not None  # the command line always records
        with _terminate_interrupts():  # a listing cut short is redone by the next run
            total = _check(client, ledger, path, chosen, job_id, input_file)
        say = click.echo
        if not quiet:
            say(f"bulk job {job_id}: {total} requests from {_say(input_file)}", err=True)
        stop, interrupted = threading.Event(), threading.Event()
        worst, fatal = 0, False
        with (
            _first_interrupt_stops(stop, interrupted),
            BulkProgress(total, quiet=quiet) as progress,
        ):
            items = (
                (i.platform, i.request) for i in _items(path, chosen) if isinstance(i, BulkItem)
            )
            for done in client.send_many(
                items, concurrency=concurrency, wait=wait, wait_timeout=wait_timeout, stop=stop
            ):
                label = "already" if done.held else done.outcome
                if label == "error":
                    label = "unknown"  # could not connect: said in the note, not sent
                progress.done(label)
                worst = _worse(worst, _exit_code(done.outcome, wait))
                if done.error is not None:
                    progress.note(f"request {done.index + 1} ({done.platform}): {done.error}")
                    if done.error.exit_code == 4:  # configuration: every send would fail
                        stop.set()
                        fatal = True
                if as_json:
                    line = {"number": done.index + 1, "platform": done.platform,
                            "held": done.held,
                            "result": done.result.to_dict() if done.result else None,
                            "error": str(done.error) if done.error else None}  # fmt: skip
                    click.echo(jsonutil.dumps(line))
        if progress.live:  # the bar cuts long counts at the terminal's width: all of them
            say(progress.summary(), err=True)
        report = f"cancelkit bulk report {job_id}" + (" --sandbox" if sandbox else "")
        if fatal:
            say(f"stopped: a configuration problem (above). Per line: {report}", err=True)
            sys.exit(4)
        if interrupted.is_set():
            say(
                f"interrupted: the sends in flight finished and are recorded; run the same "
                f"command again to send the rest. Per line: {report}",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
        if not quiet:
            say(f"per line: {report}", err=True)
        sys.exit(worst)


@bulk.command("report")
@click.argument("job")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table",
    show_default=True, help="table for people, csv for spreadsheets, json: JSON Lines.",
)  # fmt: skip
@click.option("--sandbox", is_flag=True, help="A job run with --sandbox.")
@pass_state
@_reports_errors
def report(state: _State, job: str, fmt: str, sandbox: bool) -> None:
    """Each request of JOB with its outcome; the exit code summarises (0, 1, 3, 5)."""
    import csv

    from ..core import jsonutil
    from .ledger import opened_ledger

    with opened_ledger(state, sandbox) as ledger:
        record = ledger.job(job)
        writer = csv.writer(sys.stdout) if fmt == "csv" else None
        columns = ("number", "where", "platform", "outcome", "tracking_id", "key", "message")
        if writer is not None:
            writer.writerow(columns)
        elif fmt == "table":
            source = _say(record["source"])
            click.echo(f"job {record['id']}: {record['total']} requests from {source}")
        worst = 0
        for line, entry in ledger.job_report(record["id"]):
            outcome = entry.outcome if entry is not None else "not sent"
            result = (entry.latest or entry.result or {}) if entry is not None else {}
            message = line["problem"] or result.get("message") or (entry.note if entry else "")
            row = {
                "number": line["number"],
                "where": line["location"],
                "platform": line["platform"],
                "outcome": outcome,
                "tracking_id": entry.tracking_id if entry is not None else None,
                "key": line["key"],
                "message": message or "",
            }
            worst = _worse(worst, _exit_code(outcome, True))
            if fmt == "json":
                click.echo(jsonutil.dumps(row))
            elif writer is not None:
                writer.writerow([row[c] if row[c] is not None else "" for c in columns])
            else:
                tracking = f"  {row['tracking_id']}" if row["tracking_id"] else ""
                click.echo(_say(f"{row['number']:>7}  {row['where']:<10}  {row['platform']:<16}"
                                f"{outcome:<10}{tracking}  {row['message']}"))  # fmt: skip
    sys.exit(worst)


# -- the run's parts ----------------------------------------------------------------
@contextmanager
def _input(name: str, fmt: Format) -> Iterator[tuple[Path, str]]:
    """The input as a file (stdin is spooled to a temporary one) and its job id."""
    if name == "-":
        with tempfile.TemporaryDirectory(prefix="cancelkit-bulk-") as folder:
            path = Path(folder) / "stdin"
            with path.open("wb") as spool:
                shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
            yield path, _job_id(path, fmt)
        return
    path = Path(name)
    if not path.is_file():
        raise InvalidRequestError(FieldError("FILE", f"{name!r} is not a readable file"))
    yield path, _job_id(path, fmt)


def _job_id(path: Path, fmt: Format) -> str:
    """The job's id: the first 12 hex digits of the SHA-256 of the input's bytes.

    The same read checks that the input is UTF-8 text (an Excel CSV saved in cp1252 is
    refused naming its line, before anything is listed or sent).
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                where = line + block.count(b"\n", 0, error.start)
                unit = "row" if fmt == "csv" else "line"
                raise InvalidRequestError(
                    FieldError(
                        f"{unit} {where}",
                        f"not UTF-8 text (byte 0x{block[error.start]:02x}); save it as UTF-8",
                    )
                ) from None
            line += block.count(b"\n")
    return digest.hexdigest()[:12]


def _items(path: Path, fmt: Format) -> Iterator[BulkItem | InputProblem]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        yield from read_items(stream, fmt)


def _check(client: Any, ledger: Any, path: Path, fmt: Format, job_id: str, name: str) -> int:
    """Check every request (nothing sent); list them under the job. Returns how many.

    Bad input anywhere refuses the whole run (exit 2) with each problem's place; so
    does a request repeated in the input (one key: it would go out once). A job whose
    listing was cut short (killed while checking) is listed afresh.
    """
    record = ledger.find_job(job_id)
    listing = record is None or record["total"] == 0  # 0: a listing that never finished
    if listing:
        if record is not None:
            ledger.drop_job(job_id)
        ledger.start_job(job_id, source=name, fmt=fmt, total=0)
    problems: list[FieldError] = []
    count = refused = 0

    def refuse(where: str, path: str, message: str) -> None:
        nonlocal refused
        refused += 1
        if len(problems) < PROBLEMS_SHOWN:  # memory stays flat, however bad the file
            problems.append(FieldError(f"{where}: {path}" if path else where, message))

    def lines() -> Iterator[tuple[int, str, str, str | None, str | None]]:
        nonlocal count
        try:
            for item in _items(path, fmt):
                count += 1
                if isinstance(item, InputProblem):
                    refuse(item.where, item.field, item.reason)
                    continue
                try:
                    key, fingerprint = client.key_and_fingerprint(item.request, item.platform)
                except InvalidRequestError as error:
                    for problem in error.errors:
                        refuse(item.where, problem.path, problem.message)
                    continue
                if not key.startswith(DERIVED_PREFIX):  # the user's key: used before?
                    earlier = ledger.get(key)
                    if earlier is not None and earlier.fingerprint != fingerprint:
                        refuse(item.where, "idempotency_key", f"{key!r} was already used for "
                               f"a different request (to {earlier.platform})")  # fmt: skip
                        continue
                yield item.number, item.where, item.platform, key, None
        except UnicodeDecodeError as error:
            refuse(f"after item {count}", "encoding",
                   f"not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                   "save the file as UTF-8")  # fmt: skip

    if listing:
        ledger.add_job_lines(job_id, lines())
        for key, where, first in ledger.repeated_keys(job_id, PROBLEMS_SHOWN):
            if key.startswith(DERIVED_PREFIX):  # the same request twice
                refuse(
                    where,
                    "request",
                    f"repeats {first} (the same ledger key {key}); it "
                    "would go out once: remove it, or give each its own idempotency_key",
                )
            else:  # the user's own key, given twice
                refuse(where, "idempotency_key", f"{key!r} is also the key of {first}; each "
                       "request needs its own")  # fmt: skip
    else:
        for _ in lines():
            pass
    if count == 0 and not refused:
        refuse("FILE", "", f"{name!r} holds no request")
    if refused:
        if listing:
            ledger.drop_job(job_id)
        if refused > len(problems):
            problems.append(FieldError("input", f"and {refused - len(problems)} more problems"))
        raise InvalidRequestError(problems)
    if listing:
        ledger.set_job_total(job_id, count)
    return count


@contextmanager
def _first_interrupt_stops(stop: threading.Event, interrupted: threading.Event) -> Iterator[None]:
    """The first Ctrl-C (or SIGTERM) sets ``stop``; a second one leaves at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if interrupted.is_set():
            # At once: no waiting for the sends in flight. Their claims stay in the
            # ledger as unknown, never resent by themselves.
            sys.stderr.write(
                "\nleft at once: the sends in flight stay unknown in the ledger "
                "(cancelkit ledger list --unknown)\n"
            )
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        interrupted.set()
        stop.set()
        click.echo(
            "\nstopping: the sends in flight finish and are recorded (Ctrl-C again to "
            "leave now; those stay unknown in the ledger)",
            err=True,
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _terminate_interrupts() -> Iterator[None]:
    """SIGTERM interrupts like Ctrl-C (exit 130), rather than killing without a word."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_code(outcome: str, waited: bool) -> int:
    if outcome in ("unknown", "error"):
        return 3
    if outcome in ("rejected", "partial", "invalid", "not sent", "not_sent"):
        return 1
    if outcome == "accepted" and waited:
        return EXIT_PENDING
    return EXIT_BY_OUTCOME.get(outcome, 0)


def _worse(a: int, b: int) -> int:
    rank = {code: i for i, code in enumerate(SEVERITY)}
    return a if rank.get(a, -1) <= rank.get(b, -1) else b
