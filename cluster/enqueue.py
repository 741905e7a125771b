"""Putting cancellations on the queue: checked first, so bad input is never queued.

:func:`enqueue` checks one request (as ``Client.prepare`` does, nothing sent) and queues
a ``cancelkit.send`` task for it; :func:`enqueue_many` queues many over one broker
connection (``cancelkit bulk FILE --queue``, which has checked and listed them already).
A broker that cannot be reached is a ConfigurationError naming ``broker_url``, its
password masked (exit 4 on the command line).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..core.limiterlocation import shown_url
from ..errors import ConfigurationError
from .tasks import SEND

if TYPE_CHECKING:
    from celery import Celery
    from kombu.connection import Connection

    from ..core.client import Client
    from ..core.model import CancelRequest

__all__ = ["QueuedItem", "broker_connection", "enqueue", "enqueue_many"]

#: Tries at reaching the broker before giving up (each within the connect timeout).
CONNECT_TRIES = 2

#: ``(platform, request, ledger key or None)``: one request to queue.
QueuedItem = tuple[str, "CancelRequest | Mapping[str, Any]", "str | None"]


@contextmanager
def broker_connection(app: Celery, where: str = "broker_url") -> Iterator[Connection]:
    """A connection to ``app``'s broker, checked to answer; a ConfigurationError naming
    ``where`` and the URL (password masked) when it does not."""
    connection = app.connection_for_write()
    shown = shown_url(str(app.conf.broker_url))
    try:
        try:
            connection.ensure_connection(
                max_retries=CONNECT_TRIES - 1, interval_start=0.2, interval_step=0.5,
                interval_max=1.0, timeout=app.conf.broker_connection_timeout,
            )  # fmt: skip
        except Exception as error:  # kombu raises its own and the transport's errors
            raise ConfigurationError(
                f"{where} {shown}: the broker cannot be reached ({_why(error)}); nothing was queued"
            ) from None
        yield connection
    finally:
        connection.release()


def enqueue(
    platform: str,
    request: CancelRequest | Mapping[str, Any],
    *,
    job: str | None = None,
    app: Celery | None = None,
    client: Client | None = None,
) -> str:
    """Check ``request`` for ``platform`` and queue a ``cancelkit.send`` task; its id.

    Bad input raises InvalidRequestError and queues nothing. ``app`` defaults to
    :data:`cancelkit.cluster.app.app` (the configured ``broker_url``); ``client``
    (default: one configured like the command line's) checks the request and gives its
    ledger key, which the worker compares with its own.
    """
    if app is None:
        from .app import app as default_app

        app = default_app
    if client is None:
        from ..core.client import Client

        with Client(ledger=False) as own:
            key = own.key_for(request, platform)
    else:
        key = client.key_for(request, platform)
    with broker_connection(app) as connection:
        return _publish(app, connection, platform, request, job, key)


def enqueue_many(app: Celery, items: Iterable[QueuedItem], *, job: str | None = None) -> int:
    """Queue a ``cancelkit.send`` task for each already checked item; how many.

    A broker lost midway is a ConfigurationError saying how many were queued (queueing
    the same job again is safe: what the ledger holds is not sent again).
    """
    count = 0
    with broker_connection(app) as connection:
        for platform, request, key in items:
            try:
                _publish(app, connection, platform, request, job, key)
            except ConfigurationError:
                raise
            except Exception as error:
                shown = shown_url(str(app.conf.broker_url))
                raise ConfigurationError(
                    f"broker_url {shown}: queueing stopped after {count} requests "
                    f"({_why(error)}); queue the same job again (what was sent is held, "
                    "not sent twice)"
                ) from None
            count += 1
    return count


def _publish(
    app: Celery,
    connection: Connection,
    platform: str,
    request: CancelRequest | Mapping[str, Any],
    job: str | None,
    key: str | None,
) -> str:
    """One ``cancelkit.send`` message on ``connection``; the task id."""
    task = app.send_task(
        SEND, args=(platform, _plain(request), job, key), connection=connection,
    )  # fmt: skip
    return str(task.id)


def _plain(request: CancelRequest | Mapping[str, Any]) -> dict[str, Any]:
    """The request as JSON-ready data (decimals stay ``Decimal``: kombu's JSON writes
    them exactly)."""
    from ..core.model import CancelRequest

    if isinstance(request, CancelRequest):
        from ..core.schemas import dump_request

        return dict(dump_request(request))
    return dict(request)


def _why(error: BaseException) -> str:
    """One short line: the error's class and first line (a URL in it masked)."""
    text = str(error).splitlines()[0][:200] if str(error) else ""
    if "://" in text:
        text = " ".join(shown_url(word) if "://" in word else word for word in text.split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
