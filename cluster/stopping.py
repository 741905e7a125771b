"""A pool process that gets SIGTERM in the middle of a send finishes the send first.

Celery's warm shutdown (SIGTERM to the main worker process) lets the tasks running
finish. But a service manager often signals every process of the service at once:
systemd's default ``KillMode=control-group``, ``kill -TERM -PGID``, supervisord's
``stopasgroup``. Celery leaves SIGTERM at its default in pool processes, so each one
died at once, mid-send: a cancellation that had left was recorded ``unknown`` (to check
by hand) instead of its answer, and the line of a warm stop was not "finished".

So in each prefork pool process (Celery's ``worker_process_init``): a SIGTERM while a
task runs is held until the task has ended; an idle process still stops at once. After
a task that held one, the process stops by itself :data:`GRACE` seconds later (time
for the pool to take its result), unless the main process, in its own warm shutdown,
has ended it first - which is what happens when the whole service was signalled.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["GRACE", "connect", "held", "running"]

#: Seconds a process that held a SIGTERM lives on after its task, for the pool to read
#: the task's result before the process goes.
GRACE = 5.0


class _State:
    """This process's: a pool process or not, tasks running, a SIGTERM held for them."""

    def __init__(self) -> None:
        self.pool_process = False
        self.running = 0
        self.held = False
        #: The SIGTERM handler ours replaced (billiard's: exit through ``finally`` blocks).
        self.previous: Any = signal.SIG_DFL


_state = _State()


def running() -> int:
    """Tasks running in this process now (as seen by the task signals)."""
    return _state.running


def held() -> bool:
    """True when a SIGTERM waits for the running task to end."""
    return _state.held


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _state.running:  # mid-send: finish it (no logging here: a signal handler)
        _state.held = True
        return
    previous = _state.previous
    if callable(previous):  # billiard's: SystemExit, so the process ends cleanly
        previous(signum, frame)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the default: the process ends
    os.kill(os.getpid(), signal.SIGTERM)


def _pool_process_starts(**_: Any) -> None:
    _state.pool_process, _state.running, _state.held = True, 0, False


def _task_starts(**_: Any) -> None:
    _state.running += 1
    # Installed at the first task, not at worker_process_init: billiard puts its own
    # handler in place after Celery's process initializer has run.
    if (
        _state.pool_process
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is not _on_sigterm
    ):
        _state.previous = signal.signal(signal.SIGTERM, _on_sigterm)


def _task_ends(**_: Any) -> None:
    _state.running = max(0, _state.running - 1)
    if _state.held and not _state.running:
        # Stop after the grace (the pool reads the result first), unless the main
        # process's warm shutdown ends this process before; a task started meanwhile
        # holds it again.
        _state.held = False
        timer = threading.Timer(GRACE, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()


_connected = False


def connect() -> None:
    """Hold SIGTERM during tasks in every prefork pool process from now on (idempotent;
    solo and threads pools run in the main process, whose SIGTERM is Celery's warm
    shutdown already)."""
    global _connected
    if _connected:
        return
    from celery import signals

    signals.worker_process_init.connect(_pool_process_starts, weak=False)
    signals.task_prerun.connect(_task_starts, weak=False)
    signals.task_postrun.connect(_task_ends, weak=False)
    _connected = True
