"""Delivering one call, and the one answer policy every platform shares.

The sender classifies what happened on the wire before any adapter sees a body,
identically for every platform (contract: README "Sending rules"):

* Nothing sent (refused connection, DNS failure, TLS failure, a URL that is not
  http(s)): :class:`TransportError` or :class:`ConfigurationError`, saying so.
* 401 was not executed: the token is refreshed once and the call repeated; a
  refusal that stays is an :class:`AuthenticationError`.
* 429, 503 with ``Retry-After``, and an answer the adapter marks ``is_throttled``
  (a GraphQL cost limit inside a 200 body) were not processed: retried at most
  ``RetryPolicy.max_retries`` times, each wait honouring the adapter's
  ``retry_after`` (``Retry-After`` by default) but never
  longer than ``RetryPolicy.max_wait``; then verdict ``rate_limited`` (the
  result is ``rejected`` with code ``RATE_LIMITED`` and ``retry_after`` set).
* A 3xx is never followed: verdict ``redirect``, naming its ``Location``.
* A 5xx (503 without ``Retry-After`` included), a timeout or reset after
  sending, an answer cut short, an empty, HTML or unparseable body where the
  adapter expects JSON: verdict ``unknown``. A cancel is not idempotent, so it
  is resent only where the adapter declares ``resend_safe`` (the platform
  deduplicates), and the delivery counts how many times it went out.

Only verdict ``answer`` - a readable success or a platform's own error body -
reaches the adapter's ``normalise``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ..errors import AuthenticationError, CancelkitError, TransportError
from . import wire
from .adapter import PlatformAdapter
from .auth import Authenticator
from .config import Settings
from .hookspecs import HookRelay
from .http import HttpCall, HttpResponse
from .ratelimit import LimitStore, limits_from, status_pacer
from .secrets import Scrubber

if TYPE_CHECKING:
    from .once import Departure

Verdict = Literal["answer", "unknown", "rate_limited", "redirect"]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on repeating calls the platform did not process."""

    max_retries: int = 2
    max_wait: float = 30.0
    #: Extra bounded resends after an unknown outcome, only where resend_safe.
    safe_resends: int = 1

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` when the platform gave no Retry-After."""
        return min(2.0**retry, self.max_wait)


@dataclass(frozen=True)
class Delivery:
    """What happened to a call, as core classified it."""

    verdict: Verdict
    response: HttpResponse | None = None
    #: Why the outcome is unknown, or what the redirect said.
    reason: str | None = None
    #: How many times the call reached (or may have reached) the platform.
    sends: int = 1
    retry_after: float | None = None
    location: str | None = None


class Sender:
    """Performs calls for one platform, with its settings, over one reusing session."""

    def __init__(
        self,
        adapter: PlatformAdapter,
        settings: Settings,
        session: requests.Session,
        authenticator: Authenticator,
        *,
        hooks: HookRelay,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        scrubber: Scrubber | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        limits: Callable[[], LimitStore | None] | None = None,
    ):
        self.adapter = adapter
        self.settings = settings
        self.session = session
        self.authenticator = authenticator
        #: The plugin manager's hook relay (for ``cancelkit_before_send``).
        self.hooks = hooks
        self.timeout = timeout
        self.policy = policy
        self.scrubber = scrubber or Scrubber()
        self.sleep = sleep
        self.clock = clock
        #: Where shared limits live (the client's ``limiter_url``); None: this process.
        self.limits = limits

    def deliver(
        self,
        call: HttpCall,
        *,
        read_only: bool = False,
        departure: Departure | None = None,
    ) -> Delivery:
        """Send ``call`` under the rules above; ``read_only`` marks a status call.

        ``departure`` (a ledger claim's, see :class:`~cancelkit.core.once.Departure`)
        hears of the first attempt: ``waiting()`` before the rate limiter pauses it,
        ``leaving()`` just before its bytes go; an exception from either stops the call
        from leaving at all.
        """
        refreshed = force_refresh = False
        retries = sends = 0
        resend_safe = read_only or self.adapter.capabilities.resend_safe
        resends_left = self.policy.safe_resends if resend_safe else 0
        unknown: Delivery | None = None
        while True:
            try:
                response, failure = self._attempt(
                    call, refresh=force_refresh, status=read_only, departure=departure
                )
                departure = None  # once: a later attempt is part of the same send
            except CancelkitError as error:
                if unknown is None:
                    raise
                # An earlier attempt may have been applied: that is what we report.
                why = "could not connect" if isinstance(error, TransportError) else "failed"
                return replace(unknown, reason=f"{unknown.reason}; the resend {why}")
            sends += 1
            force_refresh = False
            if response is None:
                unknown = Delivery("unknown", None, failure, sends)
            else:
                # Only an answer that looks successful can say "not run": a 5xx may
                # have been applied, and resending it would break "never twice".
                throttled = 200 <= response.status < 300 and _throttled(self.adapter, response)
                if unknown is not None and (
                    self.adapter.is_auth_failure(response)
                    or throttled
                    or self.adapter.is_rate_limited(response)
                    or 300 <= response.status < 400
                    or response.status == 503
                    or response.status == 401
                ):
                    # The first send may have been applied: that stays the answer.
                    why = f"{unknown.reason}; the resend got HTTP {response.status}"
                    return replace(unknown, reason=why, sends=sends)
                if response.status == 401 and self.authenticator.can_refresh and not refreshed:
                    refreshed = force_refresh = True
                    continue
                if self.adapter.is_auth_failure(response):
                    raise AuthenticationError(
                        f"{self.adapter.name}: HTTP {response.status}, credentials refused"
                        + _short_message(response, self.scrubber)
                    )
                # Retry-After matters only for a refusal to process now.
                limited = throttled or self.adapter.is_rate_limited(response)
                refused_for_now = limited or response.status == 503
                wait = _retry_after(self.adapter, response) if refused_for_now else None
                if limited or (response.status == 503 and wait is not None):
                    # 429, 503 and a throttle inside the body pass; a platform's own quota
                    # answer (spent for the day, no Retry-After) does not.
                    transient = throttled or response.status in (429, 503)
                    if (
                        transient
                        and retries < self.policy.max_retries
                        and (wait is None or wait <= self.policy.max_wait)
                    ):
                        retries += 1
                        self.sleep(wait if wait is not None else self.policy.backoff(retries))
                        continue
                    if wait is None and transient:
                        wait = self.policy.backoff(retries + 1)
                    return Delivery("rate_limited", response, None, sends, wait)
                if 300 <= response.status < 400:
                    location = response.header("Location")
                    where = f"to {location}" if location else "without a Location"
                    moved = f"HTTP {response.status} redirect {where}, not followed"
                    return Delivery("redirect", response, moved, sends, location=location)
                unreadable = _unreadable(response, self.adapter)
                if unreadable is None:
                    return Delivery("answer", response, None, sends)
                unknown = Delivery("unknown", response, unreadable, sends)
            if resends_left > 0:
                resends_left -= 1
                continue
            return unknown

    def _attempt(
        self,
        call: HttpCall,
        *,
        refresh: bool,
        status: bool = False,
        departure: Departure | None = None,
    ) -> tuple[HttpResponse | None, str]:
        extra: dict[str, str] = {}
        for headers in self.hooks.cancelkit_before_send(call=call, adapter=self.adapter):
            extra.update(headers or {})
        auth = self.authenticator.headers(self.session, refresh=refresh)
        call = self.authenticator.rebase(call)
        self.scrubber.add_headers(auth)  # before anything is sent: echoes get masked
        with limits_from(self.limits):  # shared_limiter answers from the chosen store
            limiter = self.adapter.rate_limiter(call, self.settings)
            interval = self.adapter.capabilities.status_interval
            # Retries included: the platform counts every call.
            pacer = (
                status_pacer(self.adapter.name, call.url, interval, self.clock)
                if (status and interval)
                else None
            )
        if limiter is not None:  # every attempt counts against the platform's limit
            limiter.acquire(self.clock, self._pause_for(departure))
        if pacer is not None:
            pacer.acquire(self.clock, self.sleep)
        prepared = wire.prepare(
            self.session,
            call.method,
            call.url,
            {**call.headers, **extra, **auth},
            call.body_bytes(),
        )
        environment = self.session.merge_environment_settings(prepared.url, {}, False, None, None)
        if departure is not None:  # last: nothing that may wait comes after it
            departure.leaving()
        try:
            raw = self.session.send(prepared, timeout=self.timeout, **environment)
        except requests.ConnectTimeout:
            raise TransportError(
                _not_sent(self.adapter.name, call, "connection timed out")
            ) from None
        except (requests.exceptions.SSLError, requests.exceptions.ProxyError) as error:
            why = f"could not connect ({type(error).__name__})"
            raise TransportError(_not_sent(self.adapter.name, call, why)) from None
        except requests.ConnectionError as error:
            if _never_connected(error):
                raise TransportError(
                    _not_sent(self.adapter.name, call, "could not connect")
                ) from None
            return None, f"the connection failed after sending ({type(error).__name__})"
        except requests.Timeout:
            return None, f"no answer within {self.timeout[1]:g} s after sending"
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            return None, "the answer was cut short"
        except requests.RequestException as error:
            return None, f"transport error after sending ({type(error).__name__})"
        return HttpResponse(raw.status_code, dict(raw.headers), raw.text), ""

    def _pause_for(self, departure: Departure | None) -> Callable[[float], None]:
        """The sleep a rate limiter waits with: telling ``departure`` first (a claim
        waiting for its turn is one another sender may take over if this one dies)."""
        if departure is None:
            return self.sleep

        def pause(seconds: float) -> None:
            departure.waiting()
            self.sleep(seconds)

        return pause


def _throttled(adapter: PlatformAdapter, response: HttpResponse) -> bool:
    """The adapter's ``is_throttled``; a plugin bug there reads as not throttled."""
    try:
        return bool(adapter.is_throttled(response))
    except Exception:
        return False


def _retry_after(adapter: PlatformAdapter, response: HttpResponse) -> float | None:
    """The adapter's ``retry_after`` as finite seconds >= 0, or None (a bug there too)."""
    try:
        seconds = adapter.retry_after(response)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, Decimal)):
            return None
        value = float(seconds)  # a signalling NaN raises here
    except Exception:
        return None
    return max(value, 0.0) if math.isfinite(value) else None


def _unreadable(response: HttpResponse, adapter: PlatformAdapter) -> str | None:
    """Why an answer cannot be read, or None when the adapter can read it."""
    if response.status >= 500:
        return f"HTTP {response.status} from the platform"
    if adapter.answer_is_readable(response):
        return None
    text = response.text.strip()
    if not text:
        return f"HTTP {response.status} with an empty body"
    if text == "null":
        return f"HTTP {response.status} with a JSON null instead of an answer"
    if text[:1] == "<":
        return f"HTTP {response.status} with an HTML page instead of JSON"
    return f"HTTP {response.status} with a body that is not valid JSON"


def _not_sent(platform: str, call: HttpCall, why: str) -> str:
    return f"{platform}: {why} to {call.url.split('?')[0]}; nothing was sent, it is safe to retry"


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (so nothing was sent)."""
    cause: Any = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (NewConnectionError, NameResolutionError, ConnectionRefusedError))


def _short_message(response: HttpResponse, scrubber: Scrubber) -> str:
    payload = response.json()
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error"):
            if isinstance(payload.get(key), str):
                # Scrub before cutting: a cut secret would no longer be recognised.
                return f": {scrubber.scrub(payload[key])[:200]}"
    return ""
