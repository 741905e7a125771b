"""The core fault matrix: each wire fault, and the outcome the contract promises for it.

Moved here from cancelkit's own tests so every plugin is held to it: a row is
one fault the sandbox injects into the cancel call (or the sandbox not listening
at all), and what must come of it - the outcome (or the cancelkit error raised),
the command line's exit code, and how many times the call reached the platform.
What is promised depends on three traits of the platform only:

* its outcome when nothing goes wrong (``accepted`` for asynchronous platforms);
* whether it deduplicates identical requests (``resend_safe``): then core resends
  once after an answer that was lost, and the platform returns the same result;
* whether its credentials can be refreshed after a 401 (an OAuth token).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Traits:
    """What the contract outcome of a fault depends on."""

    normal: str
    resend_safe: bool = False
    can_refresh: bool = False


@dataclass(frozen=True)
class Expected:
    """The contract's answer for one platform and one fault."""

    outcome: str  # a result's outcome, or the name of the cancelkit error raised
    exit_code: int
    sent: int  # times the cancel call reached the platform (token calls not counted)


def exit_code(outcome: str) -> int:
    """The command line's exit code for a result with ``outcome``."""
    from cancelkit.cli import EXIT_BY_OUTCOME

    return EXIT_BY_OUTCOME[outcome]


@dataclass(frozen=True)
class FaultCase:
    """One row of the matrix: how to provoke the fault, and what must come of it."""

    name: str
    #: The sandbox fault kind; None for "connection refused" (nothing listens).
    kind: str | None
    expected: Callable[[Traits], Expected]
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The platform's ``timeout`` setting for this row (a read timeout to run into).
    timeout: str | None = None
    #: The waits the client must have made (recorded, never waited), where fixed.
    sleeps: tuple[float, ...] | None = None
    #: Text the result's message or the error must hold.
    says: str | None = None


def _normal_after_one_retry(traits: Traits) -> Expected:
    return Expected(traits.normal, exit_code(traits.normal), 2)


def _unknown_unless_deduplicated(traits: Traits) -> Expected:
    # Processed, answer lost: unknown and never resent - unless the platform
    # deduplicates, where one resend returns the same result.
    if traits.resend_safe:
        return Expected(traits.normal, exit_code(traits.normal), 2)
    return Expected("unknown", 3, 1)


def _refreshed_or_refused(traits: Traits) -> Expected:
    # 401 means the call was not processed: a token is fetched again once and the
    # call repeated; credentials that cannot be refreshed (an API key) are refused.
    if traits.can_refresh:
        return _normal_after_one_retry(traits)
    return Expected("AuthenticationError", 4, 1)


def _fixed(outcome: str, exit_code: int, sent: int) -> Callable[[Traits], Expected]:
    return lambda traits: Expected(outcome, exit_code, sent)


FAULT_MATRIX: tuple[FaultCase, ...] = (
    FaultCase(
        "429 with Retry-After",
        "429",
        _normal_after_one_retry,
        {"retry_after": 1},
        sleeps=(1.0,),  # every emulator's 429 carries it, and it is honoured
    ),
    FaultCase(
        "429 without Retry-After",
        "429",
        _normal_after_one_retry,
        {"retry_after": None},
        sleeps=(2.0,),  # core's own backoff
    ),
    FaultCase("429 exhausted", "429", _fixed("rejected", 1, 3), {"count": 3}),
    FaultCase("503 Retry-After exhausted", "503", _fixed("rejected", 1, 3), {"count": 3}),
    FaultCase(
        "503 Retry-After beyond the bound", "503", _fixed("rejected", 1, 1), {"retry_after": 3600}
    ),
    FaultCase("500", "500", _unknown_unless_deduplicated),
    FaultCase("502 HTML", "html", _unknown_unless_deduplicated),
    FaultCase("malformed JSON", "malformed", _unknown_unless_deduplicated),
    FaultCase("empty 2xx", "empty", _unknown_unless_deduplicated),
    FaultCase("302 redirect", "redirect", _fixed("unknown", 3, 1), says="/moved/"),
    FaultCase("connection refused", None, _fixed("TransportError", 3, 0), says="nothing was sent"),
    FaultCase("reset after the request", "reset", _unknown_unless_deduplicated),
    FaultCase("answer cut short", "partial", _unknown_unless_deduplicated),
    FaultCase("read timeout", "slow", _unknown_unless_deduplicated, {"delay": 1.0}, timeout="0.3"),
    FaultCase("401 expired token", "401", _refreshed_or_refused),
    FaultCase("quota spent", "quota", _fixed("rejected", 1, 1)),
)


def cases_for(fault_kinds: tuple[str, ...]) -> list[FaultCase]:
    """The rows that apply to an emulator taking ``fault_kinds`` (connection refused always)."""
    return [case for case in FAULT_MATRIX if case.kind is None or case.kind in fault_kinds]
