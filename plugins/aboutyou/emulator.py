"""About You Sellers Center emulator: order items, batch cancels, results, rate limits.

It judges by About You's published contract, never by the plugin: cancel bodies
are checked against ``contracts/aboutyou-cancel.schema.json`` (the OpenAPI 3.1
fragment of "Cancel Order Items", seed 003), limits are the documented numbers,
and nothing is imported from ``adapter.py``. Documented behaviour it follows
(seed 003, shared/platforms part B):

* ``POST /orders/cancel`` with ``X-API-Key``: a body that breaks
  ``CancelRequestSchema`` (no ``items``, an empty list, an item without an integer
  ``id >= 1``) gets 400 ``BadRequestSchema`` ``{"message"}`` naming every
  violation; a wrong key gets 401 ``{"message"}``. Otherwise 200
  ``{"batchRequestId": uuid}``.
* "Identical payloads from the same merchant within the deduplication window
  return the existing in-flight ID instead of queuing a new batch": an identical
  payload gets the batch back only while that batch is in flight (not completed).
  Sent again after it completed, it starts a new batch, whose items then fail as
  already cancelled.
* ``GET /results/cancel-orders?batch_request_id=...``: by the sandbox clock, a
  batch is ``pending`` for :data:`BATCH_PENDING_SECONDS`, ``processing`` until
  :data:`BATCH_SECONDS`, then ``completed`` - however often it was polled - with
  one result per item: ``success`` and ``errors`` (already shipped, already
  cancelled, already returned, not found). Open items become ``cancelled`` when
  their batch completes.
* Rate limits per API key: :data:`CANCEL_LIMIT_PER_MINUTE` cancels and
  :data:`RESULTS_LIMIT_PER_MINUTE` result polls per minute (sliding, sandbox
  clock); past them, 429. Every answer carries ``X-RateLimit-Limit`` and
  ``X-RateLimit-Remaining``. The cancel limit and its window are the documented
  ones unless the emulator is made with others (``AboutYouEmulator(cancel_limit=20,
  cancel_window=2)``), so a test can run an account's shorter limit quickly.

Not documented, chosen by the emulator: the processing times, the wording of the
item errors, an unknown batch id gets 404 ``{"message"}``, and a 429 says
``Retry-After`` (when the oldest call of the minute leaves the window).

``cancel_log`` is the emulator's own record of every cancel call it answered (when it
arrived, its status, the batch it named), so a test can check what the platform saw
(how many calls in any window, how often an item was asked for) without trusting the
client's account of it.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import deque
from typing import Any, ClassVar

from cancelkit.plugin import (
    Contract,
    EmuRequest,
    EmuResponse,
    Fault,
    Refusal,
    StateField,
    StatefulEmulator,
)

#: The published request contract every cancel body is judged by.
CONTRACT = Contract.packaged("cancelkit.plugins.aboutyou", "contracts/aboutyou-cancel.schema.json")
#: The documented base URL (docs.partner.aboutyou.com, API authentication page).
PRODUCTION_BASE = "https://partner.aboutyou.com/api/v1"
#: Requests per minute per API key, as documented: "Rate limit: 50 requests per
#: minute" on Cancel Order Items (seed 003) and ``/results/*`` GET 200/min in the
#: rate-limiting table (docs.partner.aboutyou.com/api/getting-started/rate-limiting).
CANCEL_LIMIT_PER_MINUTE = 50
RESULTS_LIMIT_PER_MINUTE = 200
#: Seconds (sandbox clock) a batch stays ``pending``, then ``processing`` until
#: :data:`BATCH_SECONDS` after it was queued, then ``completed``. About You publishes
#: no processing time; a couple of seconds keeps the sandbox quick while a poll
#: right after the cancel still sees the batch in flight.
BATCH_PENDING_SECONDS = 1.0
BATCH_SECONDS = 2.0

SANDBOX_API_KEY = "sandbox-aboutyou-api-key"
_BATCH_NAMESPACE = uuid.UUID("1b0f7f6e-3c55-4a3e-8f0e-6a1d2c9b7e11")

#: Demo orders: item id -> status. examples/aboutyou*.json cancel these.
SEED_ITEMS: dict[str, dict[str, str]] = {
    "AY-1001": {
        "1001": "open",
        "1002": "open",
        "1003": "shipped",
        "1004": "cancelled",
        "1005": "returned",
    },
    "AY-1002": {"2001": "open", "2002": "open", "2003": "open"},
}
_WHY_NOT = {
    "shipped": "Order item {id} is already shipped",
    "cancelled": "Order item {id} is already cancelled",
    "returned": "Order item {id} is already returned",
}


def _rate_windows() -> dict[str, deque[float]]:
    """Per endpoint, the sandbox times of its calls in the last minute."""
    return {"cancel": deque(), "results": deque()}


class AboutYouEmulator(StatefulEmulator):
    """Stateful Sellers Center: see the module docstring."""

    platform = "aboutyou"
    production_bases: ClassVar[dict[str, str]] = {
        "orders": f"{PRODUCTION_BASE}/orders",
        "results": f"{PRODUCTION_BASE}/results",
    }
    # About You documents no request id header; the adapter reads the common one.
    request_id_header = "X-Request-Id"

    #: Item id -> status, every order's items together.
    items = StateField(
        {item: status for order in SEED_ITEMS.values() for item, status in order.items()}
    )
    batches: StateField[dict[str, dict[str, Any]]] = StateField(factory=dict)
    counter = StateField(0)
    #: Every cancel call answered: ``{"at": sandbox time, "status": HTTP status,
    #: "batch": batch id or None}``, oldest first (older state files have none).
    cancel_log: StateField[list[dict[str, Any]]] = StateField(factory=list, required=False)
    #: Rate windows: fresh on reset, not kept in the state file.
    _calls = StateField(factory=_rate_windows, kept=False)

    def __init__(
        self, cancel_limit: int = CANCEL_LIMIT_PER_MINUTE, cancel_window: float = 60.0
    ) -> None:
        """At most ``cancel_limit`` cancels in any ``cancel_window`` seconds per API key
        (About You's documented 50 a minute unless told otherwise)."""
        if cancel_limit < 1 or not cancel_window > 0:
            raise ValueError(
                f"cancel limit must be at least 1 per a positive window, got "
                f"{cancel_limit}/{cancel_window}"
            )
        self.cancel_limit = cancel_limit
        self.cancel_window = float(cancel_window)
        super().__init__()

    def client_settings(self, base_url: str) -> dict[str, str]:
        """Point the aboutyou adapter here with the sandbox key.

        The first poll of ``send --wait`` comes while the batch is processing, the
        next (x1.5) after it completed.
        """
        return {"base_url": base_url, "api_key": SANDBOX_API_KEY, "poll_interval": "1"}

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the cancel or the results endpoint."""
        self._settle(request.now)
        if request.header("X-API-Key") != SANDBOX_API_KEY:
            raise Refusal(401, {"message": "Invalid or missing API key"})
        if request.segments == ("orders", "cancel") and request.method == "POST":
            endpoint, limit, window = "cancel", self.cancel_limit, self.cancel_window
        elif request.segments == ("results", "cancel-orders") and request.method == "GET":
            endpoint, limit, window = "results", RESULTS_LIMIT_PER_MINUTE, 60.0
        else:
            raise Refusal(404, {"message": "Not found"})
        try:
            response = self._limited(request, endpoint, limit, window)
        except Refusal as refusal:
            if endpoint == "cancel":
                self.cancel_log.append({"at": request.now, "status": refusal.status, "batch": None})
            raise
        if endpoint == "cancel":
            batch = json.loads(response.body).get("batchRequestId")
            self.cancel_log.append({"at": request.now, "status": response.status, "batch": batch})
        return response

    def _limited(
        self, request: EmuRequest, endpoint: str, limit: int, window: float
    ) -> EmuResponse:
        """Answer within ``endpoint``'s rate limit (429 past it), rate headers on every answer."""
        remaining = self._count(endpoint, limit, window, request.now)
        if remaining < 0:
            # When the oldest call of the window leaves it, a slot frees up.
            wait = max(self._calls[endpoint][0] + window - request.now, 0.0)
            headers = {**_rate(limit, 0), "Retry-After": str(math.ceil(wait))}
            raise Refusal(429, {"message": "Too many requests"}, headers)
        rate = _rate(limit, remaining)  # on every answer the endpoint gives, refusals too
        try:
            if endpoint == "cancel":
                response = self._cancel(request)
            else:
                response = self._results(request.query.get("batch_request_id", ""))
        except Refusal as refusal:
            raise refusal.with_headers(rate) from None
        return EmuResponse(response.status, response.body, {**response.headers, **rate})

    def fault_response(self, fault: Fault) -> EmuResponse | None:
        """About You's own bodies: ``{"message"}`` with the rate headers on a 429."""
        if fault.kind == "429":
            retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return EmuResponse.json(
                429,
                {"message": "Too many requests"},
                {**_rate(self.cancel_limit, 0), **retry},
            )
        if fault.kind == "401":
            return EmuResponse.json(401, {"message": "Invalid or missing API key"})
        return None

    def _count(self, endpoint: str, limit: int, window: float, now: float) -> int:
        """Count a call in its window; returns what remains, or -1 when over the limit."""
        calls = self._calls[endpoint]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            return -1
        calls.append(now)
        return limit - len(calls)

    def _cancel(self, request: EmuRequest) -> EmuResponse:
        body = CONTRACT.checked_body(
            request,
            definition="CancelRequestSchema",
            not_json=Refusal(400, {"message": "Invalid JSON body"}),
            refuse=lambda violations: Refusal(
                400, {"message": "; ".join(f"{v.field}: {v.message}" for v in violations)}
            ),
        )
        payload = json.dumps(body, sort_keys=True)
        for batch_id, batch in self.batches.items():
            if batch["payload"] == payload and batch["status"] != "completed":
                return EmuResponse.json(200, {"batchRequestId": batch_id})
        self.counter += 1
        batch_id = str(uuid.uuid5(_BATCH_NAMESPACE, str(self.counter)))
        self.batches[batch_id] = {
            "payload": payload,
            "ids": [item["id"] for item in body["items"]],
            "created": request.now,
            "status": "pending",
            "items": [],
        }
        return EmuResponse.json(200, {"batchRequestId": batch_id})

    def _results(self, batch_id: str) -> EmuResponse:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise Refusal(404, {"message": f"Batch request {batch_id} not found"})
        return EmuResponse.json(
            200, {"batchRequestId": batch_id, "status": batch["status"], "items": batch["items"]}
        )

    def _settle(self, now: float) -> None:
        """Move every batch on by the clock, oldest first; completing one cancels its items.

        Done on every request, whoever asks, so item states follow the clock (a
        resend after completion finds the items cancelled).
        """
        for batch in self.batches.values():
            if batch["status"] == "completed":
                continue
            # A batch saved without "created" (an older state file) is long done.
            elapsed = now - batch.get("created", -math.inf)
            if elapsed >= BATCH_SECONDS:
                batch["status"] = "completed"
                batch["items"] = [self._cancel_item(item_id) for item_id in batch["ids"]]
            elif elapsed >= BATCH_PENDING_SECONDS:
                batch["status"] = "processing"

    def _cancel_item(self, item_id: int) -> dict[str, Any]:
        status = self.items.get(str(item_id))
        if status is None:
            errors = [f"Order item {item_id} not found"]
        elif status != "open":
            errors = [_WHY_NOT[status].format(id=item_id)]
        else:
            self.items[str(item_id)] = "cancelled"
            errors = []
        return {"requestItem": {"id": item_id}, "success": not errors, "errors": errors}


def _rate(limit: int, remaining: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining)}
