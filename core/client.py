"""The library API: ``Client.translate``, ``send``, ``status`` and ``wait``.

One client holds the plugin registry, one HTTP session and one authenticator
(with its token cache) per platform, so repeated sends reuse connections and
tokens. Use it as a context manager (or call :meth:`Client.close`) to close its
sessions. ``cancelkit.translate`` / ``send`` / ``status`` keep one default client
per configuration and thread.

Every result and every exception passes through the client's secret scrubber
before it leaves (see :mod:`cancelkit.core.secrets`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlsplit

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    FieldError,
    InvalidRequestError,
    PluginError,
    TransportError,
)
from . import answers, logs, once, sequence
from .adapter import PlatformAdapter
from .auth import mask_repr
from .config import Settings, load_settings
from .http import HttpCall
from .inputcheck import string_problem
from .model import CancelRequest, CancelResult
from .registry import PluginRegistry
from .sandbox.isolation import SANDBOX_READ_TIMEOUT, SandboxConfig
from .schemas import load_request
from .secrets import Scrubber, install_log_filter
from .waiting import WaitObserver, WaitProgress, WaitStep, keep_lines

if TYPE_CHECKING:
    from .bulk import BulkResult
    from .ledger.store import Claimed, Ledger
    from .ratelimit import LimitStore
    from .sending import RetryPolicy, Sender

#: (connect, read) seconds; override per platform with the ``timeout`` setting.
DEFAULT_TIMEOUT = (5.0, 30.0)


class Client:
    """Sends canonical cancellations through the loaded platform plugins.

    ``sandbox`` (default: whether ``config`` came from ``Sandbox.client_config()``)
    isolates the client: settings come from ``config`` alone, never from the
    environment or the config file, and only loopback hosts can be reached.
    """

    def __init__(
        self,
        *,
        registry: PluginRegistry | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        env: Mapping[str, str] | None = None,
        config_path: Path | None = None,
        profile: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        sandbox: bool | None = None,
        ledger: Ledger | str | bool | None = None,
    ):
        self.registry = registry or PluginRegistry()
        #: The hook relay, looked up once (it stays valid as plugins register).
        self._hooks = self.registry.hook
        self.sandbox = isinstance(config, SandboxConfig) if sandbox is None else sandbox
        self._explicit = {k: dict(v) for k, v in (config or {}).items()}
        self._env: Mapping[str, str] = {} if self.sandbox else (os.environ if env is None else env)
        # Shared rate limits: a sandbox too honours CANCELKIT_LIMITER_URL (its tests of
        # many workers need one limit), but never the config file's limiter_url.
        self._limits_env: Mapping[str, str] = os.environ if env is None else env
        self._limit_store: LimitStore | None = None
        self._limits_chosen = False
        # Its own lock: connecting to Redis may take seconds, and must not hold up the
        # routes and the ledger (the client's lock) for the other threads.
        self._limits_lock = threading.Lock()
        #: When choosing the store last failed, and why: repeated at once for a while.
        self._limits_failed: tuple[float, str] | None = None
        self._config_path = config_path
        self._profile = profile
        #: Retry bounds (``RetryPolicy()`` when None, created with the first sender).
        self.policy = policy
        self._sleep = sleep
        self._clock = clock
        #: Per thread, what a wait in progress wants to hear of a sender's pauses.
        self._waiting = threading.local()
        self._senders: dict[str, Sender] = {}
        #: platform name -> its adapter and settings, resolved on first use.
        self._routes: dict[str, tuple[PlatformAdapter, Settings]] = {}
        #: Every secret this client has seen; results and errors pass through it.
        self.scrubber = Scrubber()
        install_log_filter()
        # None: the configured ledger (the sandbox's own for a sandbox client), opened
        # at the first send; False: none; a URL or a Ledger: that one.
        if ledger is None and self.sandbox:
            ledger = getattr(config, "ledger_url", None) or False
        self._ledger_choice = ledger
        self._ledger: Ledger | None = ledger if _is_ledger(ledger) else None
        self._owns_ledger = False
        # Guards what threads of one client create once: routes, senders, the ledger.
        self._lock = threading.RLock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings -----------------------------------------------------------
    def settings(self, platform: str) -> Settings:
        """Resolved settings of ``platform`` (explicit > environment > config file).

        In sandbox mode only the sandbox's settings count.
        """
        with self._scrubbed():
            return self._route(platform)[1]

    def _route(self, platform: str) -> tuple[PlatformAdapter, Settings]:
        """The adapter and settings for ``platform``, resolved once per client.

        Settings are read (explicit, environment, config file) on a platform's first
        use and kept: a client is configured once, as a requests Session is.
        """
        route = self._routes.get(platform)
        if route is None:
            with self._lock:  # several threads of a bulk run may ask at once
                route = self._routes.get(platform)
                if route is None:
                    adapter = self.registry.platform(platform)
                    route = self._routes[platform] = (adapter, self._settings(adapter))
        return route

    def _settings(self, adapter: PlatformAdapter) -> Settings:
        name = adapter.settings_name or adapter.name
        explicit = dict(self._explicit.get(adapter.name) or self._explicit.get(name) or {})
        declared = {s.name for s in adapter.capabilities.settings}
        if self.sandbox and "timeout" in declared:
            explicit.setdefault("timeout", f"{SANDBOX_READ_TIMEOUT:g}")
        settings = load_settings(
            name,
            adapter.capabilities.settings,
            explicit=explicit,
            env=self._env,
            config_path=self._config_path,
            profile=self._profile,
            use_file=not self.sandbox,
        )
        self.scrubber.add(*settings.secret_values())
        return settings

    def read_timeout(self, platform: str) -> float:
        """The read timeout, in seconds, that calls to ``platform`` use."""
        with self._scrubbed():
            return _timeout(self._route(platform)[1])[1]

    # -- the three jobs -----------------------------------------------------
    def prepare(self, request: CancelRequest | Mapping[str, Any], platform: str) -> CancelRequest:
        """Load and check ``request`` for ``platform``; raises InvalidRequestError.

        A replacement returned by ``cancelkit_prepare_request`` passes the same
        checks as the original: validation is the only door.
        """
        with self._scrubbed():
            return self._prepare(request, self.registry.platform(platform))

    def translate(self, request: CancelRequest | Mapping[str, Any], platform: str) -> HttpCall:
        """The exact HTTP call ``send`` would make first; needs no credentials, sends nothing.

        Where the cancel depends on a read (Carriyo's ``scope: all_pending`` reads the
        order to list its pending lines), that read is the first call, and the one shown.
        """
        with self._scrubbed():
            adapter, settings = self._route(platform)
            prepared = self._prepare(request, adapter)
            lookup = adapter.lookup_call(prepared, settings)
            call = lookup or self._translate(prepared, adapter, settings)
            return self.scrubber.scrub_value(call)

    def send(
        self,
        request: CancelRequest | Mapping[str, Any],
        platform: str,
        *,
        resend: bool = False,
    ) -> CancelResult:
        """Validate, translate, send once, and normalise the answer.

        Business refusals come back as results; bad input, configuration and
        credentials, and failures to connect raise ``cancelkit.errors`` types.

        With a ledger (the default), the request's key is claimed before the call
        leaves, and a key already there is not sent again: the recorded result comes
        back, with a warning saying when it was sent (see :mod:`cancelkit.core.once`
        for what may be sent again). ``resend=True`` sends it anyway: only after
        checking on the platform that the earlier send was not applied.
        """
        with self._scrubbed():
            adapter, settings = self._route(platform)
            prepared = self._prepare(request, adapter)
            ledger = self.ledger
            if ledger is None:
                return self._deliver(prepared, adapter, settings, None)[0]
            return self._send_once(ledger, prepared, adapter, settings, resend)

    def send_many(
        self,
        requests: Iterable[tuple[str, CancelRequest | Mapping[str, Any]]],
        *,
        concurrency: int = 4,
        wait: bool = False,
        wait_timeout: float = 600.0,
        stop: threading.Event | None = None,
    ) -> Iterator[BulkResult]:
        """Send many ``(platform, request)`` pairs; yield a ``BulkResult`` as each completes.

        ``concurrency`` threads per platform send through this client (its ledger, rate
        limits and retries apply to each as to :meth:`send`); the input is read as it
        is needed, so memory stays flat. Results come in completion order, each with
        its input ``index``. ``wait`` follows accepted results to their end (within
        ``wait_timeout`` seconds each). See :mod:`cancelkit.core.bulk`.
        """
        from .bulk import send_many

        return send_many(
            self,
            requests,
            concurrency=concurrency,
            wait=wait,
            wait_timeout=wait_timeout,
            stop=stop,
            sleep=self._sleep,
            clock=self._clock,
        )

    def key_for(self, request: CancelRequest | Mapping[str, Any], platform: str) -> str:
        """The ledger key a send of ``request`` to ``platform`` is claimed under.

        Checks the request as ``send`` would (InvalidRequestError); sends nothing.
        """
        return self.key_and_fingerprint(request, platform)[0]

    def key_and_fingerprint(
        self, request: CancelRequest | Mapping[str, Any], platform: str
    ) -> tuple[str, str]:
        """``(key, fingerprint)`` of a send (see :mod:`cancelkit.core.ledger.keys`)."""
        with self._scrubbed():
            adapter, settings = self._route(platform)
            prepared = self._prepare(request, adapter)
            lookup = adapter.lookup_call(prepared, settings)
            call = None if lookup is not None else self._translate(prepared, adapter, settings)
            return _keyed(adapter, prepared, lookup, call)

    def _send_once(
        self,
        ledger: Ledger,
        prepared: CancelRequest,
        adapter: PlatformAdapter,
        settings: Settings,
        resend: bool,
    ) -> CancelResult:
        """Claim the request's key, send, record the answer (see :meth:`send`)."""
        from .ledger.keys import canonical_json
        from .ledger.store import Held

        # Translated before the claim (it is local), so the claim records the call;
        # a cancel that depends on a read is translated after that read.
        lookup = adapter.lookup_call(prepared, settings)
        call = None if lookup is not None else self._translate(prepared, adapter, settings)
        key, fingerprint = _keyed(adapter, prepared, lookup, call)
        deduplicating = adapter.capabilities.resend_safe
        claim = ledger.claim(
            key,
            fingerprint=fingerprint,
            platform=adapter.name,
            # A secret pasted into the request itself (an order id, say) is masked too.
            request=self.scrubber.scrub_value(
                {**canonical_json(prepared), "idempotency_key": prepared.idempotency_key}
            ),
            call=(masked := self._masked_call(call)),
            may_reclaim=lambda entry: once.may_send_again(
                entry, resend=resend, deduplicating=deduplicating
            ),
            leaving=True,  # one durable write on the usual path; a wait first says so
        )
        if isinstance(claim, Held):
            return self.scrubber.scrub_value(once.held_result(claim.entry, prepared))
        stage = _Stage()
        try:
            departure = once.Departure(ledger, claim)
            result, sent = self._deliver(prepared, adapter, settings, call, stage, departure)
        except once.ClaimTaken:  # another sender has the key now: this one sent nothing
            entry = ledger.get(key)
            if entry is None:
                raise TransportError(
                    f"{adapter.name}: not sent: ledger key {key} was removed while waiting"
                ) from None
            return self.scrubber.scrub_value(once.held_result(entry, prepared))
        except BaseException as error:
            if stage.nothing_sent(error):
                ledger.release(
                    claim, f"not sent: {self.scrubber.scrub(str(error)) or type(error).__name__}"
                )
            else:  # the cancel may have been applied: the key stays claimed, unknown
                why = (
                    "interrupted" if isinstance(error, KeyboardInterrupt) else type(error).__name__
                )
                ledger.annotate(claim, f"outcome unknown: {why} after the cancel left; not resent")
            raise
        result = replace(result, details={**result.details, "ledger": {"key": key}})
        # The call sent is the one claimed unless the cancel took several calls.
        return _recorded(ledger, claim, result, masked if sent is call else self._masked_call(sent))

    def _deliver(
        self,
        prepared: CancelRequest,
        adapter: PlatformAdapter,
        settings: Settings,
        call: HttpCall | None,
        stage: _Stage | None = None,
        departure: once.Departure | None = None,
    ) -> tuple[CancelResult, HttpCall]:
        """The read a cancel depends on (if any), the cancel, and its normalised result.

        ``stage`` is kept up to date, so a caller that sees an exception knows whether
        the cancel could have left; ``departure`` hears when the cancel waits and when
        it leaves (see ``Sender.deliver``).
        """
        lookup = adapter.lookup_call(prepared, settings) if call is None else None
        if lookup is not None:
            if departure is not None:  # the read first: the cancel waits for it
                departure.waiting()
            found = self._sender(adapter, settings).deliver(lookup, read_only=True)
            answer = found.response
            if found.verdict != "answer" or answer is None or not 200 <= answer.status < 300:
                failed = answers.lookup_result(prepared, adapter, found)
                return self._release(failed, lookup, adapter), lookup
            prepared = self._checked(adapter.complete(prepared, answer), adapter)
        if call is None:
            call = self._translate(prepared, adapter, settings)
        sender = self._senders.get(adapter.name) or self._sender(adapter, settings)
        if stage is not None:
            stage.now = "sending"
        delivery = sender.deliver(call, departure=departure)
        if stage is not None:
            stage.now = "sent"
        # A cancellation of several calls (adapter.next_call): the rest of them.
        followed = sequence.follow(prepared, adapter, settings, sender, call, delivery)
        result = followed.failed or followed.with_trail(
            answers.send_result(self._hooks, prepared, adapter, followed.delivery)
        )
        warnings = tuple(adapter.warnings(prepared))
        if warnings:
            result = _add_warnings(result, warnings)
        return self._release(result, followed.call, adapter), followed.call

    def _masked_call(self, call: HttpCall | None) -> dict[str, Any] | None:
        """The call as the ledger keeps it: secrets masked, as ``translate`` shows it."""
        if call is None:
            return None
        # Credentials are added by the sender, never part of the call; any secret a
        # plugin put there anyway is masked by the scrubber, as translate masks it.
        return self.scrubber.scrub_value(call).to_dict()

    @property
    def ledger(self) -> Ledger | None:
        """The ledger this client records its sends in (opened on first use), or None."""
        if self._ledger is None and self._ledger_choice is not False:
            with self._lock:
                if self._ledger is None:
                    from .ledger.location import ledger_url
                    from .ledger.store import Ledger

                    url = (
                        self._ledger_choice
                        if isinstance(self._ledger_choice, str)
                        else ledger_url(
                            env=self._env, config_path=self._config_path, profile=self._profile
                        )
                    )
                    self._ledger = Ledger(url)
                    self._owns_ledger = True
        return self._ledger

    def status(self, platform: str, tracking_id: str) -> CancelResult:
        """The current state of an asynchronous cancellation."""
        with self._scrubbed():
            adapter = self.registry.platform(platform)
            if not adapter.capabilities.has_status:
                raise InvalidRequestError(
                    FieldError(
                        "platform", f"{adapter.name} answers synchronously: it has no status"
                    )
                )
            _check_tracking_id(tracking_id)
            settings = self._route(platform)[1]
            call = adapter.status_call(tracking_id, settings)
            delivery = self._sender(adapter, settings).deliver(call, read_only=True)
            result = answers.status_result(self._hooks, tracking_id, adapter, delivery)
            result = self._release(result, call, adapter)
            if result.outcome not in ("accepted", "unknown"):
                result = self._record_status(adapter.name, tracking_id, result)
            return result

    def _record_status(self, platform: str, tracking_id: str, result: CancelResult) -> CancelResult:
        """Keep a final status answer in the ledger; best effort (status is a read: a
        ledger that cannot be written must not cost the answer)."""
        try:
            ledger = self.ledger
            if ledger is not None:
                ledger.record_status(platform, tracking_id, result)
        except Exception as error:  # the answer stands; say the ledger missed it
            why = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            return _add_warnings(result, (f"the ledger could not record this answer: {why}",))
        return result

    def wait(
        self,
        result: CancelResult,
        *,
        timeout: float = 600.0,
        interval: float | None = None,
        on_progress: WaitObserver | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> CancelResult:
        """Poll ``status`` until ``result`` is final or ``timeout`` seconds pass.

        Polls start every ``interval`` seconds (the platform's ``poll_interval``) and
        stretch by the adapter's ``poll_backoff`` factor up to its ceiling. A poll that
        could not be read (``unknown``: rate limited, a 5xx, a timeout) does not end the
        wait or replace the known state: the next one comes at the next interval (after
        ``Retry-After`` when given), and a last failed poll is named in the warnings.
        ``on_progress``, if given, is called with a
        :class:`~cancelkit.core.waiting.WaitProgress` at each step (nothing is printed).
        The result returned keeps the lines of ``result``, with their final status (see
        :func:`~cancelkit.core.waiting.keep_lines`); its outcome is still ``accepted``
        when the timeout passed first, or when ``stop()`` turned true (checked at least
        once a second while pausing: a bulk run being stopped).
        """
        if result.outcome != "accepted" or not result.tracking_id:
            return result
        tracking_id = result.tracking_id
        with self._scrubbed():
            adapter, settings = self._route(result.platform)
            interval = interval or adapter.poll_interval(settings)
        factor, ceiling = adapter.poll_backoff()
        start = self._clock()
        deadline = start + timeout
        # ``known`` is the cancel's latest known state; ``current`` the latest poll's
        # answer. A poll that could not be read ("status unavailable") says nothing
        # about the cancel: it never replaces what is known, and is asked again.
        known = current = result
        polls, pause, reason = 0, interval, "poll interval"

        def tell(step: WaitStep, seconds: float = 0.0, why: str = "") -> None:
            if on_progress is not None:
                on_progress(
                    WaitProgress(
                        step=step,
                        platform=result.platform,
                        tracking_id=tracking_id,
                        elapsed=self._clock() - start,
                        polls=polls,
                        timeout=timeout,
                        result=current,
                        seconds=seconds,
                        why=why,
                    )
                )

        while known.outcome == "accepted":
            if self._clock() + pause > deadline:
                tell("gave_up")
                break
            tell("sleeping", pause, reason)
            if stop is None:
                self._sleep(pause)
            else:
                resume = self._clock() + pause
                while not stop() and (left := resume - self._clock()) > 0:
                    self._sleep(min(left, 1.0))
                if stop():
                    break
            self._waiting.held_back = lambda seconds: tell("held_back", seconds, "rate limit")
            try:
                current = self.status(result.platform, tracking_id)
            finally:
                self._waiting.held_back = None
            polls += 1
            if current.outcome != "unknown":
                known = current
            tell("polled")
            interval = min(interval * factor, max(ceiling, interval))
            # After the first poll, no faster than the platform allows (the status
            # pacer would hold the call back anyway; this keeps the deadline honest).
            interval = max(interval, adapter.capabilities.status_interval or 0.0)
            pause, reason = interval, "poll interval"
            if current.outcome == "unknown" and (current.retry_after or 0.0) > interval:
                pause, reason = current.retry_after or 0.0, "Retry-After"
        final = keep_lines(result, known)
        if current is not known and current.message:  # the last poll failed: say so
            final = replace(final, warnings=(*final.warnings, f"last poll: {current.message}"))
        return final

    def close(self) -> None:
        """Close every HTTP session this client opened."""
        for sender in self._senders.values():
            sender.session.close()
        self._senders.clear()
        if self._owns_ledger and self._ledger is not None:
            self._ledger.close()
            self._ledger, self._owns_ledger = None, False

    # -- plumbing -----------------------------------------------------------
    @contextmanager
    def _scrubbed(self) -> Iterator[None]:
        """No exception leaves with a secret in it."""
        try:
            yield
        except Exception as error:
            raise self.scrubber.scrub_error(error) from None

    def _prepare(
        self, request: CancelRequest | Mapping[str, Any], adapter: PlatformAdapter
    ) -> CancelRequest:
        loaded = load_request(request)
        adapter.validate(loaded)
        replacement = None
        for candidate in self._hooks.cancelkit_prepare_request(request=loaded, adapter=adapter):
            if candidate is not None:
                replacement = candidate
                break
        if replacement is None or replacement is loaded:
            return loaded
        if not isinstance(replacement, CancelRequest):
            raise PluginError(
                f"{adapter.name}: cancelkit_prepare_request returned {type(replacement).__name__}, "
                "not a CancelRequest"
            )
        return self._checked(replacement, adapter)

    def _checked(self, request: CancelRequest, adapter: PlatformAdapter) -> CancelRequest:
        """A request a plugin built passes the same checks as JSON input."""
        checked = load_request(request)
        adapter.validate(checked)
        return checked

    def _translate(
        self, request: CancelRequest, adapter: PlatformAdapter, settings: Settings
    ) -> HttpCall:
        call = self._hooks.cancelkit_translate(request=request, adapter=adapter, settings=settings)
        if not isinstance(call, HttpCall):
            raise PluginError(f"{adapter.name}: cancelkit_translate returned {call!r}")
        return call

    def _release(
        self, result: CancelResult, call: HttpCall, adapter: PlatformAdapter
    ) -> CancelResult:
        """Scrub the result, log it, show it to observers, hand it back."""
        result = self.scrubber.scrub_value(result)
        platform_log = logging.getLogger(logs.PLATFORM_LOGGER_PREFIX + adapter.name)
        if platform_log.isEnabledFor(logging.INFO):  # off by default: no call, no work
            logs.log_result(result)
        after = self._hooks.cancelkit_after_result
        if after.get_hookimpls():  # none registered (the usual case): no call to scrub
            after(result=result, call=self.scrubber.scrub_value(call), adapter=adapter)
        return result

    def _sender_sleep(self, seconds: float) -> None:
        """A sender's pause (Retry-After, a rate limit), told to a wait in progress."""
        held_back = getattr(self._waiting, "held_back", None)
        if held_back is not None:
            held_back(seconds)
        self._sleep(seconds)

    def _sender(self, adapter: PlatformAdapter, settings: Settings) -> Sender:
        """The sender for this platform (its session and token reused call after call)."""
        key = adapter.name  # settings are fixed per platform for the client's life
        sender = self._senders.get(key)
        if sender is not None:
            return sender
        with self._lock:
            return self._new_sender(adapter, settings)

    def _new_sender(self, adapter: PlatformAdapter, settings: Settings) -> Sender:
        key = adapter.name
        if key not in self._senders:
            from importlib.metadata import version  # slow to import; translate needs none

            from .sending import RetryPolicy, Sender  # requests loads here, not for translate
            from .wire import GuardedSession

            session = GuardedSession(
                loopback_only=self.sandbox,
                user_agent=f"cancelkit/{version('cancelkit')}",
                platform=adapter.name,  # the exchange is logged, masked by our scrubber
                scrubber=self.scrubber,
            )
            self._senders[key] = Sender(
                adapter,
                settings,
                session,
                mask_repr(adapter.authenticator(settings, self._clock)),
                hooks=self._hooks,
                timeout=_timeout(settings),
                policy=self.policy or RetryPolicy(),
                scrubber=self.scrubber,
                sleep=self._sender_sleep,
                clock=self._clock,
                limits=self._limits,
            )
        return self._senders[key]

    def _limits(self) -> LimitStore | None:
        """Where shared rate limits live (``limiter_url``), chosen on first use; None:
        in this process. An unusable store raises ConfigurationError, before any send.

        A failure is repeated at once for :data:`LIMITER_RETRY_SECONDS` (a bulk run
        against a Redis that drops packets would otherwise wait out a connection
        timeout per request), then the store is tried again.
        """
        if self._limits_chosen:
            return self._limit_store
        with self._limits_lock:
            if self._limits_chosen:
                return self._limit_store
            failed = self._limits_failed
            if failed is not None and time.monotonic() - failed[0] < LIMITER_RETRY_SECONDS:
                raise ConfigurationError(failed[1])
            from .limiterlocation import limiter_url, open_store

            found = limiter_url(
                env=self._limits_env,
                config_path=self._config_path,
                profile=self._profile,
                use_file=not self.sandbox,
            )
            try:
                self._limit_store = open_store(*found) if found else None
            except ConfigurationError as error:
                self._limits_failed = (time.monotonic(), str(error))
                raise
            self._limits_failed = None
            self._limits_chosen = True
        return self._limit_store


class _Stage:
    """How far a send got: ``before`` the cancel left, ``sending`` it, or ``sent``."""

    def __init__(self) -> None:
        self.now = "before"

    def nothing_sent(self, error: BaseException) -> bool:
        """True when ``error`` proves the cancel never left (its key may be freed).

        Before the cancel call, nothing left whatever the error (a read before it is
        read-only). During it, the sender raises these three only when nothing was
        sent (see ``Sender.deliver``). After it, or anything else: it may have left.
        """
        if self.now == "before":
            return True
        return self.now == "sending" and isinstance(
            error, (TransportError, AuthenticationError, ConfigurationError)
        )


def _keyed(
    adapter: PlatformAdapter,
    prepared: CancelRequest,
    lookup: HttpCall | None,
    call: HttpCall | None,
) -> tuple[str, str]:
    """The one derivation of a send's ``(key, fingerprint)``: bulk lists what send claims."""
    from .ledger.keys import request_key

    first = lookup or call
    assert first is not None
    return request_key(adapter.name, prepared, urlsplit(first.url).hostname or "")


#: Seconds a failure to reach the shared rate limiter (``limiter_url``) is repeated at
#: once, without trying to connect again.
LIMITER_RETRY_SECONDS = 30.0

#: Tries at recording an answer before giving up (the answer is returned either way).
RECORD_TRIES = 3


def _recorded(
    ledger: Ledger, claim: Claimed, result: CancelResult, call: dict[str, Any] | None
) -> CancelResult:
    """Record ``result`` for ``claim``; the answer is never lost to a failed write.

    A write that still fails after a few tries, or a claim resolved by hand meanwhile,
    leaves the entry as it was (unknown: never resent) and the result says so.
    """
    problem = ""
    for attempt in range(RECORD_TRIES):
        try:
            if ledger.record(claim, result, call=call):
                return result
            problem = "the entry was resolved or claimed again meanwhile"
            break
        except Exception as error:  # a locked file, a dropped connection
            problem = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            time.sleep(0.1 * (attempt + 1))
    return _add_warnings(
        result,
        (
            f"the ledger did not record this answer ({problem}); its entry {claim.key} stays "
            f"as it was (never resent): settle it with cancelkit ledger resolve {claim.key} "
            f"once you know (this answer: {result.outcome})",
        ),
    )


def _is_ledger(value: object) -> TypeGuard[Ledger]:
    return not isinstance(value, (str, bool)) and value is not None


def _check_tracking_id(tracking_id: str) -> None:
    """A tracking id goes into a URL: refuse one that is empty or not clean text."""
    problem = (
        "must not be empty"
        if not isinstance(tracking_id, str) or not tracking_id.strip()
        else string_problem(tracking_id)
    )
    if problem:
        raise InvalidRequestError(FieldError("tracking_id", problem))


def _timeout(settings: Settings) -> tuple[float, float]:
    # load_settings has checked it already: a number of seconds > 0, or unset.
    raw = settings.get("timeout")
    if not raw:
        return DEFAULT_TIMEOUT
    read = float(raw)
    return (min(DEFAULT_TIMEOUT[0], read), read)


def _add_warnings(result: CancelResult, warnings: tuple[str, ...]) -> CancelResult:
    return replace(result, warnings=tuple(dict.fromkeys(result.warnings + warnings)))
