"""What a cassette scenario is (kept apart from the recorder, so plugins import it cheaply).

A plugin registers :class:`Scenario` objects with ``cancelkit_cassette_scenarios``;
the recorder (``cancelkit cassettes record``) runs each against the sandbox and
the replay tests run it from its cassette.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl
from .http import HttpCall

if TYPE_CHECKING:
    from .adapter import PlatformAdapter
    from .client import Client
    from .config import Settings
    from .model import CancelRequest, CancelResult


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


class WrongPlugin:
    """A plugin that takes over translation and sends what a wrong plugin would.

    ``change`` edits a copy of the translated JSON body in place (rename a field,
    drop one, send a value outside an enum). Give it to a :class:`Scenario`'s
    ``plugins``: the emulator, judging by the platform's published contract,
    answers the platform's documented 400, and the cassette records that.
    """

    def __init__(self, change: Callable[[Any], None]) -> None:
        self.change = change

    @hookimpl(tryfirst=True)
    def cancelkit_translate(
        self, request: CancelRequest, adapter: PlatformAdapter, settings: Settings
    ) -> HttpCall:
        """The adapter's own call, with ``change`` applied to its body."""
        call = adapter.translate(request, settings)
        body = copy.deepcopy(call.body)
        self.change(body)
        return HttpCall(call.method, call.url, call.headers, body)


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
