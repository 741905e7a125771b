"""Mirakl Connect emulator for the sandbox: orders, cancel actions, OAuth2 tokens.

Documented rules it follows (seed 004, OpenAPI ``v2-cancelOrderLines`` and
``v2-getActionStatus``):

* ``POST /api/v2/orders/{order_id}/cancel``: a body that breaks the schema gets
  400 ``Error`` (code ``INVALID_INPUT``, one ``errors[]`` item per field); an
  unknown order gets 404 ``Error`` (``DATA_NOT_FOUND``); otherwise 202 with an
  ``action_id``.
* ``GET /api/v2/orders/actions/{action_id}``: an action answers ``PENDING`` for
  ``PENDING_POLLS`` polls, then ``SUCCESS`` or ``FAILED``. It fails, cancelling
  nothing, when a line is unknown (``DATA_NOT_FOUND``), a line has
  ``can_cancel: false`` (``ORDER_IN_WRONG_STATE``), a quantity exceeds what is
  left to cancel or the currency differs from the order's (``INVALID_INPUT``).
  On success each line's quantity falls, and a line with nothing left can no
  longer be cancelled. Unknown action ids get 404.
* ``POST /auth/oauth/token`` (form, client credentials): the sandbox client id
  and secret below get a token valid ``TOKEN_LIFETIME`` seconds; others get 401.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

from cancelkit.plugin import Emulator, EmuRequest, EmuResponse

from .adapter import DEFAULT_BASE_URL, REASON_MAP

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
TOKEN_LIFETIME = 3599
PENDING_POLLS = 1
_ACTION_NAMESPACE = uuid.UUID("6f0c3a57-6c1b-4f5e-9a51-0c0e4ad3a1f0")
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)

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

_REASONS = set(REASON_MAP.values())


class MiraklEmulator(Emulator):
    """Stateful Mirakl Connect: see the module docstring for its rules."""

    platform = "mirakl"
    production_bases: ClassVar[dict[str, str]] = {
        "api": DEFAULT_BASE_URL,
        "auth": "https://auth.mirakl.net",
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to :data:`SEED_ORDERS`, no actions, no tokens."""
        self.orders = copy.deepcopy(SEED_ORDERS)
        self.actions: dict[str, dict[str, Any]] = {}
        self.tokens: list[str] = []
        self.counter = 0

    def dump_state(self) -> dict[str, Any]:
        """Orders, actions, tokens and the id counter."""
        return {
            "orders": self.orders,
            "actions": self.actions,
            "tokens": self.tokens,
            "counter": self.counter,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`dump_state`."""
        self.orders = copy.deepcopy(dict(state["orders"]))
        self.actions = copy.deepcopy(dict(state["actions"]))
        self.tokens = list(state["tokens"])
        self.counter = int(state["counter"])

    def client_settings(self, base_url: str) -> dict[str, str]:
        """Point the mirakl adapter here, with the sandbox client credentials."""
        return {
            "base_url": f"{base_url}/api",
            "token_url": f"{base_url}/auth/oauth/token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "poll_interval": "0.2",
        }

    def is_token_request(self, request: EmuRequest) -> bool:
        """The OAuth2 endpoint."""
        return request.segments[:1] == ("auth",)

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _now(self) -> str:
        return (_EPOCH + timedelta(seconds=self.counter)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the token, cancel or action-status handler."""
        route = request.segments
        if route == ("auth", "oauth", "token") and request.method == "POST":
            return self._token(request)
        if route[:1] != ("api",):
            return _error(404, "DATA_NOT_FOUND", "no such route")
        if request.bearer() not in self.tokens:
            return _error(401, "UNAUTHORIZED", "missing, invalid or expired bearer token")
        match route[1:]:
            case ("v2", "orders", "actions", action_id) if request.method == "GET":
                return self._action_status(action_id)
            case ("v2", "orders", order_id, "cancel") if request.method == "POST":
                return self._cancel(order_id, request)
        return _error(404, "DATA_NOT_FOUND", "no such route")

    def _token(self, request: EmuRequest) -> EmuResponse:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return EmuResponse.json(400, {"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (
            SANDBOX_CLIENT_ID,
            SANDBOX_CLIENT_SECRET,
        ):
            return EmuResponse.json(
                401, {"error": "invalid_client", "error_description": "Bad client credentials"}
            )
        token = f"sbx-mirakl-token-{self._next()}"
        self.tokens.append(token)
        return EmuResponse.json(
            200,
            {
                "token_type": "Bearer",
                "access_token": token,
                "expires_in": TOKEN_LIFETIME,
                "target_app": "",
                "resource_owner": "",
            },
        )

    def _cancel(self, order_id: str, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "INVALID_INPUT", "request body is not JSON")
        problems = _schema_problems(body)
        if problems:
            return _error(
                400,
                "INVALID_INPUT",
                "order has not been updated because of wrong or missing parameters",
                problems,
            )
        if order_id not in self.orders:
            return _error(
                404,
                "DATA_NOT_FOUND",
                f"order {order_id} does not exist",
                [{"message": "order does not exist", "field": "order_id"}],
            )
        action_id = str(uuid.uuid5(_ACTION_NAMESPACE, str(self._next())))
        self.actions[action_id] = {
            "order_id": order_id,
            "cancelations": body["cancelations"],
            "polls": 0,
            "status": "PENDING",
            "errors": [],
            "created_at": self._now(),
        }
        return EmuResponse.json(202, {"action_id": action_id, "tracking_id": action_id})

    def _action_status(self, action_id: str) -> EmuResponse:
        action = self.actions.get(action_id)
        if action is None:
            return _error(404, "DATA_NOT_FOUND", f"action {action_id} does not exist")
        action["polls"] += 1
        if action["status"] == "PENDING" and action["polls"] > PENDING_POLLS:
            self._complete(action)
        payload = {
            "id": action_id,
            "status": action["status"],
            "created_at": action["created_at"],
            "updated_at": action.get("updated_at", action["created_at"]),
        }
        if action["errors"]:
            payload["errors"] = action["errors"]
        return EmuResponse.json(200, payload)

    def _complete(self, action: dict[str, Any]) -> None:
        order = self.orders[action["order_id"]]
        errors = []
        for item in action["cancelations"]:
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
            elif item["price"]["currency"] != order["currency"]:
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
        action["updated_at"] = self._now()


def _error(
    status: int, code: str, message: str, items: list[dict[str, str]] | None = None
) -> EmuResponse:
    payload: dict[str, Any] = {"code": code, "message": message}
    if items:
        payload["errors"] = items
    return EmuResponse.json(status, payload)


def _schema_problems(body: Any) -> list[dict[str, str]]:
    """What ``CancelOrderLinesRequest`` refuses, as Mirakl ``ErrorItem`` dicts."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("cancelations"), list)
        or not body["cancelations"]
    ):
        return [{"message": "must contain at least one cancelation", "field": "cancelations"}]
    problems = []
    for index, item in enumerate(body["cancelations"]):
        where = f"cancelations[{index}]"
        if not isinstance(item, dict):
            problems.append({"message": "must be an object", "field": where})
            continue
        for name in ("price", "quantity", "reason", "shipping_price"):
            if name not in item:
                problems.append({"message": "must not be null", "field": f"{where}.{name}"})
        quantity = item.get("quantity")
        if "quantity" in item and (
            not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0
        ):
            problems.append({"message": "must be an integer >= 0", "field": f"{where}.quantity"})
        if "reason" in item and item["reason"] not in _REASONS:
            problems.append({"message": "unknown reason", "field": f"{where}.reason"})
        for name in ("price", "shipping_price"):
            if name in item and not _is_money(item[name]):
                problems.append(
                    {"message": "must be Money {amount >= 0, currency}", "field": f"{where}.{name}"}
                )
    return problems


def _is_money(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("amount"), (int, float, Decimal))
        and not isinstance(value.get("amount"), bool)
        and value["amount"] >= 0
        and isinstance(value.get("currency"), str)
        and len(value["currency"]) == 3
    )
