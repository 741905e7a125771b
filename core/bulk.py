"""Many cancellations at once: bounded concurrency per platform, results as they come.

:func:`send_many` (``Client.send_many``) feeds ``(platform, request)`` pairs to a
small pool of worker threads per platform through a bounded queue each, so memory
stays flat whatever the input's length, and yields one :class:`BulkResult` per
request as it completes (not in input order). Every send goes through
``Client.send``: validation, the ledger (a request it holds comes back as held,
not sent again), the platform's client-side rate limits (About You's 50 cancels a
minute) and ``Retry-After`` all apply as for a single send. A result that says a
later resend may work (rate limited beyond the sender's own retries) is sent again
after the wait it names, up to ``attempts`` times; while one worker waits, the other
workers of that platform wait too (the limit is the platform's, not the request's).

``stop`` (a :class:`threading.Event`) ends the run early: no new request starts,
the ones in flight finish and are yielded (and recorded by the ledger).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..errors import CancelkitError
from .model import CancelRequest, CancelResult

if TYPE_CHECKING:
    from .client import Client

#: Requests buffered per platform ahead of its workers (bounds memory, not the input).
BUFFER_PER_PLATFORM = 256
#: Waits for asynchronous outcomes in progress at once, over all platforms.
MAX_PENDING_WAITS = 1000
#: Results finished but not yet taken by the consumer.
RESULTS_BUFFER = 1024
#: Threads following asynchronous outcomes (each mostly sleeps between polls).
WAIT_WORKERS = 32
_DONE = object()


@dataclass(frozen=True)
class BulkResult:
    """What became of one request of a :func:`send_many` run."""

    #: The request's position in the input (0-based), as given to send_many.
    index: int
    platform: str
    #: The canonical result; None when ``error`` says why there is none.
    result: CancelResult | None = None
    #: Bad input, configuration or a failure to connect (nothing was sent).
    error: CancelkitError | None = None
    #: True when the ledger held the request: it was sent before and not sent again.
    held: bool = False

    @property
    def outcome(self) -> str:
        """The result's outcome; ``invalid`` for bad input, ``error`` for other failures."""
        if self.result is not None:
            return self.result.outcome
        from ..errors import InvalidRequestError

        return "invalid" if isinstance(self.error, InvalidRequestError) else "error"


Item = tuple[str, "CancelRequest | Mapping[str, Any]"]


class _Stop:
    """Stopping: when the caller's event is set, or once the consumer has left."""

    def __init__(self, caller: threading.Event | None):
        self._caller = caller
        self._left = threading.Event()

    def is_set(self) -> bool:
        return self._left.is_set() or (self._caller is not None and self._caller.is_set())

    def set(self) -> None:
        self._left.set()


#: The longest pause a bulk run takes for one platform's Retry-After (seconds). A
#: longer one (a daily quota, a body-computed value gone wrong) would hold every worker
#: of the platform for that long: the request is reported rate limited instead, and
#: rerunning the job later sends it.
MAX_PAUSE = 300.0


class _Gate:
    """Holds a platform's workers back until a time (a Retry-After one of them got)."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]):
        self._until = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def pass_through(self, stop: _Stop) -> None:
        while not stop.is_set():
            with self._lock:
                left = self._until - self._clock()
            if left <= 0:
                return
            self._sleep(min(left, 1.0))


def send_many(
    client: Client,
    items: Iterable[Item],
    *,
    concurrency: int = 4,
    attempts: int = 3,
    wait: bool = False,
    wait_timeout: float = 600.0,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[BulkResult]:
    """Send every ``(platform, request)`` of ``items``; yield each result as it completes.

    ``concurrency`` workers per platform; ``attempts`` sends at most per request when
    the platform says a later resend may work; ``wait`` follows accepted (asynchronous)
    results until final or ``wait_timeout`` seconds, within the platform's status
    limits. Stopping early (``stop`` set, or closing the generator) lets the requests
    in flight finish; the ones not started are not sent.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    # Set by the caller's ``stop`` or by the consumer leaving; the caller's event is
    # only read, so it still tells the caller whether *it* asked to stop.
    halt = _Stop(stop)
    # Bounded too: a consumer that pauses holds the workers back, not memory.
    results: queue.Queue[BulkResult | object] = queue.Queue(RESULTS_BUFFER)
    failure: list[BaseException] = []  # what the caller's input raised, raised to it
    lanes: dict[str, queue.Queue[tuple[int, Any] | object]] = {}
    gates: dict[str, _Gate] = {}
    workers: list[threading.Thread] = []
    waits = threading.BoundedSemaphore(MAX_PENDING_WAITS)
    waiter = ThreadPoolExecutor(max_workers=WAIT_WORKERS, thread_name_prefix="cancelkit-wait")

    def follow(index: int, platform: str, accepted: CancelResult, held: bool) -> None:
        try:
            final = client.wait(accepted, timeout=wait_timeout, stop=halt.is_set)
            results.put(BulkResult(index, platform, final, held=held))
        except Exception as error:  # a plugin's bug must not lose the result
            results.put(BulkResult(index, platform, accepted, error=_typed(error), held=held))
        finally:
            waits.release()

    def work(platform: str, lane: queue.Queue[tuple[int, Any] | object]) -> None:
        gate = gates[platform]
        while True:
            job = lane.get()
            if job is _DONE:
                return
            index, request = cast("tuple[int, Any]", job)
            if halt.is_set():
                continue  # drain without sending: the run is stopping
            outcome = _send_with_retries(client, platform, request, gate, halt, attempts)
            outcome = BulkResult(index, platform, outcome.result, outcome.error, outcome.held)
            result = outcome.result
            if wait and result is not None and result.outcome == "accepted" and not halt.is_set():
                waits.acquire()  # bounded: memory stays flat however many are accepted
                waiter.submit(follow, index, platform, result, outcome.held)
            else:
                results.put(outcome)

    def lane_for(platform: str) -> queue.Queue[tuple[int, Any] | object]:
        lane = lanes.get(platform)
        if lane is None:
            lane = lanes[platform] = queue.Queue(BUFFER_PER_PLATFORM)
            gates[platform] = _Gate(clock, sleep)
            for number in range(concurrency):
                thread = threading.Thread(
                    target=work,
                    args=(platform, lane),
                    name=f"cancelkit-{platform}-{number}",
                    daemon=True,
                )
                workers.append(thread)
                thread.start()
        return lane

    def feed() -> None:
        try:
            for index, (platform, request) in enumerate(items):
                if halt.is_set():
                    break
                lane = lane_for(platform)
                while not halt.is_set():
                    try:
                        lane.put((index, request), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # the caller's input failed: tell the caller
            failure.append(error)
        finally:
            for lane in list(lanes.values()):
                for _ in range(concurrency):
                    lane.put(_DONE)
            for thread in list(workers):
                thread.join()
            waiter.shutdown(wait=True)
            results.put(_DONE)

    feeder = threading.Thread(target=feed, name="cancelkit-feeder", daemon=True)
    feeder.start()
    try:
        while True:
            got = results.get()
            if got is _DONE:
                if failure:
                    raise failure[0]
                return
            assert isinstance(got, BulkResult)
            yield got
    finally:
        halt.set()  # the consumer left (or was interrupted): start nothing new
        # Results still coming are recorded by the ledger already: take them off the
        # bounded queue so no worker blocks on it while the run winds down.
        while feeder.is_alive():
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.05)
        feeder.join()


def _send_with_retries(
    client: Client,
    platform: str,
    request: Any,
    gate: _Gate,
    stop: _Stop,
    attempts: int,
) -> BulkResult:
    """One request: sent, and sent again while the platform says a later try may work."""
    result: CancelResult | None = None
    for attempt in range(1, attempts + 1):
        gate.pass_through(stop)
        if stop.is_set() and result is not None:
            break  # stopping: the last refusal stands (nothing was applied)
        try:
            result = client.send(request, platform)
        except Exception as error:  # a plugin's bug must not lose the request
            return BulkResult(-1, platform, error=_typed(error))
        held = bool((result.details.get("ledger") or {}).get("held"))
        if held or not result.retryable or attempt == attempts:
            return BulkResult(-1, platform, result, held=held)
        pause = result.retry_after if result.retry_after is not None else 2.0**attempt
        if pause > MAX_PAUSE:  # hours (or a bogus value): report it; a rerun resumes
            return BulkResult(-1, platform, result)
        gate.close_for(pause)  # the platform's limit: every worker of it waits
    assert result is not None
    return BulkResult(-1, platform, result)


def _typed(error: Exception) -> CancelkitError:
    """``error`` as a cancelkit error: a plugin's own exception becomes a PluginError
    (the send may have left: the ledger keeps it unknown, never resent)."""
    if isinstance(error, CancelkitError):
        return error
    from ..errors import PluginError

    return PluginError(f"{type(error).__name__}: {error}")
