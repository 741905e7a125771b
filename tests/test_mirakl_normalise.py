"""Mirakl Connect answers -> canonical results, body by body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cancelkit.core.http import HttpResponse
from cancelkit.core.schemas import load_request
from cancelkit.plugins.mirakl.adapter import MiraklConnectAdapter

ADAPTER = MiraklConnectAdapter()


def answer(status: int, payload: Any = None, text: str | None = None, **headers: str):
    body = text if text is not None else ("" if payload is None else json.dumps(payload))
    return HttpResponse(status, headers, body)


@pytest.fixture
def req(example: Any):
    return load_request(example("mirakl"))


def test_202_is_accepted_with_the_action_id(req: Any) -> None:
    action = "1ba5fc4b-c4fd-4251-880b-3052e301bbd4"
    result = ADAPTER.normalise(req, answer(202, {"action_id": action, "tracking_id": action}))
    assert (result.outcome, result.tracking_id, result.http_status) == ("accepted", action, 202)
    assert [(line.line_id, line.status) for line in result.lines] == [
        ("0002_3202630-A-1", "pending")
    ]


@pytest.mark.parametrize("status", [400, 404])
def test_error_bodies_are_rejected_with_code_message_and_field(req: Any, status: int) -> None:
    body = {
        "code": "DATA_NOT_FOUND",
        "message": "An error occurred while processing your request",
        "errors": [
            {"message": "id is null", "field": "input.account.id", "extensions": {"minLength": 1}},
            {"message": "price missing", "field": "cancelations[0].price"},
        ],
        "extensions": {"maxLength": 255},
    }
    result = ADAPTER.normalise(req, answer(status, body))
    assert result.outcome == "rejected"
    assert result.http_status == status
    assert [(e.code, e.message, e.field) for e in result.errors] == [
        ("DATA_NOT_FOUND", "id is null", "input.account.id"),
        ("DATA_NOT_FOUND", "price missing", "cancelations[0].price"),
    ]
    assert {line.status for line in result.lines} == {"rejected"}


def test_error_body_without_items_keeps_the_top_level(req: Any) -> None:
    result = ADAPTER.normalise(req, answer(404, {"code": "DATA_NOT_FOUND", "message": "gone"}))
    assert [(e.code, e.message, e.field) for e in result.errors] == [
        ("DATA_NOT_FOUND", "gone", None)
    ]


@pytest.mark.parametrize(
    "response",
    [
        answer(500, {"code": "UNEXPECTED", "message": "boom"}),
        answer(502, text="<html><body>Bad Gateway</body></html>"),
        answer(202, text='{"action_id": "trunc'),
        answer(202, {"something": "else"}),
        answer(200, text=""),
    ],
    ids=["500", "html", "malformed", "no-action-id", "empty"],
)
def test_unreadable_or_server_errors_are_unknown(req: Any, response: HttpResponse) -> None:
    result = ADAPTER.normalise(req, response)
    assert result.outcome == "unknown"
    assert "NOT resent" in result.message
    assert "0024_COMMERCIAL_ID-A" in result.message
    assert {line.status for line in result.lines} == {"unknown"}


def test_4xx_without_error_body_is_rejected_not_a_crash(req: Any) -> None:
    result = ADAPTER.normalise(req, answer(400, text="<html>nope</html>"))
    assert result.outcome == "rejected"
    assert result.errors[0].code == "HTTP_400"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("PENDING", "accepted"), ("SUCCESS", "cancelled"), ("FAILED", "rejected")],
)
def test_action_status_maps_to_outcomes(status: str, outcome: str) -> None:
    body = {
        "id": "a1",
        "status": status,
        "created_at": "2021-11-30T18:35:24Z",
        "updated_at": "2021-11-30T18:38:24Z",
    }
    result = ADAPTER.normalise_status("a1", answer(200, body))
    assert (result.outcome, result.tracking_id) == (outcome, "a1")


def test_failed_action_keeps_every_error_code_including_unknown_ones() -> None:
    body = {
        "id": "a1",
        "status": "FAILED",
        "created_at": "x",
        "updated_at": "y",
        "errors": [
            {
                "code": "ORDER_IN_WRONG_STATE",
                "message": "The order was not in the expected status.",
            },
            {"code": "SOMETHING_NEW_2027", "message": "a code this version does not know"},
        ],
    }
    result = ADAPTER.normalise_status("a1", answer(200, body))
    assert [e.code for e in result.errors] == ["ORDER_IN_WRONG_STATE", "SOMETHING_NEW_2027"]


def test_unknown_action_is_rejected_as_not_found() -> None:
    result = ADAPTER.normalise_status(
        "nope", answer(404, {"code": "DATA_NOT_FOUND", "message": "no such action"})
    )
    assert result.outcome == "rejected"
    assert "not found" in result.message


@pytest.mark.parametrize("response", [answer(500, text="oops"), answer(200, text="<html>")])
def test_unreadable_status_is_unknown(response: HttpResponse) -> None:
    assert ADAPTER.normalise_status("a1", response).outcome == "unknown"
