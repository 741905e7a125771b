"""A platform's error answer, raised from anywhere inside an emulator.

An emulator refuses in the platform's own shape (Mirakl's ``Error``, Carriyo's
``{"status", "timestamp", "errors"}``, Salesforce's error array...). Raising a
:class:`Refusal` lets a helper deep in the emulator refuse without every caller
passing an answer back up: the sandbox server catches it around
:meth:`~cancelkit.core.sandbox.emulator.Emulator.handle` and sends its answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .emulator import EmuResponse


class Refusal(Exception):
    """The answer a platform refuses a request with: status, JSON payload, headers.

    ``Refusal(400, {"code": "INVALID_INPUT"})`` answers a JSON body;
    :meth:`of` wraps any other answer (XML, HTML, an empty body).
    """

    def __init__(
        self, status: int, payload: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"refused with HTTP {status}")
        self.status = status
        self.payload = payload
        self.headers = dict(headers or {})
        self.response = EmuResponse.json(status, payload, self.headers)

    @classmethod
    def of(cls, response: EmuResponse) -> Refusal:
        """A refusal answering ``response`` as it is (its payload is None)."""
        refusal = cls(response.status, None, response.headers)
        refusal.response = response
        return refusal

    def with_headers(self, headers: Mapping[str, str]) -> Refusal:
        """A copy whose answer also carries ``headers`` (they win over the refusal's own)."""
        refusal = self.copy()
        refusal.headers = {**self.headers, **headers}
        response = self.response
        refusal.response = EmuResponse(
            response.status, response.body, {**response.headers, **headers}, response.cut
        )
        return refusal

    def copy(self) -> Refusal:
        """A fresh exception with the same answer.

        A refusal declared once (a class attribute, a module constant) is copied
        before each raise, so no traceback or context is shared between requests.
        """
        refusal = Refusal(self.status, self.payload, self.headers)
        refusal.response = self.response
        return refusal
