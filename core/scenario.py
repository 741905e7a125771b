"""What a cassette scenario is (kept apart from the recorder, so plugins import it cheaply).

A plugin registers :class:`Scenario` objects with ``cancelkit_cassette_scenarios``;
the recorder (``cancelkit cassettes record``) runs each against the sandbox and
the replay tests run it from its cassette.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client
    from .model import CancelResult


@dataclass
class ScenarioContext:
    """What a scenario gets: a client wired to the sandbox or to the cassette."""

    client: Client
    platform: str
    _inject: Callable[..., None]
    _advance: Callable[[float], None] = lambda seconds: None

    def inject(self, kind: str, **params: Any) -> None:
        """Queue a sandbox fault for the next call (does nothing on replay)."""
        self._inject(kind, self.platform, **params)

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock on, as if ``seconds`` passed (does nothing on replay).

        The client's own waits (``wait``, ``Retry-After``) already advance it while
        recording; use this for time a scenario lets pass between two calls.
        """
        self._advance(seconds)


@dataclass(frozen=True)
class Scenario:
    """One recorded story: what it does and the outcome it must end with."""

    platform: str
    name: str
    description: str
    run: Callable[[ScenarioContext], CancelResult]
    #: The final result's outcome, or the name of the cancelkit error it must raise.
    expected_outcome: str
    #: Extra plugins the scenario's client registers (to provoke odd bodies).
    plugins: tuple[object, ...] = field(default=())

    @property
    def cassette(self) -> str:
        """Path of the cassette, relative to the cassettes directory."""
        return f"{self.platform}/{self.name}.yaml"
