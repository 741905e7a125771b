"""A fault the sandbox can inject (its kinds are listed in :mod:`.faultkinds`)."""

from __future__ import annotations

from dataclasses import dataclass

from .faultkinds import FAULT_KINDS, REFUSING_KINDS
from .isolation import SANDBOX_READ_TIMEOUT

__all__ = ["FAULT_KINDS", "REFUSING_KINDS", "Fault"]


@dataclass(frozen=True)
class Fault:
    """One fault to inject into the next ``count`` matching requests."""

    kind: str
    platform: str | None = None
    count: int = 1
    #: Seconds sent in ``Retry-After`` (429, 503, quota); None sends no header.
    retry_after: float | None = 1.0
    #: How long a ``slow`` answer is held back; longer than a sandbox client's read timeout.
    delay: float = SANDBOX_READ_TIMEOUT + 1.0
    #: Matching requests let through untouched first: ``after=1`` hits the second call
    #: of a cancellation that takes several (a failure between the steps).
    after: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.count < 1:
            raise ValueError(f"fault count must be at least 1, got {self.count}")
        if self.after < 0:
            raise ValueError(f"fault after must be 0 or more, got {self.after}")
