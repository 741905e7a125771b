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
        """``result`` with the calls made, where there was more than one."""
        if len(self.trail) < 2:
            return result
        return replace(result, details={**result.details, "calls": list(self.trail)})


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
        if not isinstance(following, HttpCall):
            why = f"next_call returned {type(following).__name__}, not an HttpCall"
            return _unknown(done, adapter, request, why)
        if number > MAX_CALLS:
            why = f"{adapter.name} asked for more than {MAX_CALLS} calls; stopped"
            return _unknown(done, adapter, request, why)
        try:
            delivery = sender.deliver(following)
        except CancelkitError as error:  # not sent, or refused; the calls before were
            why = f"{_named(adapter, number, following)} failed: {error}"
            return _unknown(done, adapter, request, why)
        done = Followed(delivery, following, trail=[*done.trail, _step(following, delivery)])
        if delivery.verdict != "answer":
            said = delivery.reason or (
                "was rate limited" if delivery.verdict == "rate_limited" else delivery.verdict
            )
            why = f"{_named(adapter, number, following)}: {said}"
            return _unknown(done, adapter, request, why)
    return done


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
