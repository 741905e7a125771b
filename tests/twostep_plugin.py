"""A platform that cancels in two dependent calls, with a throttle inside 200 bodies.

Modelled on Shopify's order editing (``orderEditBegin`` returns a calculated order
id that ``orderEditCommit`` needs) and its GraphQL cost limit (HTTP 200 with a
``THROTTLED`` error and the bucket's ``throttleStatus``). Written as an outside
plugin would be, from ``cancelkit.plugin`` only. The emulator judges by the rules
stated here, not by the adapter's constants:

* ``POST /twostep/edits`` with ``{"order_id", "lines": [{"id", "quantity"}]}``
  opens an edit: 200 ``{"edit": {"id"}}``; an unknown order or line, or a quantity
  over what is left: 200 ``{"userErrors": [{"field", "message"}]}`` (GraphQL style).
* ``POST /twostep/edits/{edit_id}/commit`` applies it: 200 ``{"order": {"id",
  "lines": [{"id", "cancelled"}]}}``; an unknown or already committed edit: 404/409.
* While ``throttled`` > 0 any call is answered 200 ``THROTTLED`` (not run) with a
  ``throttleStatus`` that asks for ``(cost - available) / restoreRate`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
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
    ResultError,
    Setting,
    Settings,
    StaticHeaders,
    hookimpl,
    join_url,
    lines_with_status,
    rejected_result,
)

#: What a commit costs and how fast the bucket refills (points per second).
COST, RESTORE_RATE = 10, 5.0


class TwoStepAdapter(PlatformAdapter):
    name = "twostep"
    title = "Two-step (test platform)"
    capabilities = Capabilities(
        mode="sync",
        fractional_quantity=False,
        required_fields=("order_id",),
        settings=(
            Setting("base_url", "base", "https://twostep.invalid"),
            Setting("token", "access token", secret=True),
            Setting("timeout", "read timeout in seconds", kind="seconds"),
        ),
        calls=("begin", "commit"),
    )

    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        lines = [{"id": line.line_id, "quantity": int(line.quantity)} for line in request.lines]
        return HttpCall(
            "POST",
            join_url(settings["base_url"], "edits"),
            {"Authorization": MASK},
            {"order_id": request.order_id, "lines": lines},
        )

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        if len(answers) > 1:
            return None  # the commit's answer is the last
        edit = _dig(answers[0].json(), "edit", "id")
        if not isinstance(edit, str):
            return None  # userErrors: normalise reads them
        return HttpCall(
            "POST", join_url(settings["base_url"], "edits", edit, "commit"), {"Authorization": MASK}
        )

    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        body = response.json()
        errors = _dig(body, "userErrors")
        if isinstance(errors, list) and errors:
            found = tuple(
                ResultError(message=str(e.get("message")), code="USER_ERROR")
                for e in errors
                if isinstance(e, dict)
            )
            return rejected_result(self.name, request, found, response.status)
        if response.status == 200 and isinstance(_dig(body, "order", "lines"), list):
            return CancelResult(
                self.name, "cancelled", lines_with_status(request, "cancelled"), http_status=200
            )
        refused = ResultError(message=f"HTTP {response.status}", code=f"HTTP_{response.status}")
        return rejected_result(self.name, request, (refused,), response.status)

    def is_throttled(self, response: HttpResponse) -> bool:
        errors = _dig(response.json(), "errors")
        return isinstance(errors, list) and any(
            _dig(e, "extensions", "code") == "THROTTLED" for e in errors
        )

    def retry_after(self, response: HttpResponse) -> float | None:
        # Numbers in answers parse as Decimal (exact money), never float.
        status = _dig(response.json(), "extensions", "cost", "throttleStatus")
        cost = _dig(response.json(), "extensions", "cost", "requestedQueryCost")
        if not isinstance(status, dict) or not isinstance(cost, (int, Decimal)):
            return super().retry_after(response)  # a plain 429: its Retry-After header
        available, rate = status.get("currentlyAvailable"), status.get("restoreRate")
        if not isinstance(available, (int, Decimal)) or not isinstance(rate, (int, Decimal)):
            return None
        return float(max(cost - available, 0) / rate) if rate > 0 else None

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        return StaticHeaders({"Authorization": f"Bearer {settings.get('token', '')}"})


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class TwoStepEmulator(Emulator):
    platform = "twostep"
    production_bases: ClassVar[Mapping[str, str]] = {"edits": "https://twostep.invalid/edits"}
    TOKEN = "twostep-token"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.orders: dict[str, dict[str, int]] = {"ORDER-1": {"L1": 2, "L2": 1}}
        self.edits: dict[str, dict[str, Any]] = {}
        self.received: list[str] = []  # "begin" / "commit" for every call it ran
        self.throttled = 0
        #: Edit ids are made from this prefix (a test makes them hostile).
        self.edit_prefix = "edit-"

    def handle(self, request: EmuRequest) -> EmuResponse:
        if request.header("Authorization") != f"Bearer {self.TOKEN}":
            return EmuResponse.json(401, {"errors": "unauthorized"})
        if self.throttled > 0:
            self.throttled -= 1
            return EmuResponse.json(200, _throttled())
        if request.method == "POST" and request.segments == ("edits",):
            return self._begin(request.json())
        if (
            request.method == "POST"
            and len(request.segments) == 3
            and request.segments[2] == "commit"
        ):
            return self._commit(request.segments[1])
        return EmuResponse.json(404, {"errors": "not found"})

    def _begin(self, body: Any) -> EmuResponse:
        self.received.append("begin")
        order = self.orders.get(body.get("order_id")) if isinstance(body, dict) else None
        if order is None:
            return EmuResponse.json(
                200, {"userErrors": [{"field": "order_id", "message": "no such order"}]}
            )
        for line in body.get("lines", []):
            if order.get(line.get("id"), 0) < line.get("quantity", 0):
                message = f"line {line.get('id')} has less than {line.get('quantity')} left"
                return EmuResponse.json(
                    200, {"userErrors": [{"field": "lines", "message": message}]}
                )
        edit = f"{self.edit_prefix}{len(self.edits) + 1}"
        self.edits[edit] = {
            "order_id": body["order_id"],
            "lines": body["lines"],
            "committed": False,
        }
        return EmuResponse.json(200, {"edit": {"id": edit}})

    def _commit(self, edit_id: str) -> EmuResponse:
        self.received.append("commit")
        edit = self.edits.get(edit_id)
        if edit is None:
            return EmuResponse.json(404, {"errors": f"no edit {edit_id}"})
        if edit["committed"]:
            return EmuResponse.json(409, {"errors": "already committed"})
        edit["committed"] = True
        order = self.orders[edit["order_id"]]
        for line in edit["lines"]:
            order[line["id"]] -= line["quantity"]
        lines = [{"id": line["id"], "cancelled": line["quantity"]} for line in edit["lines"]]
        return EmuResponse.json(200, {"order": {"id": edit["order_id"], "lines": lines}})

    def client_settings(self, base_url: str) -> dict[str, str]:
        return {"base_url": base_url, "token": self.TOKEN}

    def dump_state(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "edits": self.edits,
            "received": self.received,
            "throttled": self.throttled,
            "edit_prefix": self.edit_prefix,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.orders = dict(state["orders"])
        self.edits = dict(state["edits"])
        self.received = list(state["received"])
        self.throttled = int(state["throttled"])
        self.edit_prefix = str(state["edit_prefix"])


def _throttled() -> dict[str, Any]:
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": COST,
                "throttleStatus": {"currentlyAvailable": 0, "restoreRate": RESTORE_RATE},
            }
        },
    }


@hookimpl
def cancelkit_platforms() -> list[PlatformAdapter]:
    return [TwoStepAdapter()]


@hookimpl
def cancelkit_sandbox_emulators() -> list[Emulator]:
    return [TwoStepEmulator()]
