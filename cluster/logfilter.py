"""cancelkit's secret scrubbing on every log record a worker writes.

Celery installs its own handlers when a worker starts (and each pool child logs through
them); cancelkit's filter (:mod:`cancelkit.core.secrets`) goes on those handlers, so a
record from any logger - Celery's task tracebacks included - has every secret a client
of the process has seen masked.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from ..core.logs import HTTP_LOGGER
from ..core.secrets import ScrubbingFilter, install_log_filter

_FILTER = ScrubbingFilter()
_connected = False


def scrub_handlers(logger: logging.Logger | None) -> None:
    """Put the scrubbing filter on each of ``logger``'s handlers (once each)."""
    for handler in getattr(logger, "handlers", ()):
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def _after_setup(
    logger: logging.Logger | None = None, loglevel: int | str | None = None, **_: Any
) -> None:
    install_log_filter()
    scrub_handlers(logger)
    scrub_handlers(logging.getLogger())
    # cancelkit's wire log (every request and answer, masked) is `cancelkit -v`'s: a
    # worker shows it at DEBUG only, keeping one line per result at INFO.
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if not isinstance(level, int) or level > logging.DEBUG:
        logging.getLogger(HTTP_LOGGER).setLevel(logging.WARNING)


def connect() -> None:
    """Scrub every handler Celery sets up from now on (idempotent)."""
    global _connected
    if _connected:
        return
    signals.after_setup_logger.connect(_after_setup, weak=False)
    signals.after_setup_task_logger.connect(_after_setup, weak=False)
    _connected = True
