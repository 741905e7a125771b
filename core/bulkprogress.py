"""The progress display of ``cancelkit bulk FILE``, written to stderr by the CLI.

The library itself never prints; only the CLI uses this module. On a terminal it
draws a live ``tqdm`` bar with the count of each outcome and an ETA; anywhere else
(a file, a pipe, CI) it writes a plain line at most every ``every`` seconds and one
more at the end, for example::

    bulk: 1200/5000 (24%) cancelled 1150, rejected 40, already sent 10; 41.2/s, ETA 1m32s

``tqdm`` is imported only when a live bar is drawn, so the plain path never loads it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["OUTCOMES", "BulkProgress", "escape_control", "format_eta"]

#: Every outcome :meth:`BulkProgress.done` accepts, in the order they are shown.
#: "already" was in the ledger and not sent again; "invalid" was bad input.
OUTCOMES: tuple[str, ...] = (
    "cancelled",
    "accepted",
    "rejected",
    "partial",
    "unknown",
    "already",
    "invalid",
)

_LABELS = {outcome: outcome for outcome in OUTCOMES} | {"already": "already sent"}

#: Control characters (C0, DEL and the C1 range, whose 0x9b is a one-byte CSI on some
#: terminals) become ``\xNN``, so text from outside cannot move the cursor.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}

#: How often (seconds of the clock) the live bar's outcome counts are rebuilt.
_POSTFIX_EVERY = 0.2


def escape_control(text: str) -> str:
    """``text`` with every control character written as ``\\xNN`` (newlines included)."""
    return text.translate(_ESCAPES)


def format_eta(seconds: float) -> str:
    """A duration as a person reads it: ``45s``, ``1m32s``, ``2h03m`` (rounded)."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m"


def _is_terminal(stream: TextIO) -> bool:
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False
    return bool(tty) and os.environ.get("TERM") != "dumb"


class BulkProgress:
    """Progress of a bulk run: a live bar on a terminal, plain periodic lines elsewhere.

    ``done()`` may be called from several worker threads at once; counts and output
    are kept under one lock. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        total: int | None,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        quiet: bool = False,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start the display for ``total`` items (``None``: not known in advance).

        ``stream`` defaults to ``sys.stderr``; ``live`` defaults to whether the stream
        is a terminal whose ``TERM`` is not ``dumb``. ``quiet`` shows nothing at all.
        Not live, a plain line is written at most every ``every`` seconds of ``clock``
        (and once more by :meth:`close`).
        """
        if total is not None and total < 0:
            raise ValueError(f"total must be at least 0, not {total}")
        if every < 0:
            raise ValueError(f"every must be at least 0 seconds, not {every}")
        self._total = total
        self._stream: TextIO = sys.stderr if stream is None else stream
        self._quiet = quiet
        self._live = (not quiet) and (_is_terminal(self._stream) if live is None else live)
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}  # outcomes seen so far, in order first seen
        self._done = 0
        self._closed = False
        self._start = clock()
        self._next_line = self._start + every
        self._next_postfix = self._start
        self._bar: tqdm[Any] | None = None
        if self._live:
            from tqdm import tqdm  # lazily: the plain path never imports it

            self._bar = tqdm(
                total=total,
                file=self._stream,
                unit="req",
                dynamic_ncols=True,
                mininterval=0.2,
                smoothing=0.1,
            )

    @property
    def live(self) -> bool:
        """Whether a live bar is drawn (never when ``quiet``)."""
        return self._live

    @property
    def total(self) -> int | None:
        """The number of items expected, or ``None`` if not known."""
        return self._total

    @property
    def counts(self) -> dict[str, int]:
        """A copy of the count of each outcome seen so far, in display order."""
        with self._lock:
            return {o: self._counts[o] for o in OUTCOMES if o in self._counts}

    def done(self, outcome: str, count: int = 1) -> None:
        """``count`` items finished with ``outcome`` (thread-safe: workers call it).

        ``outcome`` is one of :data:`OUTCOMES`; once seen (even with ``count=0``) it
        is shown, also at 0. Anything else raises ``ValueError``.
        """
        with self._lock:
            try:
                self._counts[outcome] += count
            except KeyError:
                if outcome not in _LABELS:
                    raise ValueError(
                        f"unknown outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}"
                    ) from None
                self._counts[outcome] = count
            self._done += count
            if self._closed or self._quiet:
                return
            now = self._clock()
            bar = self._bar
            if bar is not None:
                if now >= self._next_postfix:
                    self._next_postfix = now + _POSTFIX_EVERY
                    bar.set_postfix_str(self._outcomes_text(), refresh=False)
                bar.update(count)
            elif now >= self._next_line:
                self._next_line = now + self._every
                self._write(self._line(now))

    def note(self, text: str) -> None:
        """A message line printed above a live bar (``tqdm.write``) or as its own line.

        Control characters in ``text`` are escaped (see :func:`escape_control`).
        """
        if self._quiet:
            return
        safe = escape_control(text)
        with self._lock:
            if self._bar is not None and not self._closed:
                self._bar.write(safe, file=self._stream)
            else:
                self._write(safe)

    def summary(self) -> str:
        """The plain line now, e.g. ``bulk: 5000/5000 (100%) cancelled 4990, rejected 10; 41.2/s``.

        This is the line :meth:`close` writes when not live; the CLI may also print it
        as the run's closing summary.
        """
        with self._lock:
            return self._line(self._clock())

    def close(self) -> None:
        """End the bar (live) or print the final plain line (not live); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._quiet:
                return
            bar = self._bar
            if bar is not None:
                bar.set_postfix_str(self._outcomes_text(), refresh=False)
                bar.close()
            else:
                self._write(self._line(self._clock()))

    def __enter__(self) -> BulkProgress:
        """The display itself; :meth:`close` runs on leaving the block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`close` (an exception in the block is not suppressed)."""
        self.close()

    # -- under the lock -------------------------------------------------------------

    def _outcomes_text(self) -> str:
        counts = self._counts
        return ", ".join(f"{_LABELS[o]} {counts[o]}" for o in OUTCOMES if o in counts)

    def _line(self, now: float) -> str:
        done, total = self._done, self._total
        if total is None:
            head = f"bulk: {done}/?"
        else:
            percent = done * 100 // total if total else 100
            head = f"bulk: {done}/{total} ({percent}%)"
        outcomes = self._outcomes_text()
        line = f"{head} {outcomes}" if outcomes else head
        elapsed = now - self._start
        if elapsed <= 0:
            return line
        rate = done / elapsed
        tail = f"{rate:.1f}/s"
        if total is not None and done > 0 and total > done:
            # At least 1s while items remain: "ETA 0s" would read as finished.
            tail += f", ETA {format_eta(max(1.0, (total - done) / rate))}"
        return f"{line}; {tail}"

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()
