"""``cancelkit worker``: a Celery worker that sends the cancellations of queued jobs.

It runs the app of :mod:`cancelkit.cluster.app` with cancelkit's configuration
(``broker_url``, ``ledger_url``, ``limiter_url``: environment, then the config file
named by the global ``--config``/``--profile``), the same as ``celery -A
cancelkit.celery worker``. Before starting it checks the ledger (exit 4 if it cannot
be used), says where each setting points (passwords masked), and warns where the
setup cannot keep its promises across processes (an SQLite ledger; no shared limiter).

Imported only when ``cancelkit worker`` runs (``cancelkit.cli._LAZY``): Celery loads
then, never for ``cancelkit --help``.
"""

from __future__ import annotations

import os
import sys

import click

from ..cli import _reports_errors, _State, pass_state

#: Worker pools offered: prefork (processes), solo (one task at a time), threads.
POOLS = ("prefork", "solo", "threads")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@click.command("worker")
@click.option(
    "-c", "--concurrency", type=click.IntRange(1, 1024), default=None,
    help="Tasks at once (processes or threads). Default: the number of CPUs.",
)  # fmt: skip
@click.option(
    "-l", "--loglevel", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="INFO",
    show_default=True, help="Logging level.",
)  # fmt: skip
@click.option(
    "-Q", "--queues", metavar="NAMES", default=None,
    help="Comma-separated queues to read (default: cancelkit).",
)  # fmt: skip
@click.option(
    "-P", "--pool", type=click.Choice(POOLS), default="prefork", show_default=True,
    help="prefork: processes; solo: one task at a time; threads: threads.",
)  # fmt: skip
@click.option("-n", "--hostname", metavar="NAME", help="Worker name (default: celery@HOST).")
@pass_state
@_reports_errors
def worker(
    state: _State,
    concurrency: int | None,
    loglevel: str,
    queues: str | None,
    pool: str,
    hostname: str | None,
) -> None:
    """Send the cancellations queued by `cancelkit bulk FILE --queue`.

    Reads broker_url, ledger_url and limiter_url from the environment
    ($CANCELKIT_BROKER_URL, $CANCELKIT_LEDGER_URL, $CANCELKIT_LIMITER_URL) or the
    config file, like every command. Every worker of a cluster must share one
    ledger (PostgreSQL) and one limiter (Redis). Stop it with Ctrl-C or SIGTERM:
    the tasks running finish first; a killed worker's tasks are delivered again,
    and the ledger keeps them from being sent twice.

    \b
    Same as: celery -A cancelkit.celery worker --concurrency 4
    \b
    Example:
      cancelkit worker --concurrency 4
      CANCELKIT_BROKER_URL=redis://queue.internal:6379/0 cancelkit worker
    """
    from ..cluster import settings
    from ..cluster.app import QUEUE, make_app
    from ..core.ledger.location import ledger_url
    from ..core.ledger.store import Ledger
    from ..core.limiterlocation import limiter_url, shown_url
    from ..errors import ConfigurationError

    # Pool processes and `celery -A cancelkit.celery` read the config file from the
    # environment: the global options reach them that way.
    if state.config_path is not None:
        os.environ["CANCELKIT_CONFIG"] = str(state.config_path)
    if state.profile:
        os.environ["CANCELKIT_PROFILE"] = state.profile
    broker, broker_where = settings.broker_url(config_path=state.config_path, profile=state.profile)
    problem = settings.broker_problem(broker)
    if problem is not None:  # said now (exit 4), not as Celery's internal error
        raise ConfigurationError(f"{broker_where} {shown_url(broker)}: {problem}")
    app = make_app(broker)
    ledger_at = ledger_url(config_path=state.config_path, profile=state.profile)
    # Opened once here, before any process forks: tables created or upgraded, and a
    # ledger that cannot be used stops the worker now (exit 4), not each task.
    with Ledger(ledger_at) as ledger:
        ledger_shown = ledger.display_url
    limiter = limiter_url(config_path=state.config_path, profile=state.profile)
    processes = concurrency or os.cpu_count() or 1
    say = click.echo
    say(f"cancelkit worker: broker {shown_url(broker)} ({broker_where})", err=True)
    say(f"  ledger {ledger_shown}", err=True)
    say(f"  limiter {shown_url(limiter[0]) if limiter else 'none (limits kept per process)'}",
        err=True)  # fmt: skip
    if ledger_at.startswith("sqlite"):
        say(
            "warning: the ledger is an SQLite file: only processes on this machine share "
            "it; workers on other machines need ledger_url = a PostgreSQL URL",
            err=True,
        )
    if limiter is None and (processes > 1 or pool == "prefork"):
        say(
            "warning: limiter_url is not set: each worker process keeps its own rate limits, "
            "so several processes or machines together can exceed a platform's limit (About "
            "You: 50 cancels a minute); set limiter_url to a Redis they all share",
            err=True,
        )
    argv = ["worker", f"--loglevel={loglevel.upper()}", f"--pool={pool}"]
    argv.append(f"--queues={queues or QUEUE}")
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    code = app.start(argv)  # worker_main, which keeps the exit code
    sys.exit(code or 0)
