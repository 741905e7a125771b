"""The sandbox kit: the pieces every emulator needs, in one place.

* :class:`Refusal` - the platform's error answer, raised from anywhere in ``handle``;
* :class:`StatefulEmulator` and :class:`StateField` - state declared once, with
  reset, dump and load (checked, :class:`StateError` when refused) derived from it;
* :class:`TokenIssuer` - an OAuth2 client-credentials endpoint and the token check
  of API calls, its :class:`TokenStore` part of the dumped state;
* :meth:`Contract.check` and :meth:`Contract.checked_body` - a body judged by the
  published contract, refused in the platform's shape.

Plugins import these from :mod:`cancelkit.plugin`.
"""

from __future__ import annotations

from .contract import Contract, Violation
from .refusal import Refusal
from .stateful import StateError, StateField, StatefulEmulator
from .tokens import TokenIssuer, TokenStore

__all__ = [
    "Contract",
    "Refusal",
    "StateError",
    "StateField",
    "StatefulEmulator",
    "TokenIssuer",
    "TokenStore",
    "Violation",
]
