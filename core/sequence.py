"""Cancellations that take several dependent calls (``PlatformAdapter.next_call``).

Some platforms cancel a line in steps, each needing ids from the answer before
(Shopify: ``orderEditBegin`` -> ``orderEditSetQuantity`` -> ``orderEditCommit``).
Core sends the first call, then asks the adapter for the next one after every
readable 2xx answer, until it says None or an answer is not 2xx. The answer that
ends the sequence is the one ``normalise`` reads.

The safety rules hold for every step, and after the first call they get stricter:
that call may have changed the platform, so a later call that is not answered, is
refused for now (rate limited, redirected), cannot be sent at all, or cannot even
be built makes the whole outcome ``unknown`` - never a "nothing was sent, retry"
that would start the sequence a second time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import CancelkitError
from .adapter import PlatformAdapter
from .config import Settings
from .http import HttpCall, HttpResponse
from .model import CancelRequest, CancelResult

if TYPE_CHECKING:  # sending loads requests, which translate never needs
    from .sending import Delivery, Sender

#: The most calls one cancellation may take: a plugin that never says "done" is
#: stopped here (its outcome is unknown: the calls so far went out).
MAX_CALLS = 10


@dataclass
class Followed:
    """What following a cancellation's calls gave.

    ``delivery`` is the answer that ended the sequence (for ``normalise``), unless
    ``failed`` holds the result already (a later step went wrong: unknown).
    """

    delivery: Delivery
    #: The last call sent (the ledger records it).
    call: HttpCall
    failed: CancelResult | None = None
    #: ``METHOD path -> status`` of each call, kept in ``details["calls"]`` when more
    #: than one call was made.
    trail: list[dict[str, Any]] = field(default_factory=list)

    def with_trail(self, result: CancelResult) -> CancelResult:
        """``result`` with the calls made, where there was more than one.

        After several calls no error is ``retryable``: sending again would start the
        sequence again, and its first call went out (whatever the last answer says).
        """
        if len(self.trail) < 2:
            return result
        errors = tuple(replace(e, retryable=False) for e in result.errors)
        return replace(result, errors=errors, details={**result.details, "calls": list(self.trail)})


def follow(
    request: CancelRequest,
    adapter: PlatformAdapter,
    settings: Settings,
    sender: Sender,
    call: HttpCall,
    first: Delivery,
) -> Followed:
    """After ``call``'s delivery ``first``, send every further call the adapter asks for."""
    done = Followed(first, call, trail=[_step(call, first)])
    answers: list[HttpResponse] = []
    # What was sent, by identity: built only once a second call is asked for, so a
    # one-call cancellation (nearly every platform) does no work here.
    sent: dict[tuple[str, str, bytes], int] = {}
    while _continues(done.delivery):
        assert done.delivery.response is not None
        answers.append(done.delivery.response)
        number = len(answers) + 1
        try:
            following = adapter.next_call(request, settings, tuple(answers))
        except Exception as error:  # a plugin bug after a call went out: never lose it
            return _unknown(
                done,
                adapter,
                request,
                f"the answer to call {number - 1} could not be read to build call {number} "
                f"({type(error).__name__}: {error})",
            )
        if following is None:
            return done
        if not sent:
            sent[_identity(call)] = 1
        refused = _refusal(adapter, call, following, number, sent)
        if refused:
            return _unknown(done, adapter, request, refused)
        sent[_identity(following)] = number
        try:
            delivery = sender.deliver(following)
        except Exception as error:  # not sent, refused, or a plugin's hook or auth raising
            why = f"{_named(adapter, number, following)} was not sent: {_short(error)}"
            return _unknown(done, adapter, request, why)
        done = Followed(delivery, following, trail=[*done.trail, _step(following, delivery)])
        if delivery.verdict != "answer":
            said = delivery.reason or (
                "was rate limited" if delivery.verdict == "rate_limited" else delivery.verdict
            )
            why = f"{_named(adapter, number, following)}: {said}"
            return _unknown(done, adapter, request, why)
    return done


def _refusal(
    adapter: PlatformAdapter,
    first: HttpCall,
    following: object,
    number: int,
    sent: dict[tuple[str, str, bytes], int],
) -> str | None:
    """Why core will not send ``following``, or None when it may go."""
    if not isinstance(following, HttpCall):
        return f"next_call returned {type(following).__name__}, not an HttpCall"
    if number > MAX_CALLS:
        return f"{adapter.name} asked for more than {MAX_CALLS} calls; stopped"
    # A later call may be built from an answer: the platform's credentials go only to
    # where the first call went (settings chose that host), as a redirect is never
    # followed. Scheme and port count: http:// would carry the token in clear.
    if _origin(following.url) != _origin(first.url):
        return (
            f"{_named(adapter, number, following)} goes to {_origin_text(following.url)}, not "
            f"{_origin_text(first.url)} like the first call; credentials are never sent there, "
            "so it was not sent"
        )
    earlier = sent.get(_identity(following))
    if earlier is not None:  # next_call forgot to stop: the platform would see it twice
        return f"next_call asked again for call {earlier}, already sent; it was not sent twice"
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


def _identity(call: HttpCall) -> tuple[str, str, bytes]:
    return call.method.upper(), call.url, call.body_bytes() or b""


#: What a sender's error says about a call it did not send, which after the first call
#: would be wrong: the calls before went out.
_SAFE_TO_RETRY = re.compile(r"[;.,]?\s*(nothing was sent|it is safe to retry).*$", re.I | re.S)


def _short(error: BaseException) -> str:
    said = _SAFE_TO_RETRY.sub("", str(error)).strip() or type(error).__name__
    return said if isinstance(error, CancelkitError) else f"{type(error).__name__}: {said}"


def _continues(delivery: Delivery) -> bool:
    """Only a readable 2xx answer leads to a next call; anything else is read as the end."""
    response = delivery.response
    return delivery.verdict == "answer" and response is not None and 200 <= response.status < 300


def _unknown(
    done: Followed, adapter: PlatformAdapter, request: CancelRequest, why: str
) -> Followed:
    status = done.delivery.response.status if done.delivery.response else None
    sends = done.delivery.sends
    message = f"{why}; the calls before it went out, so the cancellation may be half done"
    result = adapter.unknown(request, message, status, sends)
    return replace(done, failed=done.with_trail(result))


def _named(adapter: PlatformAdapter, number: int, call: HttpCall) -> str:
    names: Sequence[str] = adapter.capabilities.calls
    name = f" ({names[number - 1]})" if number <= len(names) else ""
    return f"call {number}{name}, {call.method} {urlsplit(call.url).path}"


def _step(call: HttpCall, delivery: Delivery) -> dict[str, Any]:
    status = delivery.response.status if delivery.response is not None else None
    return {"call": f"{call.method} {urlsplit(call.url).path}", "http_status": status}
