"""About You Sellers Center emulator: order items, batch cancels, results, rate limits.

Documented behaviour it follows (seed 003, shared/platforms part B):

* ``POST /orders/cancel`` with ``X-API-Key``; ``{"items": [{"id": int >= 1}]}``, at
  least one item, else 400 ``{"message"}``; a wrong key gets 401 ``{"message"}``.
  200 ``{"batchRequestId": uuid}``.
* Identical payloads within the deduplication window return the in-flight batch
  id. The window here: while that batch is not completed.
* ``GET /results/cancel-orders?batch_request_id=...``: a batch is ``pending`` on the
  first poll, ``processing`` on the second, ``completed`` from the third, with one
  result per item: ``success`` and ``errors`` (already shipped, already cancelled,
  already returned, unknown item). Open items become ``cancelled``.
* Rate limits per API key: 50 cancels and 200 result polls per minute; past them,
  429. Every answer carries ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``.

Not documented, chosen by the emulator: an unknown batch id gets 404 ``{"message"}``;
the emulator's clock is injectable (``clock``) so tests can drive the minute.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cancelkit.plugin import Emulator, EmuRequest, EmuResponse, Fault

from .adapter import CANCEL_LIMIT_PER_MINUTE, DEFAULT_BASE_URL, RESULTS_LIMIT_PER_MINUTE

SANDBOX_API_KEY = "sandbox-aboutyou-api-key"
_BATCH_NAMESPACE = uuid.UUID("1b0f7f6e-3c55-4a3e-8f0e-6a1d2c9b7e11")
_PROGRESS = ("pending", "processing", "completed")

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


class AboutYouEmulator(Emulator):
    """Stateful Sellers Center: see the module docstring."""

    platform = "aboutyou"
    production_bases: ClassVar[dict[str, str]] = {
        "orders": f"{DEFAULT_BASE_URL}/orders",
        "results": f"{DEFAULT_BASE_URL}/results",
    }

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Back to :data:`SEED_ITEMS`; no batches; fresh rate windows."""
        self.items = {
            item: status
            for order in copy.deepcopy(SEED_ITEMS).values()
            for item, status in order.items()
        }
        self.batches: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self._calls: dict[str, deque[float]] = {"cancel": deque(), "results": deque()}

    def dump_state(self) -> dict[str, Any]:
        """Items, batches and the id counter (rate windows are not kept)."""
        return {"items": self.items, "batches": self.batches, "counter": self.counter}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`dump_state`."""
        self.items = dict(state["items"])
        self.batches = copy.deepcopy(dict(state["batches"]))
        self.counter = int(state["counter"])

    def client_settings(self, base_url: str) -> dict[str, str]:
        """Point the aboutyou adapter here with the sandbox key; poll quickly."""
        return {"base_url": base_url, "api_key": SANDBOX_API_KEY, "poll_interval": "0.05"}

    # -- routes ---------------------------------------------------------------
    def handle(self, request: EmuRequest) -> EmuResponse:
        """Route to the cancel or the results endpoint."""
        if request.header("X-API-Key") != SANDBOX_API_KEY:
            return EmuResponse.json(401, {"message": "Invalid or missing API key"})
        if request.segments == ("orders", "cancel") and request.method == "POST":
            endpoint, limit = "cancel", CANCEL_LIMIT_PER_MINUTE
        elif request.segments == ("results", "cancel-orders") and request.method == "GET":
            endpoint, limit = "results", RESULTS_LIMIT_PER_MINUTE
        else:
            return EmuResponse.json(404, {"message": "Not found"})
        remaining = self._count(endpoint, limit)
        if remaining < 0:
            # When the oldest call of the minute leaves the window, a slot frees up.
            wait = max(self._calls[endpoint][0] + 60.0 - self.clock(), 0.0)
            headers = {**_rate(limit, 0), "Retry-After": f"{wait:.0f}"}
            return EmuResponse.json(429, {"message": "Too many requests"}, headers)
        response = (
            self._cancel(request)
            if endpoint == "cancel"
            else self._results(request.query.get("batch_request_id", ""))
        )
        return EmuResponse(
            response.status, response.body, {**response.headers, **_rate(limit, remaining)}
        )

    def fault_response(self, fault: Fault) -> EmuResponse | None:
        """About You's own bodies: ``{"message"}`` with the rate headers on a 429."""
        if fault.kind == "429":
            retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return EmuResponse.json(
                429,
                {"message": "Too many requests"},
                {**_rate(CANCEL_LIMIT_PER_MINUTE, 0), **retry},
            )
        if fault.kind == "401":
            return EmuResponse.json(401, {"message": "Invalid or missing API key"})
        return None

    def _count(self, endpoint: str, limit: int) -> int:
        """Count a call in its minute; returns what remains, or -1 when over the limit."""
        calls, now = self._calls[endpoint], self.clock()
        while calls and calls[0] <= now - 60.0:
            calls.popleft()
        if len(calls) >= limit:
            return -1
        calls.append(now)
        return limit - len(calls)

    def _cancel(self, request: EmuRequest) -> EmuResponse:
        try:
            body = request.json()
        except ValueError:
            return EmuResponse.json(400, {"message": "Invalid JSON body"})
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return EmuResponse.json(400, {"message": "items: at least one item is required"})
        for index, item in enumerate(items):
            item_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(item_id, int) or isinstance(item_id, bool) or item_id < 1:
                return EmuResponse.json(
                    400, {"message": f"items[{index}].id: must be an integer >= 1"}
                )
        payload = json.dumps(items, sort_keys=True)
        for batch_id, batch in self.batches.items():
            if batch["payload"] == payload and batch["status"] != "completed":
                return EmuResponse.json(200, {"batchRequestId": batch_id})
        self.counter += 1
        batch_id = str(uuid.uuid5(_BATCH_NAMESPACE, str(self.counter)))
        self.batches[batch_id] = {
            "payload": payload,
            "ids": [i["id"] for i in items],
            "polls": 0,
            "status": "pending",
            "items": [],
        }
        return EmuResponse.json(200, {"batchRequestId": batch_id})

    def _results(self, batch_id: str) -> EmuResponse:
        batch = self.batches.get(batch_id)
        if batch is None:
            return EmuResponse.json(404, {"message": f"Batch request {batch_id} not found"})
        batch["polls"] += 1
        if batch["status"] != "completed":
            batch["status"] = _PROGRESS[min(batch["polls"], len(_PROGRESS)) - 1]
            if batch["status"] == "completed":
                batch["items"] = [self._cancel_item(item_id) for item_id in batch["ids"]]
        return EmuResponse.json(
            200, {"batchRequestId": batch_id, "status": batch["status"], "items": batch["items"]}
        )

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
