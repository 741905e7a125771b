"""The contract between the sandbox server and one platform's emulator.

An emulator lives beside its plugin (``plugins/<platform>/emulator.py``), is
registered with the ``cancelkit_sandbox_emulators`` hook, and serves every URL
under ``/<platform>/``. It sees decoded path segments - decoded one by one, so an
id holding ``/`` stays one segment - and answers with plain data.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from .faults import Fault

#: Request ids are UUIDs derived from this namespace, so recordings reproduce.
_REQUEST_ID_NAMESPACE = uuid.UUID("3c1f6a52-9b7e-4d0a-8c55-2f4e7a1b9d63")


@dataclass(frozen=True)
class EmuRequest:
    """One request as the emulator sees it (path without the platform prefix)."""

    method: str
    segments: tuple[str, ...]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    #: Where this emulator is served (``http://127.0.0.1:PORT/<platform>``), for
    #: answers that name URLs (Salesforce's token ``instance_url``).
    base_url: str = ""
    #: The sandbox clock when the request arrived (seconds since the epoch). Emulators
    #: drive time-dependent behaviour (an action finishing, a rate-limit window) from
    #: this, never from how often they were asked, so tests can move time on with
    #: :meth:`Sandbox.advance` and a real client sees what real polling does.
    now: float = 0.0

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """The body as a form (``application/x-www-form-urlencoded``)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}

    def bearer(self) -> str | None:
        """The bearer token, if the request carries one."""
        value = self.header("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None


@dataclass(frozen=True)
class EmuResponse:
    """An emulator's answer."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    #: How the server breaks the answer off: ``reset`` closes the connection before
    #: answering, ``partial`` sends half the body and closes. None answers whole.
    cut: str | None = None

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> EmuResponse:
        """A JSON answer."""
        return cls(
            status,
            json.dumps(payload, separators=(",", ":")).encode("utf-8"),
            {"Content-Type": "application/json", **(headers or {})},
        )


class Emulator(ABC):
    """Base class of a platform emulator. State must be JSON-serialisable."""

    #: URL prefix and plugin name, e.g. ``mirakl`` serves ``/mirakl/...``.
    platform: str
    #: Every plugin platform this emulator stands for (faults aimed at any of them
    #: hit it); by default just :attr:`platform`.
    serves: ClassVar[tuple[str, ...]] = ()
    #: Fault kinds that make sense on this platform; others are refused when injected.
    faults: ClassVar[tuple[str, ...]] = (
        "429", "503", "500", "401", "redirect", "slow", "html", "malformed", "empty",
        "partial", "reset",
    )  # fmt: skip
    #: First path segment under the prefix -> the production base URL it stands for.
    #: Used to rewrite recorded cassettes to production hosts.
    production_bases: ClassVar[Mapping[str, str]]
    #: The answer header in which the platform names each request (the one its
    #: adapter reads into ``details["request_id"]``); None sends none. The sandbox
    #: adds it to every answer of this emulator, injected faults' included.
    request_id_header: ClassVar[str | None] = None

    @abstractmethod
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Answer one request; called under the sandbox's lock.

        May raise :class:`~cancelkit.core.sandbox.refusal.Refusal` instead: the
        server answers with it (what the request changed before is kept).
        """

    @abstractmethod
    def client_settings(self, base_url: str) -> dict[str, str]:
        """Settings that point the platform's adapter at this emulator at ``base_url``."""

    @abstractmethod
    def reset(self) -> None:
        """Back to the seeded demo data."""

    @abstractmethod
    def dump_state(self) -> dict[str, Any]:
        """The whole state, JSON-ready (the CLI keeps it between runs)."""

    @abstractmethod
    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a state made by :meth:`dump_state`."""

    def fault_response(self, fault: Fault) -> EmuResponse | None:
        """This platform's own answer for a refusing fault, or None for the generic one.

        A 429 or 503 answer must carry ``Retry-After: fault.retry_after`` unless
        that is None.
        """
        return None

    def platforms(self) -> tuple[str, ...]:
        """The plugin platforms this emulator answers for."""
        return self.serves or (self.platform,)

    def is_token_request(self, request: EmuRequest) -> bool:
        """True for credential endpoints, which injected faults leave alone."""
        return False

    def request_id(self, now: float, serial: int) -> str:
        """The id of the ``serial``-th request since the sandbox started or was reset.

        Derived from the sandbox clock and the count, never random: a recording
        (fixed clock, reset before each scenario) gives the same ids every run.
        """
        return str(uuid.uuid5(_REQUEST_ID_NAMESPACE, f"{self.platform} {now!r} {serial}"))
