"""The library API: ``Client.translate``, ``send``, ``status`` and ``wait``.

One client holds the plugin registry, one HTTP session and one authenticator
(with its token cache) per platform, so repeated sends reuse connections and
tokens. ``cancelkit.translate`` / ``send`` / ``status`` use a default client.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .adapter import PlatformAdapter
from .config import Settings, load_settings
from .errors import ConfigurationError, PluginError
from .http import HttpCall
from .model import CancelRequest, CancelResult
from .ratelimit import SlidingWindowLimiter
from .registry import PluginRegistry
from .schemas import load_request
from .sending import Delivery, RetryPolicy, Sender

#: (connect, read) seconds; override per platform with the ``timeout`` setting.
DEFAULT_TIMEOUT = (5.0, 30.0)
FINAL_OUTCOMES = ("cancelled", "rejected", "partial")


class Client:
    """Sends canonical cancellations through the loaded platform plugins."""

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
    ):
        self.registry = registry or PluginRegistry()
        self._explicit = {k: dict(v) for k, v in (config or {}).items()}
        self._env = os.environ if env is None else env
        self._config_path = config_path
        self._profile = profile
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._senders: dict[str, Sender] = {}

    # -- settings -----------------------------------------------------------
    def settings(self, platform: str) -> Settings:
        """Resolved settings of ``platform`` (explicit > environment > config file)."""
        adapter = self.registry.platform(platform)
        name = adapter.settings_name or adapter.name
        return load_settings(
            name,
            adapter.capabilities.settings,
            explicit=self._explicit.get(adapter.name) or self._explicit.get(name),
            env=self._env,
            config_path=self._config_path,
            profile=self._profile,
        )

    # -- the three jobs -----------------------------------------------------
    def prepare(self, request: CancelRequest | Mapping[str, Any], platform: str) -> CancelRequest:
        """Load and check ``request`` for ``platform``; raises InvalidRequestError."""
        adapter = self.registry.platform(platform)
        loaded = load_request(request)
        adapter.validate(loaded)
        replacements = self.registry.hook.cancelkit_prepare_request(
            request=loaded, platform=adapter
        )
        return next((r for r in replacements if r is not None), loaded)

    def translate(self, request: CancelRequest | Mapping[str, Any], platform: str) -> HttpCall:
        """The exact HTTP call ``send`` would make; needs no credentials, sends nothing."""
        adapter = self.registry.platform(platform)
        prepared = self.prepare(request, platform)
        return self._translate(prepared, adapter, self.settings(platform))

    def send(self, request: CancelRequest | Mapping[str, Any], platform: str) -> CancelResult:
        """Validate, translate, send once, and normalise the answer.

        Business refusals come back as results; bad input, configuration and
        credentials, and failures to connect raise ``cancelkit.errors`` types.
        """
        adapter = self.registry.platform(platform)
        prepared = self.prepare(request, platform)
        settings = self.settings(platform)
        call = self._translate(prepared, adapter, settings)
        delivery = self._sender(adapter, settings).deliver(call)
        result = self._normalise_delivery(prepared, adapter, delivery)
        warnings = tuple(adapter.warnings(prepared))
        if warnings:
            result = _add_warnings(result, warnings)
        self.registry.hook.cancelkit_after_result(result=result, call=call, platform=adapter)
        return result

    def status(self, platform: str, tracking_id: str) -> CancelResult:
        """The current state of an asynchronous cancellation."""
        adapter = self.registry.platform(platform)
        settings = self.settings(platform)
        call = adapter.status_call(tracking_id, settings)
        delivery = self._sender(adapter, settings).deliver(call, retry_unknown=True)
        if delivery.response is None:
            result = CancelResult(
                platform=adapter.name,
                outcome="unknown",
                tracking_id=tracking_id,
                message=f"status unavailable: {delivery.unknown_reason}; ask again later",
            )
        else:
            try:
                result = self.registry.hook.cancelkit_normalise_status(
                    tracking_id=tracking_id, response=delivery.response, platform=adapter
                )
            except Exception as error:  # a bug in a plugin must not hide the answer's status
                result = CancelResult(
                    platform=adapter.name,
                    outcome="unknown",
                    tracking_id=tracking_id,
                    http_status=delivery.response.status,
                    message=f"status unreadable: {_unreadable(error)}; ask again later",
                )
        self.registry.hook.cancelkit_after_result(result=result, call=call, platform=adapter)
        return result

    def wait(
        self, result: CancelResult, *, timeout: float = 600.0, interval: float | None = None
    ) -> CancelResult:
        """Poll ``status`` until ``result`` is final or ``timeout`` seconds pass.

        Polls start every ``interval`` seconds (the platform's ``poll_interval``) and
        stretch by the adapter's ``poll_backoff`` factor up to its ceiling.
        """
        if result.outcome != "accepted" or not result.tracking_id:
            return result
        adapter = self.registry.platform(result.platform)
        interval = interval or adapter.poll_interval(self.settings(result.platform))
        factor, ceiling = adapter.poll_backoff()
        deadline = self._clock() + timeout
        current = result
        while current.outcome == "accepted" and self._clock() + interval <= deadline:
            self._sleep(interval)
            current = self.status(result.platform, result.tracking_id)
            interval = min(interval * factor, max(ceiling, interval))
        return current

    # -- plumbing -----------------------------------------------------------
    def _translate(
        self, request: CancelRequest, adapter: PlatformAdapter, settings: Settings
    ) -> HttpCall:
        call = self.registry.hook.cancelkit_translate(
            request=request, platform=adapter, config=settings
        )
        if not isinstance(call, HttpCall):
            raise PluginError(f"{adapter.name}: cancelkit_translate returned {call!r}")
        return call

    def _normalise_delivery(
        self, request: CancelRequest, adapter: PlatformAdapter, delivery: Delivery
    ) -> CancelResult:
        if delivery.response is None or delivery.unknown_reason:
            status = delivery.response.status if delivery.response else None
            return adapter.unknown(request, delivery.unknown_reason or "no answer", status)
        status = delivery.response.status
        try:
            result = self.registry.hook.cancelkit_normalise(
                request=request, response=delivery.response, platform=adapter
            )
        except Exception as error:  # the cancel was sent: never lose it to a bug
            return adapter.unknown(request, _unreadable(error), status)
        if not isinstance(result, CancelResult):
            return adapter.unknown(request, f"cancelkit_normalise returned {result!r}", status)
        return result

    def _sender(self, adapter: PlatformAdapter, settings: Settings) -> Sender:
        key = f"{adapter.name}:{sorted(settings.items())!r}"
        if key not in self._senders:
            session = _session()
            self._senders[key] = Sender(
                adapter,
                session,
                adapter.authenticator(settings, self._clock),
                timeout=_timeout(settings),
                policy=self.policy,
                sleep=self._sleep,
                clock=self._clock,
                before_send=functools.partial(self._before_send, adapter),
                limiter_for=functools.partial(_limiter_for, adapter, settings),
            )
        return self._senders[key]

    def _before_send(
        self, adapter: PlatformAdapter, call: HttpCall
    ) -> list[Mapping[str, str] | None]:
        return list(self.registry.hook.cancelkit_before_send(call=call, platform=adapter))

    def close(self) -> None:
        """Close every HTTP session this client opened."""
        for sender in self._senders.values():
            sender.session.close()
        self._senders.clear()


def _unreadable(error: Exception) -> str:
    return f"the answer could not be read ({type(error).__name__}: {error})"


def _limiter_for(
    adapter: PlatformAdapter, settings: Settings, call: HttpCall
) -> SlidingWindowLimiter | None:
    return adapter.rate_limiter(call, settings)


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"cancelkit/{version('cancelkit')}"
    # urllib3 must never resend on its own: a cancel sent twice is worse than none.
    no_retries = HTTPAdapter(max_retries=Retry(total=0, connect=0, read=False, redirect=0))
    session.mount("https://", no_retries)
    session.mount("http://", no_retries)
    return session


def _timeout(settings: Settings) -> tuple[float, float]:
    raw = settings.get("timeout")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        read = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{settings.platform}: timeout must be seconds, got {raw!r}"
        ) from None
    return (min(DEFAULT_TIMEOUT[0], read), read)


def _add_warnings(result: CancelResult, warnings: tuple[str, ...]) -> CancelResult:
    return replace(result, warnings=tuple(dict.fromkeys(result.warnings + warnings)))
