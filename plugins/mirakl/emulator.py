"""Mirakl Connect emulator for the sandbox: orders, cancel actions, OAuth2 tokens.

It judges by Mirakl's published contract, never by the plugin: request bodies are
checked against ``contracts/mirakl-connect.schema.json`` (copied from the Mirakl
Connect OpenAPI document; a test keeps the copy equal to it), and nothing is
imported from ``adapter.py``. Documented rules it follows (seed 004, OpenAPI
``v2-cancelOrderLines`` and ``v2-getActionStatus``):

* ``POST /api/v2/orders/{order_id}/cancel``: a body that breaks
  ``CancelOrderLinesRequest`` (a missing or misnamed required field, a reason
  outside the enum, a negative or fractional quantity, Money that is not
  ``{amount >= 0, currency}``) gets 400 ``Error``, one ``errors[]`` item per
  violation with its JsonPath ``field``; an unknown order gets 404 ``Error``
  (``DATA_NOT_FOUND``); otherwise 202 ``{action_id, tracking_id}``.
* ``GET /api/v2/orders/actions/{action_id}``: ``PENDING`` until
  :data:`ACTION_PROCESSING_SECONDS` have passed on the sandbox clock since the
  cancel, then ``SUCCESS`` or ``FAILED`` - however often it was asked. Asked again
  within :data:`STATUS_MIN_INTERVAL` seconds of the last answered call for the
  same action id, it answers 429 ``Error`` with ``Retry-After`` (the spec's "Maximum
  usage: once per minute per action ID"). Unknown action ids get 404.
* An action fails, cancelling nothing, when a line is unknown (``DATA_NOT_FOUND``),
  a line has ``can_cancel: false`` (``ORDER_IN_WRONG_STATE``), a quantity exceeds
  what is left or the currency differs from the order's (``INVALID_INPUT``), or the
  order's sales channel is down (``UNAVAILABLE``, seeded order
  ``0026_COMMERCIAL_ID-C``). On success each line's quantity falls, and a line with
  nothing left can no longer be cancelled.
* ``POST /auth/oauth/token`` (form, client credentials): the sandbox client id
  and secret below get a token valid ``TOKEN_LIFETIME`` seconds of the sandbox
  clock; others get 401, as do API calls with a missing, unknown or expired token.

Not documented, chosen by the emulator: the 400 and 429 ``Error.code`` values
(``INVALID_INPUT``, ``TOO_MANY_REQUEST``, both from Mirakl's own error-code list),
the processing time, and that a refused status call does not restart the minute.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from cancelkit.plugin import (
    Contract,
    EmuRequest,
    EmuResponse,
    Refusal,
    StateField,
    StatefulEmulator,
    TokenIssuer,
)

#: The published request contract every cancel body is judged by.
CONTRACT = Contract.packaged("cancelkit.plugins.mirakl", "contracts/mirakl-connect.schema.json")
#: ``servers[0].url`` of the Mirakl Connect OpenAPI document ("Connect Production
#: endpoint"), which cassettes are rewritten to.
PRODUCTION_API = "https://miraklconnect.com/api"
#: Mirakl's OAuth2 host (developer.mirakl.com, Connect Channel Platform guide).
PRODUCTION_AUTH = "https://auth.mirakl.net"

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
TOKEN_LIFETIME = 3599
#: Seconds (sandbox clock) from the cancel until its action is SUCCESS or FAILED.
#: Mirakl publishes no processing time; its own example action took 3 minutes
#: (created 18:35:24, updated 18:38:24). Two seconds keep the sandbox quick while a
#: status call right after the cancel still sees PENDING.
ACTION_PROCESSING_SECONDS = 2.0
#: Least seconds between two answered status calls for one action id:
#: v2-getActionStatus, "Maximum usage: Asynchronous: once per minute per action ID".
STATUS_MIN_INTERVAL = 60.0
#: Timestamps count from here, starting at the first request after a reset, so they
#: do not depend on when (or after which other recordings) the emulator ran.
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_ACTION_NAMESPACE = uuid.UUID("6f0c3a57-6c1b-4f5e-9a51-0c0e4ad3a1f0")

#: The demo orders; examples/mirakl*.json cancel lines of these.
SEED_ORDERS: dict[str, dict[str, Any]] = {
    "0024_COMMERCIAL_ID-A": {
        "currency": "USD",
        "lines": {
            "0002_3202630-A-1": {
                "product_id": "10000",
                "quantity": 2,
                "can_cancel": True,
                "status": "AWAITING_SHIPMENT",
            },
            "0002_3202630-A-2": {
                "product_id": "10001",
                "quantity": 3,
                "can_cancel": True,
                "status": "AWAITING_SHIPMENT",
            },
        },
    },
    "0025_COMMERCIAL_ID-B": {
        "currency": "EUR",
        "lines": {
            "0003_3202631-B-1": {
                "product_id": "20000",
                "quantity": 1,
                "can_cancel": False,
                "status": "SHIPPED",
            },
        },
    },
    # Its sales channel is down: every cancel action fails with UNAVAILABLE.
    "0026_COMMERCIAL_ID-C": {
        "currency": "EUR",
        "channel_down": True,
        "lines": {
            "0004_3202632-C-1": {
                "product_id": "40000",
                "quantity": 1,
                "can_cancel": True,
                "status": "AWAITING_SHIPMENT",
            },
        },
    },
    # An id with characters that must be percent-encoded as one path segment.
    "ODD/ID?#1": {
        "currency": "EUR",
        "lines": {
            "ODD-1": {
                "product_id": "30000",
                "quantity": 1,
                "can_cancel": True,
                "status": "AWAITING_SHIPMENT",
            }
        },
    },
}


def _error(
    status: int,
    code: str,
    message: str,
    items: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Refusal:
    """Mirakl's ``Error`` body: ``code``, ``message``, and ``errors[]`` when there are items."""
    payload: dict[str, Any] = {"code": code, "message": message}
    if items:
        payload["errors"] = items
    return Refusal(status, payload, headers)


def _optional_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


class MiraklEmulator(StatefulEmulator):
    """Stateful Mirakl Connect: see the module docstring for its rules."""

    platform = "mirakl"
    production_bases: ClassVar[dict[str, str]] = {"api": PRODUCTION_API, "auth": PRODUCTION_AUTH}
    # Mirakl Connect documents no request id header; the adapter reads the common one.
    request_id_header = "X-Request-Id"

    orders = StateField(SEED_ORDERS)
    actions: StateField[dict[str, dict[str, Any]]] = StateField(factory=dict)
    tokens = TokenIssuer(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        lifetime=TOKEN_LIFETIME,
        unauthorized=_error(401, "UNAUTHORIZED", "missing, invalid or expired bearer token"),
        invalid_client=Refusal(
            401, {"error": "invalid_client", "error_description": "Bad client credentials"}
        ),
        answer=lambda token, _: {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "target_app": "",
            "resource_owner": "",
        },
    )
    #: Numbers tokens and actions alike.
    counter = StateField(0)
    #: Sandbox time of the first request since the reset (timestamps count from it).
    origin: StateField[float | None] = StateField(None, load=_optional_float)

    def rebuild(self) -> None:
        """Index the pending actions, oldest first (settling reads only these: a bulk
        run of 100,000 cancels must not rescan every action per request)."""
        pending = [(a.get("created", -math.inf), i) for i, a in self.actions.items()
                   if a["status"] == "PENDING"]  # fmt: skip
        self._pending = deque(i for _, i in sorted(pending))

    def client_settings(self, base_url: str) -> dict[str, str]:
        """Point the mirakl adapter here, with the sandbox client credentials.

        The first poll of ``send --wait`` comes after the processing time, so it
        finds the action finished; later polls keep the once-a-minute rule.
        """
        return {
            "base_url": f"{base_url}/api",
            "token_url": f"{base_url}/auth/oauth/token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "poll_interval": f"{ACTION_PROCESSING_SECONDS + 0.5:g}",
        }

    def is_token_request(self, request: EmuRequest) -> bool:
        """The OAuth2 endpoint."""
        return request.segments[:1] == ("auth",)

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _timestamp(self, at: float) -> str:
        assert self.origin is not None
        return (_EPOCH + timedelta(seconds=at - self.origin)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the token, cancel or action-status handler."""
        if self.origin is None:
            self.origin = request.now
        self._settle(request.now)
        route = request.segments
        if route == ("auth", "oauth", "token") and request.method == "POST":
            return self.tokens.issue(request, serial=self._next)
        if route[:1] != ("api",):
            raise _error(404, "DATA_NOT_FOUND", "no such route")
        self.tokens.check(request)
        match route[1:]:
            case ("v2", "orders", "actions", action_id) if request.method == "GET":
                return self._action_status(action_id, request.now)
            case ("v2", "orders", order_id, "cancel") if request.method == "POST":
                return self._cancel(order_id, request)
        raise _error(404, "DATA_NOT_FOUND", "no such route")

    def _cancel(self, order_id: str, request: EmuRequest) -> EmuResponse:
        body = CONTRACT.checked_body(
            request,
            definition="CancelOrderLinesRequest",
            not_json=_error(400, "INVALID_INPUT", "request body is not JSON"),
            refuse=lambda violations: _error(
                400,
                "INVALID_INPUT",
                "order has not been updated because of wrong or missing parameters",
                [{"message": v.message, "field": v.target} for v in violations],
            ),
        )
        if order_id not in self.orders:
            raise _error(
                404,
                "DATA_NOT_FOUND",
                f"order {order_id} does not exist",
                [{"message": "order does not exist", "field": "order_id"}],
            )
        action_id = str(uuid.uuid5(_ACTION_NAMESPACE, str(self._next())))
        self._pending.append(action_id)
        self.actions[action_id] = {
            "order_id": order_id,
            "cancelations": body["cancelations"],
            "status": "PENDING",
            "errors": [],
            "created": request.now,
            "last_status_call": None,
            "polls": 0,
        }
        return EmuResponse.json(202, {"action_id": action_id, "tracking_id": action_id})

    def _action_status(self, action_id: str, now: float) -> EmuResponse:
        action = self.actions.get(action_id)
        if action is None:
            raise _error(404, "DATA_NOT_FOUND", f"action {action_id} does not exist")
        last = action.get("last_status_call")
        if last is not None and now - last < STATUS_MIN_INTERVAL:
            wait = max(1, math.ceil(STATUS_MIN_INTERVAL - (now - last)))
            raise _error(
                429,
                "TOO_MANY_REQUEST",
                f"action {action_id} was asked about {now - last:.0f} s ago; "
                f"at most once per {STATUS_MIN_INTERVAL:.0f} s per action id",
                headers={"Retry-After": str(wait)},
            )
        action["last_status_call"] = now
        action["polls"] = action.get("polls", 0) + 1
        created = self._timestamp(action.get("created", now))
        payload: dict[str, Any] = {
            "id": action_id,
            "status": action["status"],
            "created_at": created,
            "updated_at": self._timestamp(action["completed"])
            if "completed" in action
            else created,
        }
        if action["errors"]:
            payload["errors"] = action["errors"]
        return EmuResponse.json(200, payload)

    def _settle(self, now: float) -> None:
        """Finish every action whose processing time is over, oldest first.

        Done on every request, whoever asks, so the order state follows the clock
        (a second cancel sees what the first one left).
        """
        while self._pending:
            action = self.actions.get(self._pending[0])
            if action is None or action["status"] != "PENDING":
                self._pending.popleft()
                continue
            # An action saved without "created" (an older state file) is long done.
            started = action.get("created", -math.inf)
            if now - started < ACTION_PROCESSING_SECONDS:
                break  # the later ones were created later still
            self._pending.popleft()
            self._complete(action, started + ACTION_PROCESSING_SECONDS)

    def _complete(self, action: dict[str, Any], at: float) -> None:
        order = self.orders[action["order_id"]]
        errors = []
        if order.get("channel_down"):
            errors.append(
                {"code": "UNAVAILABLE", "message": "The sales channel is temporarily unavailable."}
            )
        for item in () if errors else action["cancelations"]:
            line = order["lines"].get(item.get("order_line_id"))
            if line is None:
                errors.append(
                    {
                        "code": "DATA_NOT_FOUND",
                        "message": f"order line {item.get('order_line_id')} not found",
                    }
                )
            elif not line["can_cancel"]:
                errors.append(
                    {
                        "code": "ORDER_IN_WRONG_STATE",
                        "message": "The order was not in the expected status.",
                    }
                )
            elif item["quantity"] > line["quantity"]:
                errors.append(
                    {
                        "code": "INVALID_INPUT",
                        "message": (
                            f"cannot cancel {item['quantity']} of line {item['order_line_id']}: "
                            f"{line['quantity']} left"
                        ),
                    }
                )
            elif {item["price"]["currency"], item["shipping_price"]["currency"]} != {
                order["currency"]
            }:
                errors.append(
                    {"code": "INVALID_INPUT", "message": f"currency must be {order['currency']}"}
                )
        if not errors:
            for item in action["cancelations"]:
                line = order["lines"][item["order_line_id"]]
                line["quantity"] -= item["quantity"]
                line["can_cancel"] = line["quantity"] > 0
        action["status"] = "FAILED" if errors else "SUCCESS"
        action["errors"] = errors
        if self.origin is not None:
            action["completed"] = max(at, self.origin)
