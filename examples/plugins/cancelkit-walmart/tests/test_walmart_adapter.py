"""The adapter alone: translation, reasons, the line limit, and reading Walmart's answers."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from cancelkit.plugin import (
    REASONS,
    CancelRequest,
    HttpResponse,
    InvalidRequestError,
    Line,
    Settings,
)

from cancelkit_walmart.adapter import (
    CANCELLATION_REASONS,
    REASON_MAP,
    SETTINGS,
    WalmartAdapter,
    correlation_ids,
)

ADAPTER = WalmartAdapter()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def settings(**values: str) -> Settings:
    base = {"base_url": "https://marketplace.walmartapis.com", "client_id": "id"}
    return Settings("walmart", {**base, **values}, SETTINGS)


def request(*lines: tuple[str, int | str], **fields: Any) -> CancelRequest:
    given = lines or (("1", 1),)
    return CancelRequest(
        lines=tuple(Line(n, Decimal(q)) for n, q in given),
        **{"order_id": "1577914061094", "reason": "CUSTOMER_REQUEST", **fields},
    )


def answer(status: int, payload: Any, **headers: str) -> HttpResponse:
    return HttpResponse(status, headers, json.dumps(payload))


def order(*lines: tuple[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """A ``{"order"}`` answer: each line with its (status, amount) entries."""
    return {
        "order": {
            "purchaseOrderId": "1577914061094",
            "orderLines": {
                "orderLine": [
                    {
                        "lineNumber": number,
                        "orderLineStatuses": {
                            "orderLineStatus": [
                                {"status": s, "statusQuantity": {"unitOfMeasurement": "EACH",
                                                                 "amount": a}}
                                for s, a in entries
                            ]
                        },
                    }
                    for number, entries in lines
                ]
            },
        }
    }  # fmt: skip


# -- translate ----------------------------------------------------------------------
def test_the_call_is_walmarts_cancel_with_its_headers() -> None:
    call = ADAPTER.translate(request(("1", 1), ("2", 3)), settings())
    assert call.method == "POST"
    assert call.url == "https://marketplace.walmartapis.com/v3/orders/1577914061094/cancel"
    headers = dict(call.headers)
    assert UUID.fullmatch(headers.pop("WM_QOS.CORRELATION_ID"))
    assert headers == {
        "WM_SEC.ACCESS_TOKEN": "***",  # filled at send time, raw (no Bearer)
        "WM_SVC.NAME": "Walmart Marketplace",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    [first, second] = call.body["orderCancellation"]["orderLines"]["orderLine"]
    assert first == {
        "lineNumber": "1",
        "orderLineStatuses": {
            "orderLineStatus": [
                {
                    "status": "Cancelled",
                    "cancellationReason": "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"},
                }
            ]
        },
    }
    assert second["orderLineStatuses"]["orderLineStatus"][0]["statusQuantity"]["amount"] == "3"


def test_the_consumer_channel_type_goes_out_only_when_set() -> None:
    assert "WM_CONSUMER.CHANNEL.TYPE" not in ADAPTER.translate(request(), settings()).headers
    call = ADAPTER.translate(request(), settings(consumer_channel_type="chan-1"))
    assert call.headers["WM_CONSUMER.CHANNEL.TYPE"] == "chan-1"


def test_correlation_ids_are_random_unless_sequential_is_asked_for() -> None:
    random = correlation_ids("random")
    assert random() != random()
    first, again = correlation_ids("sequential"), correlation_ids("sequential")
    numbered = [first(), first()]
    assert numbered[0] != numbered[1] and [again(), again()] == numbered  # reproducible
    assert all(UUID.fullmatch(i) for i in numbered)


# -- reasons ------------------------------------------------------------------------
def test_the_mapping_is_onto_walmarts_enum() -> None:
    assert set(REASON_MAP) <= set(REASONS)
    assert set(REASON_MAP.values()) <= set(CANCELLATION_REASONS)
    assert ADAPTER.capabilities.platform_reasons == CANCELLATION_REASONS
    assert len(CANCELLATION_REASONS) == 5


@pytest.mark.parametrize("reason", REASONS)
def test_every_canonical_reason_is_mapped_or_refused_with_the_accepted_list(reason: str) -> None:
    wanted = request(reason=reason)
    if reason in REASON_MAP:
        body = ADAPTER.translate(wanted, settings()).body
        line = body["orderCancellation"]["orderLines"]["orderLine"][0]
        assert (
            line["orderLineStatuses"]["orderLineStatus"][0]["cancellationReason"]
            == (REASON_MAP[reason])
        )
        return
    with pytest.raises(InvalidRequestError) as refused:
        ADAPTER.validate(wanted)
    [problem] = refused.value.errors
    assert problem.path == "reason"
    assert "accepted: CUSTOMER_REQUEST, OUT_OF_STOCK, UNABLE_TO_DELIVER, FRAUD" in problem.message


def test_the_pricing_error_reason_goes_as_platform_reason() -> None:
    wanted = request(reason=None, platform_reason="SELLER_CANCEL_PRICING_ERROR")
    ADAPTER.validate(wanted)
    line = ADAPTER.translate(wanted, settings()).body["orderCancellation"]["orderLines"]
    status = line["orderLine"][0]["orderLineStatuses"]["orderLineStatus"][0]
    assert status["cancellationReason"] == "SELLER_CANCEL_PRICING_ERROR"
    assert ADAPTER.warnings(wanted) == []


def test_out_of_stock_warns_of_the_stock_side_effect() -> None:
    for wanted in (
        request(reason="OUT_OF_STOCK"),
        request(reason=None, platform_reason="SELLER_CANCEL_OUT_OF_STOCK"),
    ):
        assert any("out of stock in that warehouse" in w for w in ADAPTER.warnings(wanted))
    assert ADAPTER.warnings(request()) == []


def test_a_reason_is_required() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        ADAPTER.validate(request(reason=None))
    assert [e.path for e in refused.value.errors] == ["reason"]


# -- limits -------------------------------------------------------------------------
def test_at_most_100_lines_per_request() -> None:
    ADAPTER.validate(request(*[(str(n), 1) for n in range(1, 101)]))
    with pytest.raises(InvalidRequestError) as refused:
        ADAPTER.validate(request(*[(str(n), 1) for n in range(1, 102)]))
    [problem] = refused.value.errors
    assert problem.path == "lines" and "at most 100" in problem.message and "101" in problem.message


def test_whole_quantities_only() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        ADAPTER.validate(request(("1", "1.5")))
    assert [e.path for e in refused.value.errors] == ["lines[0].quantity"]


# -- answers ------------------------------------------------------------------------
def test_each_line_counts_its_cancelled_entries() -> None:
    """Two Cancelled entries add up; other statuses do not count."""
    wanted = request(("1", 1), ("2", 3))
    got = ADAPTER.normalise(
        wanted,
        answer(
            200,
            order(
                ("1", [("Cancelled", "1")]),
                ("2", [("Cancelled", "1"), ("Acknowledged", "5"), ("Cancelled", "2")]),
            ),
        ),
    )
    assert got.outcome == "cancelled"
    assert [(line.line_id, line.status) for line in got.lines] == [
        ("1", "cancelled"),
        ("2", "cancelled"),
    ]
    assert got.details["purchase_order_id"] == "1577914061094"


def test_a_line_with_less_cancelled_than_asked_is_rejected_and_the_result_partial() -> None:
    wanted = request(("1", 1), ("2", 3), ("9", 1))
    got = ADAPTER.normalise(
        wanted,
        answer(
            200, order(("1", [("Cancelled", "1")]), ("2", [("Cancelled", "2"), ("Shipped", "1")]))
        ),
    )
    assert got.outcome == "partial"
    assert [line.status for line in got.lines] == ["cancelled", "rejected", "rejected"]
    assert "shows 2 of 3 cancelled on line 2" in got.lines[1].errors[0].message
    assert "line not in it" in got.lines[2].errors[0].message
    assert {e.code for e in got.errors} == {"NOT_CANCELLED"}


def test_nothing_cancelled_is_rejected() -> None:
    got = ADAPTER.normalise(request(), answer(200, order(("1", [("Shipped", "1")]))))
    assert got.outcome == "rejected"


@pytest.mark.parametrize("amount", ["x", "-1", "1e3", "NaN", None, True, ""])
def test_an_unreadable_amount_counts_as_nothing(amount: Any) -> None:
    got = ADAPTER.normalise(request(), answer(200, order(("1", [("Cancelled", amount)]))))
    assert got.outcome == "rejected"


def test_a_200_without_an_order_is_unknown() -> None:
    got = ADAPTER.normalise(request(), answer(200, {"status": "ok"}))
    assert got.outcome == "unknown"


def test_errors_in_the_documented_list_shape() -> None:
    """``{"errors": [{code, message, field}]}`` (the US error-codes page)."""
    payload = {"errors": [{"code": "INVALID_REQUEST_PARAM", "message": "bad sku", "field": "sku",
                           "category": "DATA", "severity": "ERROR"}]}  # fmt: skip
    got = ADAPTER.normalise(request(), answer(400, payload))
    assert got.outcome == "rejected" and got.http_status == 400
    assert [(e.code, e.message, e.field) for e in got.errors] == [
        ("INVALID_REQUEST_PARAM", "bad sku", "sku")
    ]
    assert [line.status for line in got.lines] == ["rejected"]


def test_errors_in_the_observed_nested_shape() -> None:
    """``{"errors": {"error": [{code, description, info}]}}`` (real Orders API answers)."""
    payload = {"errors": {"error": [
        {"code": "INVALID_REQUEST_CONTENT.GMP_ORDER_API", "field": "orderLine",
         "description": "Line 3 is in SHIPPED status", "info": "Request content is invalid."},
        {"code": "CONTENT_NOT_FOUND.GMP_ORDER_API", "info": "only info"},
    ]}}  # fmt: skip
    got = ADAPTER.normalise(request(), answer(400, payload))
    assert [(e.code, e.message, e.field) for e in got.errors] == [
        ("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "Line 3 is in SHIPPED status", "orderLine"),
        ("CONTENT_NOT_FOUND.GMP_ORDER_API", "only info", None),
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"errors": {"error": {"code": "ONE", "description": "single"}}}, "ONE"),
        ({"message": "no errors key"}, "HTTP_404"),
        ([], "HTTP_404"),
    ],
)
def test_odd_error_bodies_still_give_a_coded_rejection(payload: Any, code: str) -> None:
    got = ADAPTER.normalise(request(), answer(404, payload))
    assert got.outcome == "rejected" and [e.code for e in got.errors] == [code]


def test_the_rate_headers_are_kept_in_details() -> None:
    details = ADAPTER.response_details(
        answer(200, {}, **{"x-current-token-count": "59", "X-Next-Replenishment-Time": "17672"})
    )
    assert details == {"rate_limit_remaining": 59, "rate_limit_replenished_at": "17672"}
    assert ADAPTER.response_details(answer(200, {}, **{"X-Current-Token-Count": "²"})) == {}


def test_a_429_is_left_to_core_as_a_rate_limit() -> None:
    assert ADAPTER.is_rate_limited(answer(429, {"errors": {"error": []}}))
