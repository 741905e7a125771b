"""The emulator's rules, asked directly: token call, headers, contract, order rules, rate."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cancelkit.plugin import EmuRequest, EmuResponse, Fault, Refusal

from cancelkit_walmart.emulator import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    WalmartEmulator,
)

NOW = 1767225600.0
PO = "1577914061094"
BASIC = (
    "Basic " + base64.b64encode(f"{SANDBOX_CLIENT_ID}:{SANDBOX_CLIENT_SECRET}".encode()).decode()
)
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


def ask(emulator: WalmartEmulator, segments: tuple[str, ...], *, headers: dict[str, str],
        body: bytes = b"", now: float = NOW, method: str = "POST") -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    """Status, JSON body and headers of the emulator's answer (a refusal's included)."""
    request = EmuRequest(method, segments, {}, headers, body, now=now)
    try:
        response: EmuResponse = emulator.handle(request)
    except Refusal as refusal:
        response = refusal.response
    return response.status, json.loads(response.body or b"null"), dict(response.headers)


def token(emulator: WalmartEmulator, now: float = NOW) -> str:
    status, payload, _ = ask(emulator, ("api", "v3", "token"), headers={**FORM, "Authorization": BASIC},
                             body=b"grant_type=client_credentials", now=now)  # fmt: skip
    assert status == 200, payload
    return str(payload["access_token"])


def cancel_body(*lines: tuple[str, str], reason: str = "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
                status: str = "Cancelled") -> dict[str, Any]:  # fmt: skip
    return {"orderCancellation": {"orderLines": {"orderLine": [
        {"lineNumber": n, "orderLineStatuses": {"orderLineStatus": [
            {"status": status, "cancellationReason": reason,
             "statusQuantity": {"unitOfMeasurement": "EACH", "amount": a}}]}}
        for n, a in lines
    ]}}}  # fmt: skip


def cancel(emulator: WalmartEmulator, body: Any, *, po: str = PO, now: float = NOW,
           drop: tuple[str, ...] = (), access: str | None = None) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    headers = {
        "WM_SEC.ACCESS_TOKEN": access if access is not None else token(emulator, now),
        "WM_QOS.CORRELATION_ID": "3b5a4c1e-0000-4000-8000-000000000001",
        "WM_SVC.NAME": "Walmart Marketplace",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    for name in drop:
        del headers[name]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ask(emulator, ("api", "v3", "orders", po, "cancel"), headers=headers, body=raw, now=now)


def codes(payload: Any) -> list[str]:
    return [e["code"] for e in payload["errors"]["error"]]


@pytest.fixture
def emulator() -> WalmartEmulator:
    return WalmartEmulator()


# -- the Token API ---------------------------------------------------------------------
def test_the_token_call_takes_basic_credentials_and_a_form(emulator: WalmartEmulator) -> None:
    status, payload, _ = ask(emulator, ("api", "v3", "token"), headers={**FORM, "Authorization": BASIC},
                             body=b"grant_type=client_credentials")  # fmt: skip
    assert status == 200
    assert payload["token_type"] == "Bearer" and payload["expires_in"] == 900
    assert payload["access_token"] in emulator.tokens


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        # the credentials in the form, as other platforms take them: not Walmart's way
        (FORM, f"grant_type=client_credentials&client_id={SANDBOX_CLIENT_ID}&client_secret="
               f"{SANDBOX_CLIENT_SECRET}".encode(), 401),
        ({**FORM, "Authorization": "Basic " + base64.b64encode(b"id:wrong").decode()},
         b"grant_type=client_credentials", 401),
        ({**FORM, "Authorization": BASIC}, b"grant_type=password", 400),
    ],
)  # fmt: skip
def test_a_token_call_shaped_otherwise_is_refused(
    emulator: WalmartEmulator, headers: dict[str, str], body: bytes, expected: int
) -> None:
    status, payload, _ = ask(emulator, ("api", "v3", "token"), headers=headers, body=body)
    assert status == expected and "errors" in payload
    assert len(emulator.tokens) == 0


def test_the_token_is_raw_in_its_header_and_lives_15_minutes(emulator: WalmartEmulator) -> None:
    live = token(emulator)
    assert cancel(emulator, cancel_body(("1", "1")), access=live)[0] == 200
    for refused in (f"Bearer {live}", "", "not-a-token"):
        status, payload, _ = cancel(emulator, cancel_body(("2", "1")), access=refused)
        assert (status, codes(payload)) == (401, ["UNAUTHORIZED"])
    status, _, _ = cancel(emulator, cancel_body(("2", "1")), access=live, now=NOW + 900)
    assert status == 401


@pytest.mark.parametrize("header", ["WM_SVC.NAME", "WM_QOS.CORRELATION_ID"])
def test_required_headers(emulator: WalmartEmulator, header: str) -> None:
    status, payload, _ = cancel(emulator, cancel_body(("1", "1")), drop=(header,))
    assert status == 400
    [problem] = payload["errors"]["error"]
    assert (problem["code"], problem["field"]) == ("MISSING_REQUEST_HEADER", header)


# -- the contract --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.update(cancellationReason="CANCEL_BY_SELLER"), "cancellationReason"),
        (lambda s: s["statusQuantity"].pop("amount"), "statusQuantity.amount"),
        (lambda s: s["statusQuantity"].update(amount=1), "statusQuantity.amount"),
        (lambda s: s["statusQuantity"].update(unitOfMeasurement="PIECE"), "unitOfMeasurement"),
    ],
)
def test_a_body_that_breaks_the_published_contract_is_refused(
    emulator: WalmartEmulator, change: Any, field: str
) -> None:
    body = cancel_body(("1", "1"))
    change(body["orderCancellation"]["orderLines"]["orderLine"][0]["orderLineStatuses"]
           ["orderLineStatus"][0])  # fmt: skip
    status, payload, _ = cancel(emulator, body)
    assert status == 400 and codes(payload) == ["INVALID_REQUEST_CONTENT.GMP_ORDER_API"]
    assert payload["errors"]["error"][0]["field"].endswith(field)
    assert emulator.orders[PO]["lines"]["1"]["statuses"] == [
        {"status": "Acknowledged", "amount": 1}
    ]


# -- the order rules -----------------------------------------------------------------
def test_a_cancel_answers_the_updated_order(emulator: WalmartEmulator) -> None:
    status, payload, headers = cancel(emulator, cancel_body(("2", "2"), ("5", "2")))
    assert status == 200
    lines = {line["lineNumber"]: line for line in payload["order"]["orderLines"]["orderLine"]}
    assert lines["2"]["orderLineStatuses"]["orderLineStatus"] == [
        {"status": "Acknowledged", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"}},
        {"status": "Cancelled", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "2"},
         "cancellationReason": "CUSTOMER_REQUESTED_SELLER_TO_CANCEL"},
    ]  # fmt: skip
    assert [s["status"] for s in lines["5"]["orderLineStatuses"]["orderLineStatus"]] == [
        "Cancelled"
    ]
    assert headers["X-Current-Token-Count"] == "59"


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ((("3", "1"),), "0 open (1 Shipped)"),
        ((("4", "1"),), "0 open (1 Cancelled)"),
        ((("6", "2"),), "1 open (1 Acknowledged, 1 Shipped)"),
        ((("2", "4"),), "3 open"),
        ((("99", "1"),), "line number 99 is not on PO"),
        ((("1", "0"),), "amount a whole number"),
    ],
)
def test_lines_that_cannot_be_cancelled_are_refused(
    emulator: WalmartEmulator, lines: tuple[tuple[str, str], ...], why: str
) -> None:
    status, payload, _ = cancel(emulator, cancel_body(*lines))
    assert status == 400 and codes(payload) == ["INVALID_REQUEST_CONTENT.GMP_ORDER_API"]
    assert why in payload["errors"]["error"][0]["description"]


def test_refusals_are_all_or_nothing(emulator: WalmartEmulator) -> None:
    before = json.dumps(emulator.dump_state(), sort_keys=True)
    status, payload, _ = cancel(emulator, cancel_body(("1", "1"), ("3", "1"), ("4", "1")))
    assert status == 400 and len(payload["errors"]["error"]) == 2  # every bad line named
    assert emulator.orders == WalmartEmulator().orders  # line 1 was not cancelled
    assert json.dumps(emulator.dump_state(), sort_keys=True) != before  # only a token more


def test_an_unknown_po_is_404(emulator: WalmartEmulator) -> None:
    status, payload, _ = cancel(emulator, cancel_body(("1", "1")), po="404404")
    assert (status, codes(payload)) == (404, ["CONTENT_NOT_FOUND.GMP_ORDER_API"])


def test_at_most_100_lines(emulator: WalmartEmulator) -> None:
    status, payload, _ = cancel(emulator, cancel_body(*[(str(n), "1") for n in range(101)]))
    assert status == 400 and "1 to 100 order lines" in payload["errors"]["error"][0]["description"]


# -- throttling --------------------------------------------------------------------
def test_more_than_60_cancels_a_minute_are_429(emulator: WalmartEmulator) -> None:
    live = token(emulator)
    for second in range(60):  # refused cancels count too
        assert cancel(emulator, {}, access=live, now=NOW + second)[0] == 400
    status, payload, headers = cancel(emulator, {}, access=live, now=NOW + 59.5)
    assert (status, codes(payload)) == (429, ["REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"])
    assert headers["X-Current-Token-Count"] == "0"
    assert headers["X-Next-Replenishment-Time"] == str(int((NOW + 60) * 1000))
    assert cancel(emulator, {}, access=live, now=NOW + 60)[0] == 400  # the first call left


def test_its_fault_answers_are_walmarts() -> None:
    response = WalmartEmulator().fault_response(Fault("429", retry_after=2))
    assert response is not None and response.status == 429
    assert response.headers["Retry-After"] == "2"
    assert codes(json.loads(response.body)) == ["REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"]
    assert WalmartEmulator().fault_response(Fault("html")) is None


def test_state_survives_a_dump_and_load(emulator: WalmartEmulator) -> None:
    cancel(emulator, cancel_body(("1", "1")))
    other = WalmartEmulator()
    other.load_state(json.loads(json.dumps(emulator.dump_state())))
    assert other.orders == emulator.orders and list(other.tokens) == list(emulator.tokens)
