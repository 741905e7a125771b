"""The key a send is claimed under in the ledger.

A request's own ``idempotency_key`` when it has one; else a stable hash of the
platform, the host the call goes to, and the canonical request, so the same request
for the same platform gets the same key in every process, on every machine, whatever
the JSON's key order or the way a number was written (``1`` and ``1.0``, ``15.00``
and ``15.0`` are one amount). The host is in the hash so that a request tried on a
staging host is still sent to production; the port is not, so the sandbox (a new
loopback port each run) keeps its keys. The fingerprint, always the hash, tells a
reused ``idempotency_key`` from the request it was first used for.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import simplejson

from ..model import CancelRequest
from ..schemas import dump_request

#: Prefix of keys cancelkit derives (a user's own key is kept as given).
DERIVED_PREFIX = "sha256:"


def canonical_json(request: CancelRequest) -> dict[str, Any]:
    """The request as canonical JSON, ``idempotency_key`` left out."""
    data = dump_request(request)
    data.pop("idempotency_key", None)
    return data


def fingerprint(platform: str, request: CancelRequest, host: str = "") -> str:
    """A hex SHA-256 of the platform, host and canonical request (key order, number form
    ignored)."""
    text = simplejson.dumps(
        {
            "platform": platform,
            "host": host.lower(),
            "request": _normalised(canonical_json(request)),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def request_key(platform: str, request: CancelRequest, host: str = "") -> tuple[str, str]:
    """``(key, fingerprint)`` for a send of ``request`` to ``platform`` at ``host``."""
    digest = fingerprint(platform, request, host)
    return (request.idempotency_key or DERIVED_PREFIX + digest), digest


def _normalised(value: Any) -> Any:
    """Decimals as their shortest exact text; None-valued and empty fields dropped."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if v not in (None, [], {})}
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    return value
