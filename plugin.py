"""Everything a cancelkit platform plugin needs, from one module: ``cancelkit.plugin``.

This is the public, stable API for plugin authors; ``cancelkit.core`` is not.
The built-in platforms import only from here and from their own folder (a test
fails otherwise), so an outside plugin can do everything they do::

    from cancelkit.plugin import (
        Capabilities, HttpCall, HttpResponse, PlatformAdapter, Setting, Settings,
        StaticHeaders, hookimpl, join_url, json_headers, BEARER,
    )

    class ToyshopAdapter(PlatformAdapter):
        name = "toyshop"
        ...

    @hookimpl
    def cancelkit_platforms():
        return [ToyshopAdapter()]

Importing this module is cheap: it loads neither requests nor the sandbox server,
and the sandbox and recorder types (``Emulator``, ``Contract``, ``Scenario``...)
load the first time a plugin uses one.
The hooks themselves are documented in :mod:`cancelkit.core.hookspecs`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.adapter import Capabilities, PlatformAdapter
from .core.auth import Authenticator, ClientCredentialsToken, StaticHeaders
from .core.config import Setting, Settings
from .core.examples import packaged_examples
from .core.hookspecs import hookimpl
from .core.http import BEARER, MASK, HttpCall, HttpResponse, join_url, json_headers, path_segment
from .core.model import (
    REASONS,
    CancelRequest,
    CancelResult,
    Line,
    LineResult,
    LineStatus,
    Outcome,
    ResultError,
    Tax,
    lines_with_status,
)
from .core.outcomes import accepted_result, combined_outcome, rejected_result
from .core.ratelimit import RateLimiter, SlidingWindowLimiter, shared_limiter
from .errors import (
    AuthenticationError,
    CancelkitError,
    ConfigurationError,
    FieldError,
    InvalidRequestError,
)

if TYPE_CHECKING:
    from .core.sandbox.contract import Contract, Violation
    from .core.sandbox.emulator import Emulator, EmuRequest, EmuResponse
    from .core.sandbox.faults import Fault
    from .core.sandbox.refusal import Refusal
    from .core.sandbox.stateful import StateError, StateField, StatefulEmulator
    from .core.sandbox.tokens import TokenIssuer, TokenStore
    from .core.scenario import Scenario, ScenarioContext, WrongPlugin

#: Sandbox and recorder types, loaded on first use: ``translate`` and ``send`` need
#: none of them (PEP 562 module ``__getattr__``).
_ON_DEMAND = {
    "Contract": ".core.sandbox.contract",
    "Violation": ".core.sandbox.contract",
    "Emulator": ".core.sandbox.emulator",
    "EmuRequest": ".core.sandbox.emulator",
    "EmuResponse": ".core.sandbox.emulator",
    "Fault": ".core.sandbox.faults",
    "Refusal": ".core.sandbox.refusal",
    "StateError": ".core.sandbox.stateful",
    "StateField": ".core.sandbox.stateful",
    "StatefulEmulator": ".core.sandbox.stateful",
    "TokenIssuer": ".core.sandbox.tokens",
    "TokenStore": ".core.sandbox.tokens",
    "Scenario": ".core.scenario",
    "ScenarioContext": ".core.scenario",
    "WrongPlugin": ".core.scenario",
}


def __getattr__(name: str) -> Any:
    """Import a sandbox or recorder type the first time a plugin asks for it."""
    module = _ON_DEMAND.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __package__), name)
    globals()[name] = value
    return value


__all__ = [
    "BEARER",
    "MASK",
    "REASONS",
    "AuthenticationError",
    "Authenticator",
    "CancelRequest",
    "CancelResult",
    "CancelkitError",
    "Capabilities",
    "ClientCredentialsToken",
    "ConfigurationError",
    "Contract",
    "EmuRequest",
    "EmuResponse",
    "Emulator",
    "Fault",
    "FieldError",
    "HttpCall",
    "HttpResponse",
    "InvalidRequestError",
    "Line",
    "LineResult",
    "LineStatus",
    "Outcome",
    "PlatformAdapter",
    "RateLimiter",
    "Refusal",
    "ResultError",
    "Scenario",
    "ScenarioContext",
    "Setting",
    "Settings",
    "SlidingWindowLimiter",
    "StateError",
    "StateField",
    "StatefulEmulator",
    "StaticHeaders",
    "Tax",
    "TokenIssuer",
    "TokenStore",
    "Violation",
    "WrongPlugin",
    "accepted_result",
    "combined_outcome",
    "hookimpl",
    "join_url",
    "json_headers",
    "lines_with_status",
    "packaged_examples",
    "path_segment",
    "rejected_result",
    "shared_limiter",
]
