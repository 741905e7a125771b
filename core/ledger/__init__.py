"""The durable ledger: every real send claimed before it leaves, answered after.

It is what makes "never sent twice" hold across processes and machines: a request's
key (its ``idempotency_key``, else a hash of the platform and the canonical request,
see :mod:`.keys`) is claimed atomically by a unique constraint before the call goes
out, and the answer is recorded when it comes back. One SQLAlchemy Core code path
serves an embedded SQLite file (the default, see :mod:`.location`) and PostgreSQL
by URL; the schema is versioned by ordered steps (:mod:`.tables`).

SQLAlchemy loads only when a ledger is opened (``send``, ``bulk``, ``ledger``), never
for ``translate`` or ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Claimed, Held, Ledger, LedgerEntry

__all__ = ["Claimed", "Held", "Ledger", "LedgerEntry"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
