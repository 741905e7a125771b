"""Client-side rate limiting: a sliding-window log, shared per key across the process.

Why our own (about 40 lines) rather than a library: both limiters we considered
read the real clock inside (``limits``' storages call ``time.time()``;
``pyrate-limiter`` 4 blocks with ``time.sleep`` and runs background leak threads),
so neither can be driven by an injected clock and sleep. Here both come from the
caller, which makes the limit provable on a controlled clock, exactly.

Across processes and machines one clock cannot be injected anyway: when the setting
``limiter_url`` names a Redis server, :func:`shared_limiter` hands out limiters kept
there (``limits``' moving window, core/ratelimit_redis.py) instead, behind the same
:class:`RateLimiter` interface. The client picks the store once (core/limiterlocation.py)
and lends it to :func:`shared_limiter` while an adapter chooses its limiter
(:func:`limits_from`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class RateLimiter(Protocol):
    """What a call waits on before it is sent: in this process or shared through Redis."""

    def acquire(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        """Wait (with ``sleep``) until a slot is free, take it; returns seconds waited.

        Every pause must go through ``sleep``: the sender's tells the ledger that the
        call waits, so that a sender dying meanwhile leaves a claim another may send.
        """
        ...


class LimitStore(Protocol):
    """Where shared limits live, when not in this process (a Redis server)."""

    def limiter(
        self, platform: str, endpoint: str, digest: str, limit: int, window: float
    ) -> RateLimiter:
        """The limiter of one platform endpoint and (hashed) credential."""
        ...


#: The store the current send's client chose, as a provider called only when a plugin
#: asks for a shared limiter (so a platform without limits never contacts Redis).
_store: ContextVar[Callable[[], LimitStore | None] | None] = ContextVar(
    "cancelkit_limit_store", default=None
)


@contextmanager
def limits_from(provider: Callable[[], LimitStore | None] | None) -> Iterator[None]:
    """:func:`shared_limiter` calls inside take their limiters from ``provider()``'s
    store (``None``, or a provider returning ``None``: this process)."""
    token = _store.set(provider)
    try:
        yield
    finally:
        _store.reset(token)


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds."""

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        """Wait (with ``sleep``) until a slot is free, take it; returns seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = clock()
                while self._times and self._times[0] <= now - self.window:
                    self._times.popleft()
                if len(self._times) < self.limit:
                    self._times.append(now)
                    return waited
                delay = self._times[0] + self.window - now
            sleep(delay)  # outside the lock: other keys and threads go on
            waited += delay


_registry: dict[tuple[str, ...], SlidingWindowLimiter] = {}
_registry_lock = threading.Lock()


def shared_limiter(
    platform: str, endpoint: str, credential: str, limit: int, window: float
) -> RateLimiter:
    """The limiter for one platform endpoint and credential, shared by every caller.

    Shared across the process by default; across every process and machine using the
    same Redis when the client's ``limiter_url`` names one. The credential is hashed so
    that no secret is kept as a key.
    """
    import hashlib  # here: the limiter is made once per credential, not at import

    digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
    provider = _store.get()
    store = provider() if provider is not None else None
    if store is not None:
        return store.limiter(platform, endpoint, digest, limit, window)
    key = (platform, endpoint, digest, str(limit), str(window))
    with _registry_lock:
        if key not in _registry:
            _registry[key] = SlidingWindowLimiter(limit, window)
        return _registry[key]


#: Status pacers kept per process; the oldest are forgotten past this many (a worker
#: following many actions must not grow without bound; a forgotten one is long idle).
STATUS_PACERS_KEPT = 10_000
_pacers: OrderedDict[tuple[str, str, Callable[[], float]], SlidingWindowLimiter] = OrderedDict()


def status_pacer(
    platform: str, status_url: str, interval: float, clock: Callable[[], float]
) -> RateLimiter:
    """The pacer for one tracking id's status: one call per ``interval``.

    Keyed by the status URL, which names the tracking id (it holds no secret). Kept in
    the store :func:`limits_from` lends, when there is one (every worker of a cluster
    then keeps the platform's status limit together); else in this process, keyed by
    the clock too: times from two clocks (a client's own ``clock=``, the recorder's)
    cannot be compared.
    """
    provider = _store.get()
    store = provider() if provider is not None else None
    if store is not None:
        import hashlib

        digest = hashlib.sha256(status_url.encode()).hexdigest()[:16]
        return store.limiter(platform, "status", digest, 1, interval)
    key = (platform, status_url, clock)  # bound methods of one clock compare equal
    with _registry_lock:
        pacer = _pacers.pop(key, None) or SlidingWindowLimiter(1, interval)
        _pacers[key] = pacer  # most recently used last
        while len(_pacers) > STATUS_PACERS_KEPT:
            _pacers.popitem(last=False)
        return pacer


def reset_all() -> None:
    """Forget every shared limiter and pacer (for tests that must not share a minute)."""
    with _registry_lock:
        _registry.clear()
        _pacers.clear()
