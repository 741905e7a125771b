"""A claim whose call never left: sent by the next sender, and by exactly one of two.

The ledger marks a claim as leaving just before its cancel's bytes go (``left_at``,
after the rate limiter and the token). A sender killed before that point (waiting for
its turn under a platform's rate limit, say) leaves a claim that provably sent nothing:
a redelivered task or a rerun sends it, instead of leaving it ``unknown`` forever.
Taking such a claim over races with its first sender waking up: of the two, exactly
one may send. Every conclusion is read off the sandbox emulator's request log. Each
attack runs on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from ledgerhelp import (
    SUBPROCESS_TIMEOUT,
    cancels,
    entry_of,
    example,
    key_of,
    ledger_of,
    logged_sandbox,
    plant_claim,
    sandbox_client,
)

from cancelkit.core import jsonutil
from cancelkit.core.ledger import tables
from cancelkit.core.ledger.location import engine_url, sqlite_url
from cancelkit.core.ledger.store import Claimed, Held, Ledger
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.plugins.mirakl.adapter import MiraklConnectAdapter

MIRAKL = example("mirakl")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh ledger on SQLite, then on a real PostgreSQL server."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "ledger.sqlite3")
    url: str = request.getfixturevalue("postgres_url")
    return url


class _Turnstile:
    """A rate limiter whose first caller waits until released; later callers pass.
    Like every limiter, it pauses through the ``sleep`` it is given."""

    def __init__(self) -> None:
        self.first_waiting = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._callers = 0

    def acquire(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        with self._lock:
            self._callers += 1
            first = self._callers == 1
        if first:
            sleep(0.0)  # the sender's pause: the ledger hears the call waits
            self.first_waiting.set()
            assert self.release.wait(30), "the test never released the first sender"
        return 0.0


@pytest.fixture
def turnstile(monkeypatch: pytest.MonkeyPatch) -> _Turnstile:
    """Mirakl given a client-side rate limit whose first send waits for the test."""
    gate = _Turnstile()
    monkeypatch.setattr(MiraklConnectAdapter, "rate_limiter", lambda self, call, settings: gate)
    return gate


def test_a_claim_that_never_left_is_sent_by_the_next_send(ledger_url: str) -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box, ledger=ledger_url) as client:
        plant_claim(ledger_of(client), client, MIRAKL, "mirakl", left=False)
        listed = entry_of(client, MIRAKL, "mirakl")
        assert listed.in_flight and listed.never_left
        result = client.send(MIRAKL, "mirakl")
        assert result.outcome == "accepted", result
        assert len(cancels(lines, "mirakl")) == 1
        entry = entry_of(client, MIRAKL, "mirakl")
        assert (entry.attempt, entry.answered, entry.outcome) == (2, True, "accepted")
        assert entry.left_at is not None
        held = client.send(MIRAKL, "mirakl")  # now it has left: held, never sent again
        assert held.details["ledger"]["held"] is True
        assert len(cancels(lines, "mirakl")) == 1


def test_a_claim_whose_call_left_stays_unknown(ledger_url: str) -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box, ledger=ledger_url) as client:
        plant_claim(ledger_of(client), client, MIRAKL, "mirakl", left=True)
        again = client.send(MIRAKL, "mirakl")
        assert again.outcome == "unknown" and "NOT sent again" in again.message
        assert cancels(lines, "mirakl") == []


def test_of_two_senders_racing_for_a_waiting_claim_exactly_one_sends(
    ledger_url: str, turnstile: _Turnstile
) -> None:
    """A holds the claim and waits for its turn; B finds it never left and takes it
    over, sends; A wakes up and must not send (its claim is gone)."""
    with logged_sandbox() as (box, lines):
        outcome: dict[str, Any] = {}
        with sandbox_client(box, ledger=ledger_url) as first:

            def send_first() -> None:
                outcome["first"] = first.send(MIRAKL, "mirakl")

            thread = threading.Thread(target=send_first)
            thread.start()
            try:
                assert turnstile.first_waiting.wait(30)
                with sandbox_client(box, ledger=ledger_url) as second:
                    taken = second.send(MIRAKL, "mirakl")
                    assert taken.outcome == "accepted", taken
                    assert len(cancels(lines, "mirakl")) == 1
            finally:
                turnstile.release.set()
                thread.join(30)
        late = outcome["first"]
        assert len(cancels(lines, "mirakl")) == 1  # the first sender sent nothing
        assert late.details["ledger"]["held"] is True
        assert late.outcome == "accepted"  # what the second sender recorded
        with sandbox_client(box, ledger=ledger_url) as client:
            entry = entry_of(client, MIRAKL, "mirakl")
        assert (entry.attempt, entry.outcome, entry.answered) == (2, "accepted", True)


def test_a_take_over_loses_to_a_sender_that_left_meanwhile(ledger_url: str) -> None:
    """The other order of the race: B reads the claim as never left, but A leaves before
    B's take-over is written. B must not take it (A's call is out): held, unknown."""
    with Ledger(ledger_url) as ledger:
        mine = ledger.claim("race", fingerprint="a" * 64, platform="mirakl", request={})
        assert isinstance(mine, Claimed)

        seen: list[bool] = []

        def decide(existing: Any) -> bool:
            seen.append(existing.never_left)
            if len(seen) == 1:  # A's bytes go now, between B's read and B's write
                assert ledger.leave(mine)
            return bool(existing.never_left)

        theirs = ledger.claim(
            "race", fingerprint="a" * 64, platform="mirakl", request={}, may_reclaim=decide
        )
        # B looked again and found the call left: a held claim, not a second sender.
        assert seen == [True, False]
        assert isinstance(theirs, Held)
        assert theirs.entry.attempt == 1 and theirs.entry.left_at is not None


def test_a_claim_resolved_by_hand_while_waiting_is_not_sent(
    ledger_url: str, turnstile: _Turnstile
) -> None:
    with logged_sandbox() as (box, lines), sandbox_client(box, ledger=ledger_url) as client:
        outcome: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: outcome.setdefault("result", client.send(MIRAKL, "mirakl"))
        )
        thread.start()
        try:
            assert turnstile.first_waiting.wait(30)
            key = key_of(client, MIRAKL, "mirakl")[0]
            with Ledger(ledger_url) as other:
                other.resolve(key, "cancelled", "checked on Mirakl by hand")
        finally:
            turnstile.release.set()
            thread.join(30)
        assert cancels(lines, "mirakl") == []
        assert outcome["result"].outcome == "cancelled"
        assert outcome["result"].details["ledger"]["held"] is True


# A sender in its own process, SIGKILLed while its send waits for the platform's rate
# limit: its claim is in the ledger, its call never left.
WAITER = r"""
import json, sys, time
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.sandbox.isolation import SandboxConfig
from cancelkit.plugins.mirakl.adapter import MiraklConnectAdapter

class Limit:  # the platform's limit is spent: this send waits for its turn
    def acquire(self, clock, sleep):
        sleep(0.0)  # through the sender's pause, as every limiter waits
        print("waiting", flush=True)
        time.sleep(600)
        return 600.0

MiraklConnectAdapter.rate_limiter = lambda self, call, settings: Limit()
config = SandboxConfig(json.loads(sys.argv[1]))
config.ledger_url = sys.argv[2]
with Client(config=config) as client:
    client.send(jsonutil.loads(sys.argv[3]), "mirakl")
"""


def _killed_while_waiting(box: Sandbox, ledger_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WAITER, json.dumps(dict(box.client_config())), ledger_url,
         jsonutil.dumps(MIRAKL)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        line = process.stdout.readline()
        assert line == b"waiting\n", process.communicate()[1].decode()
        assert time.monotonic() < deadline
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def test_a_sender_killed_while_waiting_for_the_rate_limit_loses_no_cancel(
    ledger_url: str,
) -> None:
    with logged_sandbox() as (box, lines):
        _killed_while_waiting(box, ledger_url)
        assert cancels(lines, "mirakl") == []
        with sandbox_client(box, ledger=ledger_url) as client:
            dead = entry_of(client, MIRAKL, "mirakl")
            assert dead.never_left  # claimed by the killed process, nothing left
            result = client.send(MIRAKL, "mirakl")
            assert result.outcome == "accepted", result
            assert len(cancels(lines, "mirakl")) == 1
            assert client.send(MIRAKL, "mirakl").details["ledger"]["held"] is True
            assert len(cancels(lines, "mirakl")) == 1


@pytest.fixture
def version_2_ledger(ledger_url: str) -> Iterator[str]:
    """A ledger at schema version 2 (before ``left_at``) holding a claim with no answer."""
    engine = sa.create_engine(engine_url(ledger_url))
    try:
        assert tables.migrate(engine, target=2) == 2
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO cancelkit_ledger (key, fingerprint, platform, outcome, "
                    "answered, attempt, request, claimed_by, claimed_at, updated_at) VALUES "
                    "('old-claim', :fp, 'mirakl', 'unknown', :no, 1, '{}', 'old:1', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"fp": "d" * 64, "no": False},
            )
    finally:
        engine.dispose()
    yield ledger_url


def test_claims_made_before_the_marker_existed_count_as_sent(version_2_ledger: str) -> None:
    """Upgrading must not turn an old unanswered claim (whose call may have left) into
    one that a new sender takes over and sends a second time."""
    with Ledger(version_2_ledger) as ledger:
        old = ledger.get("old-claim")
        assert old is not None and old.in_flight and not old.never_left
        held = ledger.claim(
            "old-claim",
            fingerprint="d" * 64,
            platform="mirakl",
            request={},
            may_reclaim=lambda entry: bool(entry.never_left),
        )
        assert isinstance(held, Held)


def test_a_claim_counts_as_leaving_until_it_is_held_back_for_a_wait(ledger_url: str) -> None:
    """The usual path is one durable write: claimed as leaving. Only a wait (hold) makes
    the claim one another sender may take, and the first must then leave again."""
    with Ledger(ledger_url) as ledger:
        mine = ledger.claim("k", fingerprint="e" * 64, platform="mirakl", request={}, leaving=True)
        assert isinstance(mine, Claimed)
        entry = ledger.get("k")
        assert entry is not None and entry.in_flight and not entry.never_left

        def taken(existing: Any) -> bool:
            return bool(existing.never_left)

        held = ledger.claim("k", fingerprint="e" * 64, platform="mirakl", request={},
                            may_reclaim=taken)  # fmt: skip
        assert isinstance(held, Held)  # it may be on the wire: never taken over
        assert ledger.hold(mine)  # it waits for the rate limiter
        theirs = ledger.claim("k", fingerprint="e" * 64, platform="mirakl", request={},
                              may_reclaim=taken, leaving=True)  # fmt: skip
        assert isinstance(theirs, Claimed) and theirs.attempt == 2
        assert not ledger.leave(mine)  # the first sender wakes up: not its claim now
        assert not ledger.hold(mine)
        now = ledger.get("k")
        assert now is not None and now.attempt == 2 and not now.never_left


def test_a_sender_whose_claim_was_taken_over_is_not_told_to_check_the_platform(
    ledger_url: str,
) -> None:
    """Nothing left for it: the advice is to look again, not to settle it by hand."""
    from cancelkit.core import once
    from cancelkit.core.schemas import load_request

    with Ledger(ledger_url) as ledger:
        ledger.claim("k", fingerprint="f" * 64, platform="mirakl", request={})
        waiting = ledger.get("k")
        assert waiting is not None and waiting.never_left
        told = once.held_result(waiting, load_request(MIRAKL))
        assert told.outcome == "unknown" and "ledger resolve" not in told.message
        assert "not sent by this sender" in told.message
        claim = ledger.claim(
            "k", fingerprint="f" * 64, platform="mirakl", request={},
            may_reclaim=lambda entry: True, leaving=True,
        )  # fmt: skip
        assert isinstance(claim, Claimed)
        left = ledger.get("k")
        assert left is not None
        assert "ledger resolve k" in once.held_result(left, load_request(MIRAKL)).message
