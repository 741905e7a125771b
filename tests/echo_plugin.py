"""A minimal third-party plugin used by the tests: an adapter and its emulator.

It is written exactly as an outside package would write one - importing only
``cancelkit.plugin`` - registered through a real entry point (see
test_plugins.py), and type-checked with ``mypy --strict`` by .ci/run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cancelkit.plugin import (
    MASK,
    Authenticator,
    CancelRequest,
    CancelResult,
    Capabilities,
    Emulator,
    EmuRequest,
    EmuResponse,
    HttpCall,
    HttpResponse,
    PlatformAdapter,
    Setting,
    Settings,
    StaticHeaders,
    hookimpl,
    join_url,
    lines_with_status,
)


class EchoAdapter(PlatformAdapter):
    name = "echo"
    title = "Echo (test platform)"
    capabilities = Capabilities(
        mode="sync",
        fractional_quantity=True,
        required_fields=("order_id",),
        settings=(
            Setting("base_url", "base", "https://echo.invalid"),
            Setting("api_key", "key", secret=True),
        ),
    )

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        assert request.order_id
        return HttpCall(
            "POST",
            join_url(settings["base_url"], "cancel", request.order_id),
            {"X-Api-Key": MASK},
            {"lines": [line.line_id for line in request.lines]},
        )

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        if response.status == 200:
            return CancelResult(
                self.name, "cancelled", lines_with_status(request, "cancelled"), http_status=200
            )
        return self.unknown(request, f"HTTP {response.status}", response.status)

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        return StaticHeaders({"X-Api-Key": settings.get("api_key", "")})


class EchoEmulator(Emulator):
    platform = "echo"
    production_bases: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def handle(self, request: EmuRequest) -> EmuResponse:
        self.seen.append({"segments": list(request.segments), "headers": dict(request.headers)})
        return EmuResponse.json(200, {"ok": True})

    def client_settings(self, base_url: str) -> dict[str, str]:
        return {"base_url": base_url, "api_key": "echo-key"}

    def dump_state(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.seen = list(state["seen"])


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    return [EchoAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    return [EchoEmulator()]
