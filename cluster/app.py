"""The Celery app of cluster mode: :func:`make_app`, and the module-level :data:`app`.

The settings that keep a cancellation from being lost or sent twice:

- ``task_acks_late``: a task is acknowledged after it ran, so one whose worker died is
  delivered again; ``task_reject_on_worker_lost`` requeues it at once when a pool child
  is killed. The ledger makes that redelivery harmless: the key claimed before the call
  left is found, and the request is held, never sent again.
- ``worker_prefetch_multiplier = 1``: a worker reserves one task per process, so a
  crash puts back little and a busy worker does not sit on its neighbours' work.
- JSON only (money stays exact: kombu writes ``Decimal`` as its text), and no result
  backend: the ledger is the record of every send.
- The broker connection is retried forever, at start-up and after a loss.

:data:`app` reads ``broker_url`` (see :mod:`.settings`) when it is first used:
``celery -A cancelkit.celery worker`` and ``cancelkit worker`` run it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.app.amqp import AMQP
from kombu.connection import Connection

from ..core.limiterlocation import shown_url
from ..errors import ConfigurationError
from . import logfilter, tasks
from .settings import broker_problem, visibility_timeout
from .settings import broker_url as configured_broker_url

__all__ = ["QUEUE", "MaskedAMQP", "MaskedConnection", "make_app", "make_default"]  # and app

#: The queue cancelkit's tasks go to and its workers read by default: a broker shared
#: with other Celery apps keeps cancelkit's work apart.
QUEUE = "cancelkit"
#: Broker schemes whose unacknowledged messages come back after ``visibility_timeout``.
VISIBILITY_SCHEMES = frozenset({"redis", "rediss", "sentinel", "sqs"})
#: Seconds to wait for the broker to accept a TCP connection.
CONNECT_TIMEOUT = 5.0


class MaskedConnection(Connection):
    """A broker connection that shows its URL as cancelkit does: kombu masks only a
    password, so ``redis://secret@host`` (a user part that is a password) would reach
    Celery's banner and its "Cannot connect to" lines whole."""

    def as_uri(self, include_password: Any = False, mask: Any = "**", getfields: Any = None) -> str:
        """The URL; its credentials masked unless ``include_password``."""
        extra = {} if getfields is None else {"getfields": getfields}
        uri: str = super().as_uri(include_password=True, mask=mask, **extra)
        return uri if include_password else shown_url(uri)


class MaskedAMQP(AMQP):  # type: ignore[misc]
    """Celery's AMQP helpers, making :class:`MaskedConnection` connections."""

    Connection = MaskedConnection


def make_app(
    broker_url: str | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
) -> Celery:
    """A Celery app with cancelkit's tasks, sending to ``broker_url``.

    None: the configured ``broker_url`` (``$CANCELKIT_BROKER_URL``, the config file,
    else ``redis://127.0.0.1:6379/0``).
    """
    url = broker_url or configured_broker_url(env=env, config_path=config_path, profile=profile)[0]
    problem = broker_problem(url)
    if problem is not None:
        raise ConfigurationError(f"broker_url {shown_url(url)}: {problem}")
    # A dotted name, not the class: the app is pickled for pool processes by reference.
    celery = Celery("cancelkit", set_as_current=False, amqp=f"{__name__}:MaskedAMQP")
    scheme = urlsplit(url).scheme.lower().partition("+")[0] if "://" in url else ""
    transport_options: dict[str, object] = {}
    if scheme in VISIBILITY_SCHEMES:
        # Longer than any countdown cancelkit schedules (at most a few minutes), or a
        # waiting task would be handed to a second worker meanwhile (harmless for a send:
        # the ledger holds it; but a second status poll chain would double the polls).
        transport_options["visibility_timeout"] = visibility_timeout(env)
    celery.conf.update(
        broker_url=url,
        broker_transport_options=transport_options,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # forever: a worker waits out a broker restart
        broker_connection_timeout=CONNECT_TIMEOUT,
        # A task whose connection was lost keeps running to its end (cancelling it
        # mid-send would leave its claim unknown); the broker delivers it again, and
        # that second delivery finds the ledger's entry.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=QUEUE,
        worker_hijack_root_logger=True,
        enable_utc=True,
    )
    tasks.register(celery)
    logfilter.connect()
    tasks.connect_process_signals()
    return celery


_default: Celery | None = None


def make_default() -> Celery:
    """The default app (:data:`app`), made at first use from the configuration."""
    global _default
    if _default is None:
        _default = make_app()
    return _default


def __getattr__(name: str) -> Celery:
    """``app``: the app ``celery -A cancelkit.celery`` and ``cancelkit worker`` run, made
    at first use (so importing :func:`make_app` reads no configuration)."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return make_default()
