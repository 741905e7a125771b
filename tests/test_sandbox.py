"""The sandbox over plain HTTP: documented Mirakl rules, faults, state between runs.

Actions finish by the sandbox clock (``Sandbox.advance``), never by how often they
were asked; status calls for one action id keep Mirakl's once-a-minute rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import mirakl_token

import cancelkit
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.plugins.mirakl.emulator import (
    ACTION_PROCESSING_SECONDS,
    SANDBOX_CLIENT_ID,
    SEED_ORDERS,
    STATUS_MIN_INTERVAL,
)

ROOT = Path(__file__).resolve().parent.parent
#: Enough sandbox time for an action to finish, and for the next status call.
LATER = max(ACTION_PROCESSING_SECONDS, STATUS_MIN_INTERVAL)
#: The sandbox clock here stands still (2026-01-01T00:00:00Z) unless a test moves it,
#: so a slow test machine cannot let an action finish early.
FROZEN = 1_767_225_600.0


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox whose clock moves only by ``advance``."""
    with cancelkit.sandbox(clock=lambda: FROZEN) as box:
        yield box


def token(box: Sandbox) -> str:
    answer = mirakl_token(box)
    assert answer["expires_in"] == 3599
    return str(answer["access_token"])


def cancel(box: Sandbox, order_id: str, body: Any, bearer: str | None = None):
    url = f"{box.base_url('mirakl')}/api/v2/orders/{requests.utils.quote(order_id, safe='')}/cancel"
    headers = {"Authorization": f"Bearer {bearer or token(box)}"}
    return requests.post(url, json=body, headers=headers, timeout=5)


def item(**overrides: Any) -> dict[str, Any]:
    return {
        "order_line_id": "0002_3202630-A-1",
        "quantity": 1,
        "reason": "CUSTOMER_CANCELATION",
        "price": {"amount": 15, "currency": "USD"},
        "shipping_price": {"amount": 8, "currency": "USD"},
        **overrides,
    }


def test_unknown_order_is_404_with_an_error_body(sandbox: Sandbox) -> None:
    answer = cancel(sandbox, "NOPE", {"cancelations": [item()]})
    assert answer.status_code == 404
    assert answer.json()["code"] == "DATA_NOT_FOUND"


def test_schema_violations_are_400_with_a_field_per_error(sandbox: Sandbox) -> None:
    body = {"cancelations": [item(quantity=-1, reason="BORED")]}
    del body["cancelations"][0]["price"]
    answer = cancel(sandbox, "0024_COMMERCIAL_ID-A", body)
    assert answer.status_code == 400
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"cancelations[0].price", "cancelations[0].quantity", "cancelations[0].reason"}


def test_missing_or_unknown_token_is_401(sandbox: Sandbox) -> None:
    answer = cancel(sandbox, "0024_COMMERCIAL_ID-A", {"cancelations": [item()]}, bearer="x")
    assert answer.status_code == 401


def test_wrong_client_secret_gets_no_token(sandbox: Sandbox) -> None:
    answer = requests.post(
        f"{sandbox.base_url('mirakl')}/auth/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": "wrong",
        },
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def poll(box: Sandbox, action_id: str, bearer: str) -> dict[str, Any]:
    answer = requests.get(
        f"{box.base_url('mirakl')}/api/v2/orders/actions/{action_id}",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=5,
    )
    return answer.json()


def test_actions_are_pending_until_the_processing_time_has_passed(sandbox: Sandbox) -> None:
    bearer = token(sandbox)
    accepted = cancel(sandbox, "0024_COMMERCIAL_ID-A", {"cancelations": [item(quantity=2)]}, bearer)
    assert accepted.status_code == 202
    action_id = accepted.json()["action_id"]
    assert poll(sandbox, action_id, bearer)["status"] == "PENDING"
    sandbox.advance(LATER)
    done = poll(sandbox, action_id, bearer)
    assert done["status"] == "SUCCESS"
    assert done["updated_at"] > done["created_at"]
    line = sandbox.emulators["mirakl"].orders["0024_COMMERCIAL_ID-A"]["lines"]["0002_3202630-A-1"]
    assert (line["quantity"], line["can_cancel"]) == (0, False)
    # Nothing left: a second cancel of the same line fails with ORDER_IN_WRONG_STATE.
    again = cancel(sandbox, "0024_COMMERCIAL_ID-A", {"cancelations": [item()]}, bearer).json()
    sandbox.advance(LATER)
    failed = poll(sandbox, again["action_id"], bearer)
    assert failed["status"] == "FAILED"
    assert failed["errors"][0]["code"] == "ORDER_IN_WRONG_STATE"


def test_an_action_finishes_by_the_clock_even_if_never_asked(sandbox: Sandbox) -> None:
    # A poll-counting emulator would answer PENDING to this first status call.
    bearer = token(sandbox)
    body = {"cancelations": [item(quantity=2)]}
    action_id = cancel(sandbox, "0024_COMMERCIAL_ID-A", body, bearer).json()["action_id"]
    sandbox.advance(ACTION_PROCESSING_SECONDS)
    assert poll(sandbox, action_id, bearer)["status"] == "SUCCESS"


def test_polls_do_not_hurry_an_action(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow channel (5 minutes): polled every minute, it stays PENDING however many
    # times it is asked, and finishes when its time has passed.
    monkeypatch.setattr("cancelkit.plugins.mirakl.emulator.ACTION_PROCESSING_SECONDS", 300.0)
    bearer = token(sandbox)
    action_id = cancel(sandbox, "0024_COMMERCIAL_ID-A", {"cancelations": [item()]}, bearer).json()[
        "action_id"
    ]
    seen = []
    for _ in range(5):
        seen.append(poll(sandbox, action_id, bearer)["status"])
        sandbox.advance(STATUS_MIN_INTERVAL)
    assert seen == ["PENDING"] * 5
    assert poll(sandbox, action_id, bearer)["status"] == "SUCCESS"


def test_a_second_status_call_within_a_minute_is_429_with_retry_after(sandbox: Sandbox) -> None:
    bearer = token(sandbox)
    action_id = cancel(sandbox, "0024_COMMERCIAL_ID-A", {"cancelations": [item()]}, bearer).json()[
        "action_id"
    ]
    url = f"{sandbox.base_url('mirakl')}/api/v2/orders/actions/{action_id}"
    headers = {"Authorization": f"Bearer {bearer}"}
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    sandbox.advance(20)
    early = requests.get(url, headers=headers, timeout=5)
    assert early.status_code == 429
    assert 39 <= int(early.headers["Retry-After"]) <= 40
    assert early.json()["code"] == "TOO_MANY_REQUEST" and early.json()["message"]
    # A refused call does not restart the minute; another action id is not held back.
    sandbox.advance(STATUS_MIN_INTERVAL - 20)
    assert requests.get(url, headers=headers, timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"quantity": 3}, "INVALID_INPUT"),
        ({"order_line_id": "X"}, "DATA_NOT_FOUND"),
        ({"price": {"amount": 15, "currency": "EUR"}}, "INVALID_INPUT"),
    ],
)
def test_failed_actions_cancel_nothing(sandbox: Sandbox, changes: dict, code: str) -> None:
    bearer = token(sandbox)
    body = {"cancelations": [item(order_line_id="0002_3202630-A-2"), item(**changes)]}
    action_id = cancel(sandbox, "0024_COMMERCIAL_ID-A", body, bearer).json()["action_id"]
    sandbox.advance(ACTION_PROCESSING_SECONDS)
    result = poll(sandbox, action_id, bearer)
    assert (result["status"], result["errors"][0]["code"]) == ("FAILED", code)
    assert sandbox.emulators["mirakl"].orders == SEED_ORDERS


def test_faults_can_be_queued_over_http(sandbox: Sandbox) -> None:
    queued = requests.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"kind": "429", "platform": "mirakl", "retry_after": 5},
        timeout=5,
    )
    assert queued.status_code == 201
    answer = cancel(sandbox, "0024_COMMERCIAL_ID-A", {"cancelations": [item()]})
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "5")
    assert (
        requests.post(
            f"{sandbox.url}/_sandbox/faults", json={"kind": "meteor"}, timeout=5
        ).status_code
        == 400
    )


def test_state_survives_between_sandboxes_with_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with cancelkit.sandbox(state_path=state, clock=lambda: FROZEN) as box:
        action_id = cancel(box, "0024_COMMERCIAL_ID-A", {"cancelations": [item()]}).json()[
            "action_id"
        ]
    with cancelkit.sandbox(state_path=state, clock=lambda: FROZEN) as box:
        bearer = token(box)
        assert poll(box, action_id, bearer)["status"] == "PENDING"
        box.advance(LATER)
        assert poll(box, action_id, bearer)["status"] == "SUCCESS"


def test_examples_use_the_seeded_orders() -> None:
    import json

    for path in sorted((ROOT / "examples").glob("mirakl*.json")):
        data = json.loads(path.read_text())
        assert data["order_id"] in SEED_ORDERS, path
        for line in data["lines"]:
            assert line["line_id"] in SEED_ORDERS[data["order_id"]]["lines"], path
