"""What :meth:`Client.wait <cancelkit.core.client.Client.wait>` tells the caller while it waits.

The library never prints: ``wait(result, on_progress=callback)`` hands the callback
one :class:`WaitProgress` per step (a pause before a poll, a poll's answer, a pause
the platform imposed, giving up), and the caller shows it as it likes - the
command line writes it to stderr. :func:`keep_lines` gives the final result of an
asynchronous cancel the lines the accepted result listed, when the status answer
names none (Mirakl's action status does not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from .model import CancelResult, LineResult, LineStatus

#: ``sleeping``: pausing ``seconds`` before the next poll. ``polled``: a status poll
#: answered (``result``). ``held_back``: the platform makes us pause ``seconds``
#: (``Retry-After``, its rate limit) before a call. ``gave_up``: the timeout passed
#: and the cancel is still not final.
WaitStep = Literal["sleeping", "polled", "held_back", "gave_up"]


@dataclass(frozen=True)
class WaitProgress:
    """One step of a wait, as an observer sees it."""

    step: WaitStep
    platform: str
    tracking_id: str
    #: Seconds since the wait began, on the client's clock.
    elapsed: float
    #: Status polls made so far.
    polls: int
    #: The timeout the wait was given, in seconds.
    timeout: float
    #: The latest known result: the accepted one until the first poll answers.
    result: CancelResult
    #: How long this pause lasts (``sleeping``, ``held_back``); 0 otherwise.
    seconds: float = 0.0
    #: Why we pause: ``poll interval``, ``Retry-After`` or ``rate limit``.
    why: str = ""


#: What ``Client.wait(..., on_progress=...)`` calls; it must not raise (an exception
#: it raises ends the wait and propagates, as a KeyboardInterrupt does).
WaitObserver = Callable[[WaitProgress], None]


def keep_lines(accepted: CancelResult, final: CancelResult) -> CancelResult:
    """``final`` with every line ``accepted`` listed, each with its final status.

    A status answer that names lines keeps them as the platform said; a requested
    line it does not name - or every line, when it names none - gets the status
    the final outcome implies for the whole call: ``cancelled`` and ``rejected``
    apply to every line, ``accepted`` leaves them ``pending``, and ``partial`` or
    ``unknown`` cannot say which line fared how, so those lines are ``unknown``.
    Warnings of the accepted result (a reason the platform ignores) are kept too.
    """
    implied: LineStatus = _IMPLIED.get(final.outcome, "unknown")
    named = {line.line_id for line in final.lines}
    missing = tuple(
        LineResult(line.line_id, line.quantity, implied)
        for line in accepted.lines
        if line.line_id not in named
    )
    warnings = tuple(dict.fromkeys(accepted.warnings + final.warnings))
    if not missing and warnings == final.warnings:
        return final
    return replace(final, lines=final.lines + missing, warnings=warnings)


_IMPLIED: dict[str, LineStatus] = {
    "cancelled": "cancelled",
    "rejected": "rejected",
    "accepted": "pending",
}
