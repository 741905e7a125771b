"""Rate limits shared by every process and machine through one Redis server.

The ``limits`` library keeps each limit as a moving window in Redis (a Lua script
takes a slot atomically, so two workers can never both take the last one). Its
windows run on each machine's wall clock (``time.time()``): the machines sharing a
Redis must keep their clocks in step (NTP), and the injected ``clock`` is not used
here; the injected ``sleep`` still does every wait. Imported only when ``limiter_url``
names a Redis server: ``import cancelkit`` never loads ``limits`` or ``redis``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, ServiceUnavailableError

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

#: Seconds a connection attempt or a command may take before Redis counts as gone.
REDIS_TIMEOUT = 5.0
#: Seconds of Redis errors an acquire rides out (a restart, a failover) before failing.
OUTAGE_GRACE = 10.0
#: The pause between tries while Redis does not answer.
OUTAGE_PAUSE = 0.5
#: Namespace of cancelkit's keys in Redis (``limits`` prefixes its own ``LIMITS:``).
NAMESPACE = "cancelkit"
#: Seconds added to every shared window. A slot is stamped when a worker takes it, but
#: its call reaches the platform a little later (the ledger's commit, scheduling, the
#: network), by a delay that varies; a slot taken right at the window's edge could then
#: arrive before the one it replaced has left the platform's window: measured across 4
#: workers on 2 cores, 22 calls reached the platform in a 2 s window limited to 20.
#: A margin at least that jitter removes it. ``limits`` keeps windows in whole seconds
#: (its Lua script hands the window to Redis' EXPIRE, which takes integers), so the
#: margin is one second: About You's 50 a minute run at 50 per 61 s (0.984 of allowed).
ARRIVAL_MARGIN = 1


class RedisLimits:
    """A :class:`~cancelkit.core.ratelimit.LimitStore` on one Redis server.

    ``shown`` is the URL as messages show it (password masked) and ``where`` names the
    setting it came from; both go into every error, the real URL into none.
    """

    def __init__(self, url: str, *, shown: str, where: str) -> None:
        self.shown = shown
        self.where = where
        try:
            from limits.storage import storage_from_string
            from limits.strategies import MovingWindowRateLimiter
        except ImportError:
            raise ConfigurationError(
                f"{where} {shown}: a Redis rate limiter needs the 'limits' and 'redis' "
                "packages: pip install 'cancelkit[cluster]'"
            ) from None
        try:
            storage = storage_from_string(
                url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
        except Exception as error:  # a malformed URL: redis' own ValueError, say
            raise ConfigurationError(
                f"{where} {shown}: not a usable Redis URL ({type(error).__name__})"
            ) from None
        self._storage: RedisStorage = storage  # type: ignore[assignment]
        self._strategy: MovingWindowRateLimiter = MovingWindowRateLimiter(storage)
        self.ping()

    def ping(self) -> None:
        """Raise :class:`ConfigurationError` unless the server answers."""
        try:
            self._storage.get_connection().ping()
        except Exception as error:
            raise self.unreachable(error) from None

    def unreachable(self, error: BaseException) -> ServiceUnavailableError:
        """The error that says Redis cannot be used (the message names no secret)."""
        return ServiceUnavailableError(
            f"{self.where} {self.shown}: Redis does not answer ({type(error).__name__}); "
            "nothing was sent"
        )

    def limiter(
        self, platform: str, endpoint: str, digest: str, limit: int, window: float
    ) -> RedisWindowLimiter:
        """The shared limiter of one platform endpoint and (hashed) credential."""
        return RedisWindowLimiter(self, (NAMESPACE, platform, endpoint, digest), limit, window)

    def hit(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> bool:
        """Take a slot of ``item`` if one is free (atomically, in Redis)."""
        return self._strategy.hit(item, *identifiers)

    def reset_time(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> float:
        """When (wall-clock seconds) the oldest slot of ``item``'s window frees."""
        return float(self._strategy.get_window_stats(item, *identifiers).reset_time)


class RedisWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds, across every process
    using the same Redis. ``limits`` counts whole seconds: a fractional window is
    rounded up, and :data:`ARRIVAL_MARGIN` added (stricter, never looser)."""

    def __init__(
        self, store: RedisLimits, identifiers: tuple[str, ...], limit: int, window: float
    ) -> None:
        from limits import RateLimitItemPerSecond

        self.limit = limit
        self.window = window
        self._store = store
        self._identifiers = identifiers
        self._item = RateLimitItemPerSecond(limit, max(1, math.ceil(window)) + ARRIVAL_MARGIN)

    def acquire(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        """Wait (with ``sleep``) until a slot is free, take it; returns seconds waited.

        ``clock`` is unused: the window is kept in wall-clock time, shared by all.
        """
        waited = 0.0
        # When the outage began (monotonic), counted from before the first failed call:
        # a stalled Redis spends its socket timeout in each try, which counts too.
        outage_since: float | None = None
        while True:
            tried_at = time.monotonic()
            try:
                if self._store.hit(self._item, self._identifiers):
                    return waited
                delay = self._store.reset_time(self._item, self._identifiers) - time.time()
            except Exception as error:
                if not _is_redis_error(error):
                    raise
                outage_since = tried_at if outage_since is None else outage_since
                if time.monotonic() - outage_since >= OUTAGE_GRACE:
                    raise self._store.unreachable(error) from None
                delay = OUTAGE_PAUSE
            else:
                outage_since = None
                delay = max(delay, 0.001)  # the slot frees now: try again at once
            sleep(delay)
            waited += delay


def _is_redis_error(error: BaseException) -> bool:
    """Whether ``error`` comes from talking to Redis (worth riding out)."""
    import redis.exceptions
    from limits.errors import StorageError

    return isinstance(error, (redis.exceptions.RedisError, StorageError, OSError))
