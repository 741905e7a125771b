"""``cancelkit bulk FILE --queue URL``: a bulk job queued for workers, not sent here.

The input is checked and listed under the job in the ledger exactly as ``bulk FILE``
does (bad input anywhere: nothing is queued, exit 2); then one ``cancelkit.send`` task
per request goes to the broker, and ``cancelkit worker`` processes send them through
the shared ledger. ``cancelkit bulk report JOB`` follows the job from any machine that
reads the same ledger.

Queueing the same file again is safe (it is the same job, and what the ledger holds is
not sent again) and is how a job is resumed after its tasks were lost: a broker that
lost its data, or Redis dying in the instant between a worker taking a task and
recording that it holds it (Celery's Redis transport takes the task, then records it:
not one atomic step). Only the lines that may still need a task are queued again:
those never claimed, those the ledger would send again (rate limited, never sent), and
those accepted (to follow them again); lines with a final outcome are skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..core.limiterlocation import shown_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cli import _State
    from ..core.bulkinput import Format
    from ..core.client import Client
    from ..core.ledger.store import LedgerEntry
    from .enqueue import QueuedItem


def queue_job(
    state: _State, input_file: str, fmt: Format | None, url: str, *, as_json: bool, quiet: bool
) -> int:
    """Check, list and queue every request of ``input_file`` on the broker at ``url``;
    the exit code (0: all queued)."""
    from ..commands.bulk import _check, _input, _items, _terminate_interrupts
    from ..core import jsonutil
    from ..core.bulkinput import BulkItem, detect_format
    from ..core.bulkprogress import escape_control as _say
    from ..errors import FieldError, InvalidRequestError
    from .app import make_app
    from .enqueue import broker_connection, enqueue_many
    from .settings import broker_problem

    shown = shown_url(url)
    problem = broker_problem(url)
    if problem is not None:  # before the input is read: nothing listed, nothing queued
        raise InvalidRequestError(FieldError("--queue", f"{shown}: {problem}"))
    chosen = detect_format(input_file, fmt)
    app = make_app(url)
    with broker_connection(app):  # a broker that cannot be reached: exit 4, nothing listed
        pass
    with _input(input_file, chosen) as (path, job_id):
        client = state.client()
        ledger = client.ledger
        assert ledger is not None  # the command line always records
        with _terminate_interrupts():  # a listing cut short is redone by the next run
            total = _check(client, ledger, path, chosen, job_id, input_file)
        if not quiet:
            click.echo(f"bulk job {job_id}: {total} requests from {_say(input_file)}", err=True)
        if ledger.engine.dialect.name == "sqlite":
            click.echo(
                f"warning: the ledger is an SQLite file ({ledger.display_url}): only workers on "
                "this machine can share it; for workers on other machines set ledger_url to "
                "a PostgreSQL URL, here and on every worker",
                err=True,
            )

        settled = 0

        def items() -> Iterator[QueuedItem]:
            nonlocal settled
            for item in _items(path, chosen):
                if isinstance(item, BulkItem):
                    key = _key(client, item)
                    if key is not None and _settled(client, ledger.get(key), item.platform):
                        settled += 1
                        continue
                    yield item.platform, item.request, key

        queued = enqueue_many(app, items(), job=job_id)
    if as_json:
        click.echo(jsonutil.dumps(
            {"job": job_id, "queued": queued, "settled": settled, "broker": shown}
        ))  # fmt: skip
    else:
        skipped = f" ({settled} settled in the ledger, not queued again)" if settled else ""
        click.echo(f"bulk job {job_id}: {queued} requests queued on {shown}{skipped}")
        click.echo(f"follow it: cancelkit bulk report {job_id}")
    return 0


def _settled(client: Client, entry: LedgerEntry | None, platform: str) -> bool:
    """True when a task for this line could do nothing: the ledger holds it as final, or
    as unknown (never resent). Never claimed, sendable again, or accepted (a task
    follows it again): False."""
    from ..core import once

    if entry is None or entry.outcome == "accepted":
        return False
    deduplicating = client.registry.platform(platform).capabilities.resend_safe
    return not once.may_send_again(entry, resend=False, deduplicating=deduplicating)


def _key(client: Client, item: object) -> str | None:
    """The ledger key the job lists the item under (the worker compares its own)."""
    from ..core.bulkinput import BulkItem

    assert isinstance(item, BulkItem)
    return client.key_for(item.request, item.platform)
