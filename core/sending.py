"""Delivering one call: timeouts, auth refresh, bounded retries, unknown outcomes.

The rules, in one place:

* A cancel is not idempotent. Once the platform may have received it (a read
  timeout, a connection dropped after sending, a 5xx), the outcome is
  ``unknown`` and the call is never repeated - unless the adapter declares
  ``resend_safe`` (the platform deduplicates identical payloads).
* A 401 was not executed: the token is refreshed once and the call repeated.
* 429, and 503 with ``Retry-After``, were not processed: retried at most
  ``RetryPolicy.max_retries`` times, each wait honouring ``Retry-After`` but never
  longer than ``RetryPolicy.max_wait``; otherwise the caller is told to retry later.
* Failing to connect at all means nothing was sent: a :class:`TransportError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .adapter import PlatformAdapter
from .auth import Authenticator
from .errors import AuthenticationError, TransportError
from .http import HttpCall, HttpResponse
from .ratelimit import SlidingWindowLimiter


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on repeating calls the platform did not process."""

    max_retries: int = 2
    max_wait: float = 30.0
    #: Extra bounded resends after an unknown outcome, only where resend_safe.
    safe_resends: int = 1


@dataclass(frozen=True)
class Delivery:
    """What happened to a call: an answer, or why there is none."""

    response: HttpResponse | None
    #: Set when the outcome is unknown (no usable answer after sending).
    unknown_reason: str | None = None
    attempts: int = 1
    retry_after: float | None = None


class Sender:
    """Performs calls for one platform over one connection-reusing session."""

    def __init__(
        self,
        adapter: PlatformAdapter,
        session: requests.Session,
        authenticator: Authenticator,
        *,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        before_send: Callable[[HttpCall], list[Mapping[str, str] | None]] = lambda call: [],
        limiter_for: Callable[[HttpCall], SlidingWindowLimiter | None] = lambda call: None,
    ):
        self.adapter = adapter
        self.session = session
        self.authenticator = authenticator
        self.timeout = timeout
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.before_send = before_send
        self.limiter_for = limiter_for

    def deliver(self, call: HttpCall, *, retry_unknown: bool = False) -> Delivery:
        """Send ``call`` under the rules above; ``retry_unknown`` marks a read-only call."""
        refreshed = force_refresh = False
        retries = 0
        resends_left = (
            self.policy.safe_resends
            if (retry_unknown or self.adapter.capabilities.resend_safe)
            else 0
        )
        attempts = 0
        while True:
            attempts += 1
            delivery = self._attempt(call, refresh=force_refresh)
            force_refresh = False
            response = delivery.response
            if response is None or (response.status >= 500 and response.status != 503):
                if delivery.unknown_reason is None and response is not None:
                    delivery = Delivery(response, f"HTTP {response.status} from the platform")
                if resends_left > 0:
                    resends_left -= 1
                    continue
                return _with_attempts(delivery, attempts)
            if response.status == 401 and self.authenticator.can_refresh and not refreshed:
                refreshed = force_refresh = True
                continue
            if self.adapter.is_auth_failure(response):
                raise AuthenticationError(
                    f"{self.adapter.name}: HTTP {response.status}, credentials refused"
                    + _short_message(response)
                )
            wait = retry_after_seconds(response)
            retryable = response.status == 429 or (response.status == 503 and wait is not None)
            if (
                retryable
                and retries < self.policy.max_retries
                and (wait or 0) <= self.policy.max_wait
            ):
                retries += 1
                self.sleep(wait if wait is not None else min(2.0**retries, self.policy.max_wait))
                continue
            if response.status == 503 and not retryable:
                return Delivery(response, "HTTP 503 from the platform", attempts)
            return Delivery(response, None, attempts, wait)

    def _attempt(self, call: HttpCall, *, refresh: bool) -> Delivery:
        extra: dict[str, str] = {}
        for headers in self.before_send(call):
            extra.update(headers or {})
        auth = self.authenticator.headers(self.session, refresh=refresh)
        call = self.authenticator.rebase(call)
        limiter = self.limiter_for(call)
        if limiter is not None:  # every attempt counts against the platform's limit
            limiter.acquire(self.clock, self.sleep)
        headers = {**call.headers, **extra, **auth}
        try:
            raw = self.session.request(
                call.method,
                call.url,
                headers=headers,
                data=call.body_bytes(),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.ConnectTimeout:
            raise TransportError(
                _not_sent(self.adapter.name, call, "connection timed out")
            ) from None
        except requests.ConnectionError as error:
            if _never_connected(error):
                raise TransportError(
                    _not_sent(self.adapter.name, call, "could not connect")
                ) from None
            return Delivery(None, f"the connection failed after sending ({type(error).__name__})")
        except requests.Timeout:
            return Delivery(None, f"no answer within {self.timeout[1]:g} s after sending")
        except requests.RequestException as error:
            return Delivery(None, f"transport error after sending ({type(error).__name__})")
        return Delivery(HttpResponse(raw.status_code, dict(raw.headers), raw.text))


def _with_attempts(delivery: Delivery, attempts: int) -> Delivery:
    return Delivery(delivery.response, delivery.unknown_reason, attempts, delivery.retry_after)


def _not_sent(platform: str, call: HttpCall, why: str) -> str:
    return f"{platform}: {why} to {call.url.split('?')[0]}; nothing was sent, it is safe to retry"


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (so nothing was sent)."""
    cause: Any = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (NewConnectionError, NameResolutionError, ConnectionRefusedError))


def retry_after_seconds(response: HttpResponse) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), or None."""
    value = response.header("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _short_message(response: HttpResponse) -> str:
    payload = response.json()
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error"):
            if isinstance(payload.get(key), str):
                return f": {payload[key][:200]}"
    return ""
