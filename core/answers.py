"""From a delivery to the canonical result: core's verdict, or the adapter's reading.

:mod:`cancelkit.core.sending` decides what happened on the wire; this module
turns that verdict into the :class:`CancelResult` a user sees. Only an
``answer`` verdict reaches a plugin (``cancelkit_normalise`` /
``cancelkit_normalise_status``); whatever the plugin does with it - raising,
returning something odd - the call was sent, so the outcome is never lost. The
one exception let through is ConfigurationError: the plugin read an answer that
proves nothing was applied and the configuration must change (exit 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .adapter import PlatformAdapter
from .model import CancelRequest, CancelResult
from .outcomes import lookup_failed_result, rate_limited_result

if TYPE_CHECKING:  # importing sending would load requests, which translate never needs
    from .hookspecs import HookRelay
    from .sending import Delivery


def send_result(
    hook: HookRelay, request: CancelRequest, adapter: PlatformAdapter, delivery: Delivery
) -> CancelResult:
    """The result of a cancel call, with the adapter's response details added."""
    status = delivery.response.status if delivery.response else None
    if delivery.verdict == "rate_limited":
        assert status is not None
        result = rate_limited_result(adapter.name, request, status, delivery.retry_after)
    elif delivery.verdict != "answer" or delivery.response is None:
        result = adapter.unknown(request, delivery.reason or "no answer", status, delivery.sends)
        if delivery.location:
            result = replace(result, details={**result.details, "location": delivery.location})
    else:
        response = delivery.response
        result = _read(
            lambda: hook.cancelkit_normalise(request=request, response=response, adapter=adapter),
            "cancelkit_normalise",
            lambda why: adapter.unknown(request, why, status, delivery.sends),
        )
    return _with_response_details(result, adapter, delivery)


def lookup_result(
    request: CancelRequest, adapter: PlatformAdapter, delivery: Delivery
) -> CancelResult:
    """The result when the read before a cancel failed: the cancel was never sent.

    A platform's error answer (a 404 for an unknown order) is the adapter's to read;
    whatever it says, the outcome cannot be ``cancelled``, ``accepted`` or
    ``unknown``, because no cancellation left.
    """
    status = delivery.response.status if delivery.response else None
    if delivery.verdict == "rate_limited":
        assert status is not None
        result = rate_limited_result(adapter.name, request, status, delivery.retry_after)
    else:
        why = delivery.reason or f"HTTP {status}"
        result = lookup_failed_result(adapter.name, request, why, status)
        if delivery.verdict == "answer" and delivery.response is not None:
            response = delivery.response
            read = _read(
                lambda: adapter.normalise(request, response), "normalise", lambda _: result
            )
            if read.outcome == "rejected":
                said = (read.message or why).rstrip(".")
                result = replace(read, message=f"{said}: nothing was cancelled")
    return _with_response_details(result, adapter, delivery)


def status_result(
    hook: HookRelay, tracking_id: str, adapter: PlatformAdapter, delivery: Delivery
) -> CancelResult:
    """The result of a status call: unknown unless the adapter could read an answer."""
    status = delivery.response.status if delivery.response else None

    def unknown(why: str) -> CancelResult:
        return CancelResult(
            platform=adapter.name,
            outcome="unknown",
            tracking_id=tracking_id,
            http_status=status,
            retry_after=delivery.retry_after,
            message=f"status unavailable: {why}; ask again later",
        )

    if delivery.verdict == "answer" and delivery.response is not None:
        response = delivery.response
        result = _read(
            lambda: hook.cancelkit_normalise_status(
                tracking_id=tracking_id, response=response, adapter=adapter
            ),
            "cancelkit_normalise_status",
            unknown,
        )
    elif delivery.verdict == "rate_limited":
        wait = f" after {delivery.retry_after:g} s" if delivery.retry_after is not None else ""
        result = unknown(f"the status call was rate limited; ask again{wait}")
    else:
        result = unknown(delivery.reason or "no answer")
    return _with_response_details(result, adapter, delivery)


def _read(
    ask: Callable[[], Any], hook_name: str, unknown: Callable[[str], CancelResult]
) -> CancelResult:
    """The plugin's reading of an answer; a raising or odd plugin gives ``unknown``."""
    try:
        result = ask()
    except ConfigurationError:  # e.g. no such flow: nothing ran, a retry cannot help
        raise
    except Exception as error:  # the call was sent: never lose it to a plugin bug
        return unknown(f"the answer could not be read ({type(error).__name__}: {error})")
    if not isinstance(result, CancelResult):
        return unknown(f"{hook_name} returned {result!r}")
    return result


def _with_response_details(
    result: CancelResult, adapter: PlatformAdapter, delivery: Delivery
) -> CancelResult:
    """``result`` with the answer's extras in ``details``: the platform's request id
    (``request_id``, from the adapter's ``request_id_headers``) and the adapter's
    ``response_details``; what ``normalise`` put there itself wins."""
    if delivery.response is None:
        return result
    extras: dict[str, Any] = {}
    # Extras are nice to have: a plugin bug in either must not lose the result.
    try:
        request_id = adapter.request_id(delivery.response)
    except Exception:
        request_id = None
    if request_id:
        extras["request_id"] = request_id
    try:
        platform_extras = adapter.response_details(delivery.response)
    except Exception:
        platform_extras = {}
    extras.update(platform_extras)
    return replace(result, details={**extras, **result.details}) if extras else result
