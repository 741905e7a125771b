"""The two tasks of cluster mode, ``cancelkit.send`` and ``cancelkit.follow_status``.

``cancelkit.send(platform, request, job=None, key=None)`` sends one canonical request
through the worker process's :class:`~cancelkit.core.client.Client`, exactly as
``cancelkit send`` would: the client claims the request's key in the (shared) ledger
before the call leaves, so a task delivered twice - its worker killed before it was
acknowledged, say - finds the entry and never sends again. What follows the answer:

- held by the ledger (sent before): nothing is sent; an ``accepted`` entry is followed
  again (its first follower may have died with the worker);
- rejected as retryable (``RATE_LIMITED``...): the task is retried after the wait the
  platform named (``retry_after``, else 2, 4, 8... s), :data:`MAX_RETRIES` times at
  most; a wait longer than :data:`MAX_COUNTDOWN` is not queued (the result stays as
  recorded; enqueueing the job again sends it);
- ``accepted`` with a tracking id: ``cancelkit.follow_status`` is scheduled;
- ``unknown``: recorded by the ledger, never retried (it may have been applied);
- nothing could be sent (``TransportError``; the ledger or the shared limiter did not
  answer): retried with backoff, the ledger having let the key go;
- bad input, configuration, credentials: logged, not retried.

``cancelkit.follow_status(platform, tracking_id, deadline_epoch, polls=0)`` asks for the
status once (the client records a final answer in the ledger) and, while the cancel is
still ``accepted`` (or the answer could not be read), schedules itself again at the
platform's pace until ``deadline_epoch`` (Unix time; :data:`FOLLOW_FOR` after the send).
One chain of follow-ups per tracking id, each waiting at least the platform's
``status_interval``, keeps to limits such as Mirakl's one status call a minute per
action across every worker.

Each worker process (and thread, for ``--pool threads``) makes its own client at its
first task, after the fork: HTTP sessions and database connections are never shared
with the parent. They are closed when the process shuts down.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.secrets import scrubbed_logger
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ServiceUnavailableError,
    TransportError,
)

if TYPE_CHECKING:
    from celery import Celery, Task

    from ..core.client import Client
    from ..core.model import CancelResult

__all__ = [
    "FOLLOW",
    "FOLLOW_FOR",
    "MAX_COUNTDOWN",
    "MAX_RETRIES",
    "SEND",
    "close_clients",
    "first_poll",
    "follow_status_body",
    "next_poll",
    "register",
    "send_body",
    "set_client_factory",
    "worker_client",
]

SEND = "cancelkit.send"
FOLLOW = "cancelkit.follow_status"
#: Retries of one send that nothing was applied for (rate limited, could not connect).
MAX_RETRIES = 10
#: The longest countdown a task is queued with, in seconds (as ``cancelkit bulk`` waits
#: at most this long for one platform's Retry-After): anything longer (a daily quota)
#: is left as recorded, to be sent when the job is enqueued again.
MAX_COUNTDOWN = 300.0
#: Seconds an accepted cancel is followed after it was sent.
FOLLOW_FOR = 24 * 3600.0

log = scrubbed_logger("cancelkit.cluster")


# -- one client per worker process (and thread) ------------------------------------
class _Clients:
    """The clients this process made, one per thread, and how to make one."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.local = threading.local()
        self.made: list[Client] = []
        self.lock = threading.Lock()
        self.factory: Callable[[], Client] | None = None
        #: Clients made before a fork: kept referenced, never closed nor collected in
        #: the child, whose closing would end connections the parent still uses.
        self.inherited: list[Client] = []


_clients = _Clients()


def _new_client() -> Client:
    """A client configured like the command line's: environment, then the config file
    (``$CANCELKIT_CONFIG``, ``$CANCELKIT_PROFILE``); ledger at ``ledger_url``, shared
    limits at ``limiter_url``."""
    from ..core.client import Client

    return Client()


def worker_client() -> Client:
    """This process's (and thread's) client, made at first use."""
    if os.getpid() != _clients.pid:  # forked since: the parent's client is not ours
        _forget_inherited()
    client: Client | None = getattr(_clients.local, "client", None)
    if client is None:
        client = (_clients.factory or _new_client)()
        _clients.local.client = client
        with _clients.lock:
            _clients.made.append(client)
    return client


def set_client_factory(factory: Callable[[], Client] | None) -> None:
    """Make worker clients with ``factory`` from now on (None: from the configuration).

    The clients made so far are closed. For tests and for programs that embed a worker
    with a client of their own.
    """
    close_clients()
    _clients.factory = factory


def close_clients() -> None:
    """Close every client this process made (its HTTP sessions, its ledger)."""
    with _clients.lock:
        made, _clients.made = _clients.made, []
        _clients.local = threading.local()
    for client in made:
        try:
            client.close()
        except Exception as error:  # shutting down: say it, close the others
            log.warning("closing a cancelkit client failed: %s", error)


def _forget_inherited(**_: Any) -> None:
    """In a fresh worker process: start without the parent's clients."""
    with _clients.lock:
        _clients.inherited.extend(_clients.made)
        _clients.made = []
        _clients.local = threading.local()
        _clients.pid = os.getpid()


def _close_at_shutdown(**_: Any) -> None:
    close_clients()


_signals_connected = False


def connect_process_signals() -> None:
    """Fresh clients in each pool process; every client closed when its process ends."""
    global _signals_connected
    if _signals_connected:
        return
    from celery import signals

    signals.worker_process_init.connect(_forget_inherited, weak=False)
    from . import stopping

    stopping.connect()  # a SIGTERM to every process of the service: sends finish first
    signals.worker_process_shutdown.connect(_close_at_shutdown, weak=False)
    signals.worker_shutdown.connect(_close_at_shutdown, weak=False)  # solo, threads
    _signals_connected = True


# -- pacing -------------------------------------------------------------------------
def first_poll(client: Client, platform: str) -> float:
    """Seconds from an accepted send to its first status poll: the platform's poll
    interval, and never less than its ``status_interval``."""
    return next_poll(client, platform, 0)


def next_poll(client: Client, platform: str, polls: int) -> float:
    """Seconds to wait after the ``polls``-th status poll, as ``Client.wait`` paces
    them: the poll interval stretched by the adapter's ``poll_backoff`` up to its
    ceiling, never less than the platform's ``status_interval``."""
    adapter = client.registry.platform(platform)
    interval = adapter.poll_interval(client.settings(platform))
    factor, ceiling = adapter.poll_backoff()
    floor = adapter.capabilities.status_interval or 0.0
    for _ in range(polls):
        stretched = min(interval * factor, max(ceiling, interval))
        if stretched == interval:
            break  # at the ceiling (or no backoff): it stays there
        interval = stretched
    return max(interval, floor)


def _backoff(retries: int) -> float:
    """2, 4, 8... seconds, at most :data:`MAX_COUNTDOWN`."""
    return float(min(2.0 ** (retries + 1), MAX_COUNTDOWN))


def _transient(error: ConfigurationError) -> bool:
    """A configuration error that is an outage, not a mistake: the ledger's database or
    the shared limiter's Redis did not answer. A later try may work, and is safe."""
    return isinstance(error, ServiceUnavailableError)


# -- the tasks ----------------------------------------------------------------------
def _summary(result: CancelResult) -> dict[str, Any]:
    """What a task returns (and logs): the outcome, where the ledger holds it."""
    ledger = result.details.get("ledger") or {}
    return {
        "platform": result.platform,
        "outcome": result.outcome,
        "tracking_id": result.tracking_id,
        "key": ledger.get("key"),
        "held": bool(ledger.get("held")),
    }


def _later(task: Task, name: str, args: tuple[Any, ...], countdown: float) -> None:
    """Queue task ``name`` of ``task``'s app in ``countdown`` seconds."""
    task.app.tasks[name].apply_async(args=args, countdown=countdown)


def _retry(task: Task, countdown: float, why: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Retry ``task`` in ``countdown`` seconds (raises Celery's Retry), unless its
    retries are spent or the wait is too long: then the summary, logged."""
    retries = int(task.request.retries or 0)
    where = f"{summary['platform']} {summary.get('key') or ''}".rstrip()
    if retries >= MAX_RETRIES:
        log.warning(
            "%s: %s; not retried after %d retries (left as the ledger records it: "
            "enqueue the job again to send it)",
            where, why, retries,
        )  # fmt: skip
        return summary
    if countdown > MAX_COUNTDOWN:
        log.warning(
            "%s: %s; the platform asks to wait %.0f s, more than %.0f s: not retried "
            "(enqueue the job again later to send it)",
            where, why, countdown, MAX_COUNTDOWN,
        )  # fmt: skip
        return summary
    log.info("%s: %s; retry %d in %.1f s", where, why, retries + 1, countdown)
    raise task.retry(countdown=countdown, max_retries=MAX_RETRIES)


def send_body(
    task: Task,
    platform: str,
    request: Mapping[str, Any],
    job: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """The body of ``cancelkit.send`` (``task`` is the bound Celery task).

    ``key``: the ledger key the enqueuing machine listed the request under; a different
    key here means this worker's settings differ (another ``base_url``): logged, as the
    job's report would not find this send.
    """
    client = worker_client()
    label = f"{platform} request" + (f" of job {job}" if job else "")
    nothing_sent = {"platform": platform, "outcome": "not_sent", "tracking_id": None,
                    "key": key, "held": False}  # fmt: skip
    try:
        result = client.send(request, platform)
    except InvalidRequestError as error:
        problems = "; ".join(str(e) for e in error.errors) or str(error)
        log.error("%s refused, nothing sent (not retried): %s", label, problems)
        return {**nothing_sent, "outcome": "invalid"}
    except TransportError as error:  # nothing was sent: the ledger let the key go
        return _retry(task, _backoff(task.request.retries or 0), str(error), nothing_sent)
    except ConfigurationError as error:
        if _transient(error):  # an outage of the ledger or the limiter: nothing sent
            return _retry(task, _backoff(task.request.retries or 0), str(error), nothing_sent)
        log.error("%s not sent (configuration; not retried): %s", label, error)
        raise
    except AuthenticationError as error:
        log.error("%s not sent (credentials refused; not retried): %s", label, error)
        raise
    summary = _summary(result)
    if key and summary["key"] and summary["key"] != key:
        log.warning(
            "%s: this worker's ledger key %s differs from the enqueued %s: its settings "
            "(base URL) differ from the enqueuing machine's, so the job's report will not "
            "find this send",
            label, summary["key"], key,
        )  # fmt: skip
    log.info(
        "%s: %s%s (ledger key %s)",
        label, result.outcome, " (held: sent before, not sent again)" if summary["held"] else "",
        summary["key"],
    )  # fmt: skip
    if not summary["held"] and result.retryable:
        pause = result.retry_after
        countdown = pause if pause is not None else _backoff(task.request.retries or 0)
        return _retry(task, countdown, f"{result.outcome}: {result.message}", summary)
    if result.outcome == "accepted" and result.tracking_id:
        deadline = time.time() + FOLLOW_FOR
        countdown = first_poll(client, platform)
        _later(task, FOLLOW, (platform, result.tracking_id, deadline, 0), countdown)
    elif result.outcome == "unknown" and not summary["held"]:
        log.warning(
            "%s: outcome unknown, recorded in the ledger and NOT retried (it may have been "
            "applied): check it, then cancelkit ledger resolve %s",
            label, summary["key"],
        )  # fmt: skip
    return summary


def follow_status_body(
    task: Task,
    platform: str,
    tracking_id: str,
    deadline_epoch: float,
    polls: int = 0,
) -> dict[str, Any]:
    """The body of ``cancelkit.follow_status``: one status poll, and the next scheduled
    while the cancel is not final, until ``deadline_epoch``."""
    client = worker_client()
    where = f"{platform} {tracking_id}"
    result: CancelResult | None = None
    try:
        result = client.status(platform, tracking_id)
    except InvalidRequestError as error:
        log.error("%s: cannot be followed: %s", where, error)
        return {"platform": platform, "outcome": "invalid", "tracking_id": tracking_id}
    except TransportError as error:  # asked nothing: ask again at the next interval
        log.info("%s: status not asked (%s); asking again later", where, error)
    except ConfigurationError as error:
        if not _transient(error):
            log.error("%s: not followed (configuration): %s", where, error)
            raise
        log.info("%s: status not asked (%s); asking again later", where, error)
    except AuthenticationError as error:
        log.error("%s: not followed (credentials refused): %s", where, error)
        raise
    polls += 1
    outcome = result.outcome if result is not None else "unknown"
    summary = {"platform": platform, "outcome": outcome, "tracking_id": tracking_id}
    if outcome not in ("accepted", "unknown"):
        log.info("%s: %s after %d status polls (recorded in the ledger)", where, outcome, polls)
        return summary
    pause = next_poll(client, platform, polls)
    retry_after = result.retry_after if result is not None else None
    if outcome == "unknown" and retry_after is not None and retry_after > pause:
        pause = retry_after  # the platform's Retry-After on a status answer
    if time.time() + pause > deadline_epoch:
        log.warning(
            "%s: still %s after %d status polls; stopped following at the deadline: "
            "cancelkit status -p %s %s",
            where, outcome, polls, platform, tracking_id,
        )  # fmt: skip
        return summary
    _later(task, FOLLOW, (platform, tracking_id, deadline_epoch, polls), pause)
    return summary


def register(app: Celery) -> None:
    """Add ``cancelkit.send`` and ``cancelkit.follow_status`` to ``app``."""
    options: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "ignore_result": True,
        "max_retries": MAX_RETRIES,
    }
    app.task(name=SEND, **options)(send_body)
    app.task(name=FOLLOW, **options)(follow_status_body)


def __getattr__(name: str) -> Task:
    """``send`` and ``follow_status``: the tasks of the default app
    (:data:`cancelkit.cluster.app.app`), made at first use."""
    tasks = {"send": SEND, "follow_status": FOLLOW}
    if name not in tasks:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import app as module

    task: Task = module.make_default().tasks[tasks[name]]
    return task
