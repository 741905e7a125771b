"""Faults the sandbox can inject (kept apart so the CLI can list them cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

#: See :mod:`cancelkit.core.sandbox.server` for what each kind does.
FAULT_KINDS = ("429", "503", "500", "401", "quota", "slow", "html", "malformed")


@dataclass(frozen=True)
class Fault:
    """One fault to inject into the next ``count`` matching requests."""

    kind: str
    platform: str | None = None
    count: int = 1
    retry_after: float = 1.0
    delay: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
