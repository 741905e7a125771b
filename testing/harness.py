"""One sandbox of the platform's emulator, recording every request it answers."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cancelkit.core.secrets import field_names

from .clock import ControlledClock

if TYPE_CHECKING:
    from cancelkit.core.sandbox.emulator import Emulator, EmuRequest, EmuResponse

    from .subject import Subject
    from .wire import Received

#: Fields of token answers (and requests) that hold a credential.
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token", "client_secret", "password")
#: Those fields in any case, with or without ``_`` or ``-`` (``accessToken`` too).
_TOKEN_FIELD = re.compile(field_names(TOKEN_FIELDS), re.IGNORECASE)


class Harness:
    """A started sandbox serving a fresh emulator of the subject, on a controlled clock.

    Every request the sandbox dispatches is kept with its answer (:attr:`seen`),
    so a test can count the calls that reached the platform, token calls apart.
    """

    def __init__(self, subject: Subject) -> None:
        from cancelkit.core.sandbox.server import Sandbox

        self.clock = ControlledClock()
        self.emulator: Emulator = subject.emulator()
        self.box = Sandbox([self.emulator], clock=self.clock).start()
        self.seen: list[tuple[EmuRequest, EmuResponse]] = []
        dispatch = self.box.dispatch

        def recording(request: EmuRequest) -> tuple[EmuResponse, float]:
            answer = dispatch(request)
            self.seen.append((request, answer[0]))
            return answer

        # The server's handler calls sandbox.dispatch: the instance attribute wins.
        self.box.dispatch = recording  # type: ignore[method-assign]

    def reset(self) -> None:
        """Seeded data back, faults cleared, nothing seen; client-side rate windows forgotten."""
        from cancelkit.core.ratelimit import reset_all

        self.box.reset()
        self.seen.clear()
        reset_all()

    def is_token_call(self, request: EmuRequest) -> bool:
        """True for a request to the emulator's credential endpoint."""
        inner = replace(request, segments=request.segments[1:])
        return self.emulator.is_token_request(inner)

    def is_token_received(self, received: Received) -> bool:
        """True for a request a proxy received that is a token call to this emulator."""
        from .wire import emu_request

        request = emu_request(received)
        return request is not None and self.is_token_call(request)

    def api_calls(self) -> list[tuple[EmuRequest, EmuResponse]]:
        """The requests (and answers) to the emulator that were not token calls."""
        return [
            (request, answer)
            for request, answer in self.seen
            if request.segments[:1] == (self.emulator.platform,) and not self.is_token_call(request)
        ]

    def issued_tokens(self) -> set[str]:
        """Every credential the emulator handed out in a token answer so far."""
        found: set[str] = set()
        for request, answer in self.seen:
            if self.is_token_call(request):
                found |= credentials_in(answer.body)
        return found

    def close(self) -> None:
        """Stop serving."""
        self.box.stop()


def credentials_in(body: bytes | str) -> set[str]:
    """Values of :data:`TOKEN_FIELDS` (any spelling) anywhere in a JSON body (none if
    it is not JSON)."""
    try:
        value: Any = json.loads(body)
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if _TOKEN_FIELD.fullmatch(key) and isinstance(inner, str) and inner.strip("*"):
                    found.add(inner)
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return found
