"""The ledger's attacks again on a real PostgreSQL server (tests/pgserver.py): the same
scenarios as tests/test_ledger.py runs on SQLite (tests/ledgerhelp.py), one code path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from ledgerhelp import (
    cancels,
    claim_race,
    entry_of,
    every_value,
    example,
    logged_sandbox,
    migrated_from_version_1,
    newer_is_refused,
    race,
    sandbox_client,
    scenario_deduplicating_platform_resends_unknown,
    scenario_died_mid_call,
    scenario_rate_limited_then_sent,
    scenario_same_request_twice,
    scenario_status_updates_the_entry,
    scenario_threads_send_at_once,
    thread_claim_race,
)

from cancelkit.cli import main
from cancelkit.core.client import Client
from cancelkit.core.ledger import tables
from cancelkit.core.ledger.location import engine_url
from cancelkit.core.ledger.store import Ledger

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def bare(url: str, scheme: str = "postgresql://") -> str:
    """``url`` without the driver: what a person writes."""
    assert url.startswith("postgresql+psycopg://"), url
    return scheme + url[len("postgresql+psycopg://") :]


def test_the_same_request_twice_reaches_the_emulator_once(postgres_url: str) -> None:
    scenario_same_request_twice(postgres_url)


def test_a_sender_killed_mid_call_is_unknown_and_not_resent(postgres_url: str) -> None:
    scenario_died_mid_call(postgres_url)


def test_a_deduplicating_platform_resends_an_unanswered_claim(postgres_url: str) -> None:
    scenario_deduplicating_platform_resends_unknown(postgres_url)


def test_rate_limited_is_recorded_and_sent_again(postgres_url: str) -> None:
    scenario_rate_limited_then_sent(postgres_url)


def test_eight_processes_claiming_one_key_at_once_one_wins(postgres_url: str) -> None:
    claim_race(postgres_url)


def test_eight_threads_claiming_one_key_at_once_one_wins(postgres_url: str) -> None:
    thread_claim_race(postgres_url)


def test_eight_clients_sending_at_once_send_once(postgres_url: str) -> None:
    scenario_threads_send_at_once(postgres_url)


def test_a_final_status_updates_the_entry_and_its_replay(postgres_url: str, sleeps: Any) -> None:
    scenario_status_updates_the_entry(postgres_url, sleeps)


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_a_url_without_the_driver_works(postgres_url: str, scheme: str) -> None:
    url = bare(postgres_url, scheme)
    assert engine_url(url) == postgres_url
    with logged_sandbox() as (box, lines):
        for _ in range(2):
            with sandbox_client(box, ledger=url) as client:
                client.send(example("mirakl"), "mirakl")
                assert client.ledger is not None and client.ledger.engine.dialect.name == (
                    "postgresql"
                )
        assert len(cancels(lines, "mirakl")) == 1
    with Ledger(postgres_url) as ledger:
        assert [e.outcome for e in ledger.entries()] == ["accepted"]


def test_the_environment_names_a_postgresql_ledger(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", bare(postgres_url))
    with logged_sandbox() as (box, lines):
        settings = {p: dict(s) for p, s in box.client_config().items()}
        for _ in range(2):
            with Client(config=settings, sleep=lambda s: None) as client:  # a real client
                client.send(example("mirakl"), "mirakl")
        assert len(cancels(lines, "mirakl")) == 1
        with Client(config=settings) as client:
            entry = entry_of(client, example("mirakl"), "mirakl")
            assert entry.outcome == "accepted"
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_no_secret_in_a_postgresql_ledger(postgres_url: str) -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box, ledger=postgres_url) as client:
        for platform in ("mirakl", "carriyo", "aboutyou", "salesforce"):
            client.send(example(platform), platform)
        secrets = [
            value
            for settings in box.client_config().values()
            for name, value in settings.items()
            if name in ("client_secret", "api_key", "tenant_id", "access_token")
        ]
        secrets += [t for e in box.emulators.values() for t in getattr(e, "tokens", ())]
        assert len(secrets) >= 5
        values = every_value(postgres_url)
        assert any("0024_COMMERCIAL_ID-A" in v for v in values)
        assert [s for s in secrets if any(s in v for v in values)] == []
        assert len(cancels(lines)) == 4


def test_a_version_1_ledger_is_migrated_and_keeps_its_rows(postgres_url: str) -> None:
    migrated_from_version_1(postgres_url)


def test_a_ledger_newer_than_the_code_is_refused_and_not_altered(postgres_url: str) -> None:
    newer_is_refused(postgres_url)


def test_eight_processes_opening_a_new_ledger_at_once_all_succeed(postgres_url: str) -> None:
    answers = race(postgres_url, mode="open")
    assert answers == [{"version": tables.LATEST}] * 8
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        versions = connection.execute(sa.select(tables.schema_version.c.version)).all()
    engine.dispose()
    assert versions == [(tables.LATEST,)]


def test_a_postgresql_ledger_on_a_closed_port_is_exit_4_without_the_password(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, postgres_server: Any
) -> None:
    # The server is real; a database that does not exist on it is refused by the server.
    url = bare(postgres_url).replace("@", ":s3cret-pw@", 1).rsplit("/", 1)[0] + "/no_such_db"
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", url)
    done = CliRunner().invoke(
        main, ["send", "--json", "-p", "mirakl", str(EXAMPLES / "mirakl.json")]
    )
    assert done.exit_code == 4, done.output
    error = json.loads(done.stderr)["error"]
    assert error["kind"] == "ConfigurationError"
    assert "no_such_db" in error["message"]
    assert "s3cret-pw" not in done.output


def test_a_ledger_server_that_does_not_answer_is_an_outage_not_a_mistake(
    postgres_url: str,
) -> None:
    """A worker retries an outage (nothing was sent) but not a wrong setting: the two
    must come out as different errors, both exit 4."""
    from pgserver import free_port

    from cancelkit.errors import ConfigurationError, ServiceUnavailableError

    nobody_there = bare(postgres_url).rsplit("@", 1)[0] + f"@127.0.0.1:{free_port()}/ledger"
    with pytest.raises(ServiceUnavailableError, match="cannot be used") as down:
        Ledger(nobody_there)
    assert down.value.exit_code == 4
    no_database = bare(postgres_url).rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(ConfigurationError) as wrong:
        Ledger(no_database)
    assert not isinstance(wrong.value, ServiceUnavailableError)
