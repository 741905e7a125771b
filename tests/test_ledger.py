"""The durable ledger, attacked as a careless user or an attacker would (SQLite).

Every conclusion is drawn from what the sandbox emulator actually received (its request
log, or a spy on its dispatch for the command line), not from the ledger's own say-so
alone. The same attacks on PostgreSQL are in tests/test_ledger_postgres.py; the
scenarios both run are in tests/ledgerhelp.py.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from ledgerhelp import (
    cancels,
    claim_race,
    entry_of,
    every_value,
    example,
    key_of,
    ledger_of,
    logged_sandbox,
    migrated_from_version_1,
    newer_is_refused,
    plant_claim,
    race,
    raw_bytes,
    sandbox_client,
    scenario_deduplicating_platform_resends_unknown,
    scenario_died_mid_call,
    scenario_rate_limited_then_sent,
    scenario_same_request_twice,
    scenario_status_updates_the_entry,
    scenario_threads_send_at_once,
    sqlite_path,
    thread_claim_race,
)

from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.hookspecs import hookimpl
from cancelkit.core.ledger import tables
from cancelkit.core.ledger.keys import DERIVED_PREFIX, request_key
from cancelkit.core.ledger.location import sandbox_ledger_path, sqlite_url
from cancelkit.core.ledger.store import Claimed, Ledger
from cancelkit.core.sandbox.emulator import EmuRequest, EmuResponse
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    TransportError,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def ledger_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The real (non-sandbox) ledger of this test: CANCELKIT_LEDGER_URL's file."""
    path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", sqlite_url(path))
    return path


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request any sandbox of this process answers (the command line's included)."""
    seen: list[str] = []
    original = Sandbox.dispatch

    def spy(self: Sandbox, request: EmuRequest) -> tuple[EmuResponse, float]:
        response, delay = original(self, request)
        seen.append(f"{request.method} /{'/'.join(request.segments)} -> {response.status}")
        return response, delay

    monkeypatch.setattr(Sandbox, "dispatch", spy)
    return seen


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def cli_send(request: dict[str, Any] | str, *extra: str) -> Result:
    text = request if isinstance(request, str) else jsonutil.dumps(request)
    return cli("send", "--sandbox", "--json", "-p", "mirakl", *extra, "-", stdin=text)


def rows(path: Path) -> int:
    """How many ledger entries the SQLite file at ``path`` holds (0: no file)."""
    if not path.exists():
        return 0
    with Ledger(sqlite_url(path), migrate_schema=False) as ledger:
        return sum(1 for _ in ledger.entries())


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- 1. the same request twice ---------------------------------------------------------
def test_the_same_request_twice_reaches_the_emulator_once() -> None:
    scenario_same_request_twice(None)


def test_the_key_ignores_key_order_and_number_form_but_not_the_quantity(
    sandbox: Sandbox,
) -> None:
    client = sandbox_client(sandbox)
    base = key_of(client, example("mirakl"), "mirakl")
    written = jsonutil.loads(
        '{"lines": [{"shipping_taxes": [{"amount": "3.0", "code": "ShippingTax1"}],'
        ' "taxes": [{"amount": "1", "code": "Tax1"}], "shipping_price": "8",'
        ' "price": "15.000", "product_id": "10000", "quantity": 1.0,'
        ' "line_id": "0002_3202630-A-1"}], "currency": "USD",'
        ' "reason": "CUSTOMER_REQUEST", "order_id": "0024_COMMERCIAL_ID-A"}'
    )
    assert key_of(client, written, "mirakl") == base
    more = example("mirakl")
    more["lines"][0]["quantity"] = 2
    assert key_of(client, more, "mirakl")[0] != base[0]
    other_order = {**example("mirakl"), "order_id": "0024_COMMERCIAL_ID-B"}
    assert key_of(client, other_order, "mirakl")[0] != base[0]
    # The same request to another platform, or another host, is another key.
    prepared = client.prepare(example("mirakl"), "mirakl")
    assert request_key("mirakl", prepared, "127.0.0.1") == base
    assert request_key("mirakl", prepared, "api.example.com")[0] != base[0]
    assert request_key("mirakl-staging", prepared, "127.0.0.1")[0] != base[0]
    # A user's idempotency_key is the key as given; the fingerprint is still the hash.
    keyed = key_of(client, {**example("mirakl"), "idempotency_key": "order-42-cancel"}, "mirakl")
    assert keyed == ("order-42-cancel", base[1])
    assert base[0] == DERIVED_PREFIX + base[1]


@pytest.mark.parametrize(
    ("fault", "order", "outcome", "code"),
    [
        (None, "0024_COMMERCIAL_ID-A", "accepted", 0),
        (None, "NO-SUCH-ORDER", "rejected", 1),  # refused by the platform: not retryable
        ("500", "0024_COMMERCIAL_ID-A", "unknown", 3),
    ],
)
def test_the_command_line_sends_once_and_repeats_the_first_exit_code(
    received: list[str], fault: str | None, order: str, outcome: str, code: int
) -> None:
    request = {**example("mirakl"), "order_id": order}
    quantity = request["lines"][0]["quantity"]
    first = cli_send(request, *(["--sandbox-fault", fault] if fault else []))
    assert first.exit_code == code, first.output
    assert json.loads(first.stdout)["outcome"] == outcome
    assert len(cancels(received, "mirakl")) == 1
    # The same request again, its JSON keys in another order and 1 written as 1.0.
    text = json.dumps(dict(reversed(list(jsonutil.loads(jsonutil.dumps(request)).items()))))
    second = cli_send(text.replace(f'"quantity": {quantity}', f'"quantity": {quantity}.0'))
    assert second.exit_code == code, second.output
    shown = json.loads(second.stdout)
    assert shown["outcome"] == outcome
    assert any(w.startswith("already sent at ") for w in shown["warnings"]), shown
    assert len(cancels(received, "mirakl")) == 1  # not sent again
    assert "Traceback" not in second.output


def test_the_command_line_sends_another_quantity(received: list[str]) -> None:
    assert cli_send(example("mirakl")).exit_code == 0
    more = example("mirakl")
    more["lines"][0]["quantity"] = 2
    again = cli_send(more)
    assert "already sent" not in again.output
    assert len(cancels(received, "mirakl")) == 2


# -- 2. races ----------------------------------------------------------------------------
def test_eight_processes_claiming_one_key_at_once_one_wins(tmp_path: Path) -> None:
    claim_race(sqlite_url(tmp_path / "race.sqlite3"))


def test_eight_threads_claiming_one_key_at_once_one_wins(tmp_path: Path) -> None:
    thread_claim_race(sqlite_url(tmp_path / "threads.sqlite3"))


def test_eight_clients_sending_at_once_send_once() -> None:
    scenario_threads_send_at_once(None)


def test_an_answer_is_recorded_only_by_the_attempt_that_claimed(tmp_path: Path) -> None:
    with Ledger(sqlite_url(tmp_path / "l.sqlite3")) as ledger:
        first = ledger.claim("k", fingerprint="b" * 64, platform="mirakl", request={})
        assert isinstance(first, Claimed)
        second = ledger.claim(
            "k", fingerprint="b" * 64, platform="mirakl", request={}, may_reclaim=lambda e: True
        )
        assert isinstance(second, Claimed) and second.attempt == 2
        # The first sender comes back late: its answer must not overwrite attempt 2's.
        from cancelkit.core.model import CancelResult

        late = CancelResult(platform="mirakl", outcome="cancelled")
        assert ledger.record(first, late) is False
        assert ledger.release(first, "late") is False
        entry = ledger.get("k")
        assert entry is not None and (entry.attempt, entry.outcome) == (2, "unknown")


# -- 3. died mid-call ------------------------------------------------------------------
def test_a_sender_killed_mid_call_is_unknown_and_not_resent() -> None:
    scenario_died_mid_call(None)


def test_the_command_line_does_not_resend_an_unanswered_claim(
    received: list[str], tmp_path: Path
) -> None:
    # The sandbox state must exist, or its ledger is cleared with the seeded orders.
    warm = cli_send({**example("mirakl"), "idempotency_key": "warm-up"})
    assert warm.exit_code == 0, warm.output
    before = len(cancels(received, "mirakl"))
    state = tmp_path / "sandbox-state.json"
    assert state.exists()
    with (
        logged_sandbox() as (box, _),
        sandbox_client(box) as client,
        Ledger(sqlite_url(sandbox_ledger_path(state))) as ledger,
    ):
        plant_claim(ledger, client, example("mirakl"), "mirakl")
    done = cli("send", "--sandbox", "-p", "mirakl", str(EXAMPLES / "mirakl.json"))
    assert done.exit_code == 3, done.output
    assert "cancelkit ledger resolve" in done.output
    assert "NOT sent again" in done.output
    assert len(cancels(received, "mirakl")) == before


def test_a_deduplicating_platform_resends_an_unanswered_claim() -> None:
    scenario_deduplicating_platform_resends_unknown(None)


def test_an_answered_unknown_is_not_resent_except_where_the_platform_deduplicates() -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        box.inject("500", "mirakl")
        assert client.send(example("mirakl"), "mirakl").outcome == "unknown"
        assert client.send(example("mirakl"), "mirakl").outcome == "unknown"
        assert len(cancels(lines, "mirakl")) == 1
        box.inject("500", "aboutyou", count=2)  # the sender's own safe resend meets one too
        assert client.send(example("aboutyou"), "aboutyou").outcome == "unknown"
        sent = len(cancels(lines, "aboutyou"))
        again = client.send(example("aboutyou"), "aboutyou")
        assert again.outcome in ("accepted", "cancelled")
        assert len(cancels(lines, "aboutyou")) == sent + 1


# -- 4. rate limited, and a failed read --------------------------------------------------
def test_rate_limited_is_recorded_and_sent_again() -> None:
    scenario_rate_limited_then_sent(None)


def test_a_failed_read_before_the_cancel_may_be_sent_again() -> None:
    request = {**example("carriyo"), "scope": "all_pending"}
    request.pop("lines")
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        box.inject("500", "carriyo", count=2)  # the read and its one safe resend
        failed = client.send(request, "carriyo")
        assert failed.outcome == "rejected"
        assert [e.code for e in failed.errors] == ["LOOKUP_FAILED"]
        assert cancels(lines, "carriyo") == []
        entry = entry_of(client, request, "carriyo")
        assert (entry.outcome, entry.answered) == ("rejected", True)
        sent = client.send(request, "carriyo")
        assert sent.outcome == "cancelled" and sent.warnings == ()
        assert len(cancels(lines, "carriyo")) == 1
        assert entry_of(client, request, "carriyo").attempt == 2


def test_a_refusal_that_is_not_retryable_is_held() -> None:
    request = {**example("mirakl"), "order_id": "NO-SUCH-ORDER"}
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        assert client.send(request, "mirakl").outcome == "rejected"
        again = client.send(request, "mirakl")
        assert again.outcome == "rejected" and again.details["ledger"]["held"] is True
        assert len(cancels(lines, "mirakl")) == 1


# -- 5. nothing sent: connection refused -------------------------------------------------
def test_a_refused_connection_releases_the_key_and_a_later_send_goes_out(
    ledger_file: Path,
) -> None:
    with logged_sandbox() as (box, lines):
        settings = {p: dict(s) for p, s in box.client_config().items()}
        dead = {**settings["mirakl"], "base_url": f"http://127.0.0.1:{closed_port()}/api"}
        with Client(config={"mirakl": dead}, sleep=lambda s: None) as client:
            with pytest.raises(TransportError):
                client.send(example("mirakl"), "mirakl")
            entry = entry_of(client, example("mirakl"), "mirakl")
            assert (entry.outcome, entry.answered, entry.attempt) == ("not_sent", True, 1)
            assert entry.note and entry.note.startswith("not sent")
        assert cancels(lines) == []
        assert ledger_file.exists()  # the real ledger, not the sandbox's
        with Client(config={"mirakl": settings["mirakl"]}, sleep=lambda s: None) as client:
            sent = client.send(example("mirakl"), "mirakl")
            assert sent.outcome == "accepted" and sent.warnings == ()
            entry = entry_of(client, example("mirakl"), "mirakl")
            assert (entry.outcome, entry.attempt) == ("accepted", 2)
        assert len(cancels(lines, "mirakl")) == 1


def test_refused_credentials_release_the_key(ledger_file: Path) -> None:
    with logged_sandbox() as (box, lines):
        settings = {p: dict(s) for p, s in box.client_config().items()}
        wrong = {**settings["mirakl"], "client_secret": "not-the-secret"}
        with Client(config={"mirakl": wrong}, sleep=lambda s: None) as client:
            with pytest.raises(AuthenticationError):
                client.send(example("mirakl"), "mirakl")
            assert entry_of(client, example("mirakl"), "mirakl").outcome == "not_sent"
        assert cancels(lines, "mirakl") == []
        with Client(config={"mirakl": settings["mirakl"]}, sleep=lambda s: None) as client:
            assert client.send(example("mirakl"), "mirakl").outcome == "accepted"
        assert len(cancels(lines, "mirakl")) == 1


# -- 6. resend=True ------------------------------------------------------------------------
def test_resend_is_refused_for_an_applied_one_and_sends_an_unknown_one() -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        first = client.send(example("salesforce"), "salesforce")
        assert first.outcome == "cancelled"
        assert client.send(example("salesforce"), "salesforce").details["ledger"]["held"]
        # The ledger knows it was applied: even an explicit resend sends nothing.
        with pytest.raises(InvalidRequestError, match="resend: the ledger holds key"):
            client.send(example("salesforce"), "salesforce", resend=True)
        assert len(cancels(lines, "salesforce")) == 1
        # An unknown one (a 500 after sending) is resent on request, and counted.
        request = {**example("mirakl"), "idempotency_key": "unknown-then-resent"}
        box.inject("500", "mirakl")
        assert client.send(request, "mirakl").outcome == "unknown"
        assert client.send(request, "mirakl").details["ledger"]["held"] is True
        assert len(cancels(lines, "mirakl")) == 1
        forced = client.send(request, "mirakl", resend=True)
        assert forced.outcome == "accepted" and "held" not in forced.details["ledger"]
        assert len(cancels(lines, "mirakl")) == 2
        entry = entry_of(client, request, "mirakl")
        assert entry.attempt == 2
        assert entry.note and entry.note.startswith("attempt 2; before: unknown")


# -- 7. a reused idempotency_key ---------------------------------------------------------
def test_a_reused_idempotency_key_with_another_request_is_refused() -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        keyed = {**example("mirakl"), "idempotency_key": "cancel-0024"}
        assert client.send(keyed, "mirakl").outcome == "accepted"
        other = {**keyed, "lines": [{**keyed["lines"][0], "quantity": 2}]}
        with pytest.raises(InvalidRequestError) as raised:
            client.send(other, "mirakl")
        assert [e.path for e in raised.value.errors] == ["idempotency_key"]
        assert "cancel-0024" in str(raised.value)
        # Not even with resend=True, nor to another platform.
        with pytest.raises(InvalidRequestError):
            client.send(other, "mirakl", resend=True)
        carriyo = {**example("carriyo"), "idempotency_key": "cancel-0024"}
        with pytest.raises(InvalidRequestError, match="idempotency_key"):
            client.send(carriyo, "carriyo")
        assert len(cancels(lines)) == 1
        entry = ledger_of(client).get("cancel-0024")
        assert entry is not None and entry.request["lines"][0]["quantity"] == 1


def test_the_command_line_refuses_a_reused_idempotency_key(received: list[str]) -> None:
    keyed = {**example("mirakl"), "idempotency_key": "cancel-0024"}
    assert cli_send(keyed).exit_code == 0
    other = {**keyed, "order_id": "0024_COMMERCIAL_ID-B"}
    refused = cli("send", "--sandbox", "-p", "mirakl", "-", stdin=jsonutil.dumps(other))
    assert refused.exit_code == 2, refused.output
    assert "idempotency_key" in refused.stderr
    assert len(cancels(received, "mirakl")) == 1


# -- 8. no secret in the ledger ------------------------------------------------------------
#: The sandbox's own credentials, per emulator module, replaced by canaries.
CANARY_CONSTANTS = {
    "mirakl": ("SANDBOX_CLIENT_SECRET",),
    "carriyo": ("SANDBOX_TENANT", "SANDBOX_API_KEY", "SANDBOX_CLIENT_SECRET"),
    "aboutyou": ("SANDBOX_API_KEY",),
    "salesforce": ("SANDBOX_CLIENT_SECRET",),
}
#: The emulator class whose token endpoint takes the platform's SANDBOX_CLIENT_SECRET.
ISSUER = {
    "mirakl": "MiraklEmulator",
    "carriyo": "CarriyoEmulator",
    "salesforce": "SalesforceEmulator",
}
SENT = ("mirakl", "carriyo", "aboutyou", "salesforce", "salesforce-flow")


def canary(name: str) -> str:
    # '+', '/', '=' and '&' make the URL-encoded and base64 forms differ from the raw one.
    return f"CANARY-{name}-s3cr+t/v@l=ue&9"


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sandbox's credentials are canaries (set before a sandbox is made)."""
    values = []
    for platform, names in CANARY_CONSTANTS.items():
        module = importlib.import_module(f"cancelkit.plugins.{platform}.emulator")
        for name in names:
            value = canary(f"{platform}-{name}")
            monkeypatch.setattr(module, name, value)
            if name == "SANDBOX_CLIENT_SECRET":  # the token endpoint keeps its own copy
                issuer = getattr(module, ISSUER[platform]).tokens
                monkeypatch.setattr(issuer, "client_secret", value)
            values.append(value)
    return values


def secret_forms(secrets: list[str], ids: list[str]) -> list[str]:
    """Each secret raw, URL-encoded, JSON-escaped and base64 (alone and as Basic auth)."""
    forms = set()
    for secret in secrets:
        forms |= {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
        forms.add(json.dumps(secret)[1:-1])
        for text in [secret, *(f"{i}:{secret}" for i in ids)]:
            forms.add(base64.b64encode(text.encode()).decode())
            forms.add(base64.urlsafe_b64encode(text.encode()).decode())
    return sorted(forms)


def tokens_issued(box: Sandbox) -> list[str]:
    return [t for e in box.emulators.values() for t in getattr(e, "tokens", ())]


def assert_no_secret(url: str, box: Sandbox, canaries: list[str]) -> None:
    ids = [str(v.get("client_id")) for v in box.client_config().values() if v.get("client_id")]
    forms = secret_forms(canaries + tokens_issued(box), ids)
    values = every_value(url)
    assert any("0024_COMMERCIAL_ID-A" in v for v in values)  # the sends are there
    assert [f for f in forms if any(f in v for v in values)] == []
    raw = raw_bytes(sqlite_path(url))
    assert b"0024_COMMERCIAL_ID-A" in raw
    assert [f for f in forms if f.encode() in raw] == []


def test_no_secret_in_the_sandbox_clients_ledger(canaries: list[str]) -> None:
    with logged_sandbox() as (box, lines):
        assert box.client_config()["mirakl"]["client_secret"] in canaries
        with sandbox_client(box) as client:
            for platform in SENT:
                client.send(example(platform), platform)
            assert len(list(ledger_of(client).entries())) == len(SENT)
        assert len(cancels(lines)) == len(SENT)  # every send reached its emulator
        assert_no_secret(box.ledger_url, box, canaries)


def test_no_secret_in_the_real_ledger(canaries: list[str], ledger_file: Path) -> None:
    with logged_sandbox() as (box, lines):
        settings = {p: dict(s) for p, s in box.client_config().items()}
        with Client(config=settings, sleep=lambda s: None) as client:
            assert not client.sandbox
            for platform in SENT:
                client.send(example(platform), platform)
            box.inject("500", "mirakl")  # an unknown outcome is recorded too
            client.send({**example("mirakl"), "idempotency_key": "k2"}, "mirakl")
        assert len(cancels(lines)) == len(SENT) + 1
        assert_no_secret(sqlite_url(ledger_file), box, canaries)


def test_no_secret_even_when_the_request_quotes_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "CANARYsecret0123456789"
    emulator = importlib.import_module("cancelkit.plugins.mirakl.emulator")
    monkeypatch.setattr(emulator, "SANDBOX_CLIENT_SECRET", secret)
    monkeypatch.setattr(emulator.MiraklEmulator.tokens, "client_secret", secret)  # its endpoint
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        request = {**example("mirakl"), "order_id": secret}  # pasted in the wrong place
        client.send(request, "mirakl")
        assert len(cancels(lines, "mirakl")) == 1
        assert secret not in client.translate(request, "mirakl").url  # masked there
        url = box.ledger_url
        client.close()
        assert [v for v in every_value(url) if secret in v] == []


# -- 9. the sandbox's ledger and the real one never mix -------------------------------------
def test_a_sandbox_client_never_writes_the_real_ledger(
    ledger_file: Path, tmp_path: Path, received: list[str]
) -> None:
    with logged_sandbox() as (box, _), sandbox_client(box) as client:
        assert client.send(example("mirakl"), "mirakl").outcome == "accepted"
        assert sqlite_path(box.ledger_url) != ledger_file
        assert rows(sqlite_path(box.ledger_url)) == 1
    done = cli("send", "--sandbox", "-p", "salesforce", str(EXAMPLES / "salesforce.json"))
    assert done.exit_code == 0, done.output
    assert len(cancels(received, "salesforce")) == 1
    assert rows(sandbox_ledger_path(tmp_path / "sandbox-state.json")) == 1
    assert rows(ledger_file) == 0
    assert not (tmp_path / "xdg-data").exists()  # nor the default ledger


def test_a_sandbox_client_ignores_a_broken_real_ledger_url(
    monkeypatch: pytest.MonkeyPatch, received: list[str]
) -> None:
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", "mysql://nobody@127.0.0.1/none")
    with logged_sandbox() as (box, _), sandbox_client(box) as client:
        assert client.send(example("mirakl"), "mirakl").outcome == "accepted"
    assert cli("send", "--sandbox", "-p", "mirakl", str(EXAMPLES / "mirakl.json")).exit_code == 0
    assert len(cancels(received, "mirakl")) == 2


def test_a_real_client_never_writes_the_sandbox_ledger(ledger_file: Path) -> None:
    with logged_sandbox() as (box, lines):
        settings = {p: dict(s) for p, s in box.client_config().items()}
        with Client(config=settings, sleep=lambda s: None) as client:
            assert client.send(example("mirakl"), "mirakl").outcome == "accepted"
        assert rows(ledger_file) == 1
        assert rows(sqlite_path(box.ledger_url)) == 0
        # ... and what the real ledger holds does not stop a sandbox send.
        with sandbox_client(box) as client:
            assert "held" not in client.send(example("mirakl"), "mirakl").details["ledger"]
        assert len(cancels(lines, "mirakl")) == 2


# -- 10. schema versions ----------------------------------------------------------------------
def test_a_version_1_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    migrated_from_version_1(sqlite_url(tmp_path / "old.sqlite3"))


def test_a_ledger_newer_than_the_code_is_refused_and_not_altered(tmp_path: Path) -> None:
    newer_is_refused(sqlite_url(tmp_path / "newer.sqlite3"))


def test_a_ledger_newer_than_the_code_is_a_configuration_error_on_the_command_line(
    ledger_file: Path,
) -> None:
    newer_is_refused(sqlite_url(ledger_file))
    done = cli("send", "-p", "mirakl", str(EXAMPLES / "mirakl.json"))
    assert done.exit_code == 4, done.output
    assert "upgrade cancelkit" in done.stderr and "Traceback" not in done.output


def test_eight_processes_opening_a_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fresh" / "ledger.sqlite3")
    answers = race(url, mode="open")
    assert answers == [{"version": tables.LATEST}] * 8
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(tables.schema_version.c.version)).all() == [
            (tables.LATEST,)
        ]
    engine.dispose()


# -- 11. status ---------------------------------------------------------------------------------
def test_a_final_status_updates_the_entry_and_its_replay(sleeps: Any) -> None:
    scenario_status_updates_the_entry(None, sleeps)


# -- 13. bad ledger URLs -----------------------------------------------------------------------
PASSWORD = "hunter2-pw"


def bad_urls(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "not-a-db.sqlite3").write_text("this is not a database, just text\n" * 200)
    port = closed_port()
    return {
        "mysql": "mysql://x",
        "in-memory": "sqlite://",
        "in-memory-named": "sqlite:///:memory:",
        "garbage": "garbage text",
        "not-a-database": sqlite_url(tmp_path / "not-a-db.sqlite3"),
        "uncreatable-directory": sqlite_url(tmp_path / "a-file" / "sub" / "ledger.sqlite3"),
        "postgres-closed-port": f"postgresql://cancelkit:{PASSWORD}@127.0.0.1:{port}/ledger",
        "postgres-bad-port": f"postgresql://cancelkit:{PASSWORD}@127.0.0.1:54x2/ledger",
        "unparseable-with-password": f"postgres ql://cancelkit:{PASSWORD}@db.example/ledger",
        "driver-not-installed": sqlite_url(tmp_path / "x.sqlite3").replace(
            "sqlite:", "sqlite+pysqlcipher:"
        ),
    }


BAD_URL_CASES = [
    "mysql",
    "in-memory",
    "in-memory-named",
    "garbage",
    "not-a-database",
    "postgres-closed-port",
    "uncreatable-directory",
    "postgres-bad-port",
    "unparseable-with-password",
    "driver-not-installed",
]


@pytest.mark.parametrize("case", BAD_URL_CASES)
def test_a_bad_ledger_url_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    url = bad_urls(tmp_path)[case]
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", url)
    done = cli("send", "-p", "mirakl", str(EXAMPLES / "mirakl.json"))
    assert "Traceback" not in done.output
    assert "internal error" not in done.output
    assert PASSWORD not in done.output
    assert done.exit_code == 4, done.output
    assert "ledger" in done.stderr
    with pytest.raises(ConfigurationError) as raised:
        Ledger(url)
    assert PASSWORD not in str(raised.value)


def test_an_empty_ledger_url_in_the_config_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CANCELKIT_LEDGER_URL")
    config = tmp_path / "xdg-config" / "cancelkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[default]\nledger_url = "  "\n')
    done = cli("send", "-p", "mirakl", str(EXAMPLES / "mirakl.json"))
    assert done.exit_code == 4, done.output
    assert "ledger_url" in done.stderr and "Traceback" not in done.output
    config.write_text('[default]\nledger_url = "mysql://x"\n')
    done = cli("send", "-p", "mirakl", str(EXAMPLES / "mirakl.json"))
    assert done.exit_code == 4, done.output


# -- the key is never freed, nor held, on the wrong evidence ---------------------
@pytest.mark.parametrize("error", [ConfigurationError, TransportError, AuthenticationError])
def test_an_error_raised_after_the_cancel_went_out_never_frees_the_key(
    error: type[Exception],
) -> None:
    class Audit:
        @hookimpl
        def cancelkit_after_result(self, result: Any, call: Any, adapter: Any) -> None:
            raise error("audit sink not reachable")

    with logged_sandbox() as (box, lines):
        with sandbox_client(box) as client:
            client.registry.register(Audit(), "audit")
            with pytest.raises(error):
                client.send(example("mirakl"), "mirakl")
        assert len(cancels(lines, "mirakl")) == 1  # it went out, and was applied
        assert len(box.emulators["mirakl"].actions) == 1
        with sandbox_client(box) as client:
            client.send(example("mirakl"), "mirakl")
        assert len(cancels(lines, "mirakl")) == 1  # never twice


def test_a_request_refused_after_its_read_is_not_held_as_unknown() -> None:
    request = {
        "order_id": "ORD-1001",
        "fulfillment_order_id": "FO-NOT-THERE",
        "scope": "all_pending",
        "reason": "CUSTOMER_REQUEST",
    }
    with logged_sandbox() as (box, lines), sandbox_client(box) as client:
        with pytest.raises(InvalidRequestError):
            client.send(request, "carriyo")
        reads = [line for line in lines if line.startswith("GET /carriyo/orders/")]
        assert len(reads) == 1 and cancels(lines, "carriyo") == []  # nothing but the read
        assert not entry_of(client, request, "carriyo").in_flight
        with pytest.raises(InvalidRequestError):  # read again, refused again: not "unknown"
            client.send(request, "carriyo")


# -- the ledger of a client is closed with it ----------------------------------------------------
@pytest.fixture
def fresh_client(sandbox: Sandbox) -> Iterator[Client]:
    client = sandbox_client(sandbox)
    yield client
    client.close()


def test_a_closed_client_reopens_its_ledger_and_still_holds_the_key(
    fresh_client: Client, received: list[str]
) -> None:
    assert fresh_client.send(example("mirakl"), "mirakl").outcome == "accepted"
    fresh_client.close()
    again = fresh_client.send(example("mirakl"), "mirakl")
    assert again.details["ledger"]["held"] is True
    assert len(cancels(received, "mirakl")) == 1


def test_a_password_in_the_url_query_is_masked_too() -> None:
    # libpq reads ?password= as well as user:password@: neither may be printed.
    with pytest.raises(ConfigurationError) as caught:
        Ledger("postgresql://bob@127.0.0.1:1/db?password=S3cretPw&sslpassword=Other5ecret")
    message = str(caught.value)
    assert "S3cretPw" not in message and "Other5ecret" not in message
    assert "password=***" in message
