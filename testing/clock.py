"""A clock that moves only when told to: tests wait for nothing and still see time pass."""

from __future__ import annotations

#: 2026-01-01T00:00:00Z, the time cassettes are recorded at (``core.cassettes``).
EPOCH = 1767225600.0


class ControlledClock:
    """Seconds since the epoch, moved on by :meth:`advance` and :meth:`sleep` only.

    Give ``clock`` to a ``Sandbox`` and ``sleep``/``clock`` to a ``Client``: the
    client's waits (Retry-After, status polls, rate limits) then cost no real time,
    and the sandbox sees them pass, so asynchronous work finishes as it would.
    """

    def __init__(self, start: float = EPOCH) -> None:
        self.now = start
        #: Every wait asked of :meth:`sleep`, in order.
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` (not recorded as a sleep)."""
        if not seconds >= 0:  # also refuses nan
            raise ValueError(f"time only moves forward, not by {seconds!r}")
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """Stand in for ``time.sleep``: record the wait and move the clock on by it."""
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))

    def __repr__(self) -> str:
        return f"ControlledClock(now={self.now!r}, sleeps={len(self.sleeps)})"
