"""The sending rules, end to end against the sandbox: retries, auth, unknown outcomes."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import cancelkit
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.sending import RetryPolicy
from cancelkit.errors import AuthenticationError, TransportError
from cancelkit.plugins.mirakl.emulator import SANDBOX_CLIENT_SECRET


@pytest.fixture
def logged():
    """A sandbox that logs every request it answers."""
    lines: list[str] = []
    with Sandbox(cancelkit.PluginRegistry().emulators(), log=lines.append) as box:
        yield box, lines


def client_for(box: Sandbox, sleeps: Any = None, **overrides: str) -> Client:
    config = box.client_config()
    config["mirakl"].update(overrides)
    return Client(config=config, env={}, sleep=sleeps or (lambda s: None))


def cancels(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("POST /mirakl/api/")]


def tokens(lines: list[str]) -> list[str]:
    return [line for line in lines if "/oauth/token" in line]


def test_send_then_wait_cancels_and_the_order_changes(sandbox, sandbox_client, example) -> None:
    result = sandbox_client.send(example("mirakl"), "mirakl")
    assert result.outcome == "accepted"
    final = sandbox_client.wait(result)
    assert final.outcome == "cancelled"
    order = sandbox.emulators["mirakl"].orders["0024_COMMERCIAL_ID-A"]
    assert order["lines"]["0002_3202630-A-1"]["quantity"] == 1  # 2 - 1


def test_429_is_retried_honouring_retry_after(logged, sleeps, example) -> None:
    box, lines = logged
    box.inject("429", retry_after=3)
    result = client_for(box, sleeps).send(example("mirakl"), "mirakl")
    assert result.outcome == "accepted"
    assert sleeps.calls == [3.0]
    assert len(cancels(lines)) == 2


def test_429_retries_are_bounded(logged, sleeps, example) -> None:
    box, lines = logged
    box.inject("429", retry_after=1, count=10)
    result = client_for(box, sleeps).send(example("mirakl"), "mirakl")
    assert (result.outcome, result.errors[0].code, result.retry_after) == (
        "rejected",
        "RATE_LIMITED",
        1.0,
    )
    assert result.retryable  # nothing was cancelled; the same cancel may go out later
    assert result.to_dict()["errors"][0]["retryable"] is True  # and the JSON says so
    assert len(cancels(lines)) == RetryPolicy().max_retries + 1
    assert sleeps.calls == [1.0] * RetryPolicy().max_retries


def test_429_with_a_long_retry_after_is_reported_not_waited(logged, sleeps, example) -> None:
    box, lines = logged
    box.inject("429", retry_after=3600)
    result = client_for(box, sleeps).send(example("mirakl"), "mirakl")
    assert (result.outcome, result.retry_after) == ("rejected", 3600.0)
    assert sleeps.calls == []
    assert len(cancels(lines)) == 1


def test_503_with_retry_after_is_retried(logged, sleeps, example) -> None:
    box, lines = logged
    box.inject("503", retry_after=2)
    assert client_for(box, sleeps).send(example("mirakl"), "mirakl").outcome == "accepted"
    assert sleeps.calls == [2.0]
    assert len(cancels(lines)) == 2


@pytest.mark.parametrize("fault", ["500", "html", "malformed"])
def test_server_errors_and_unreadable_answers_are_unknown_and_never_resent(
    logged, example, fault: str
) -> None:
    box, lines = logged
    box.inject(fault)
    result = client_for(box).send(example("mirakl"), "mirakl")
    assert result.outcome == "unknown"
    assert "NOT resent" in result.message
    assert len(cancels(lines)) == 1


def test_a_timeout_after_sending_is_unknown_and_never_resent(logged, example) -> None:
    box, lines = logged
    box.inject("slow", delay=1.0)
    result = client_for(box, timeout="0.3").send(example("mirakl"), "mirakl")
    assert result.outcome == "unknown"
    assert "no answer within 0.3 s" in result.message
    assert len(cancels(lines)) == 1
    # The emulator did apply it: exactly why a resend would have been wrong.
    assert len(box.emulators["mirakl"].actions) == 1


def test_token_is_fetched_once_and_reused(logged, example) -> None:
    box, lines = logged
    client = client_for(box)
    client.send(example("mirakl"), "mirakl")
    # Another request (its own key: the ledger would hold a repeat of the first).
    client.send({**example("mirakl"), "idempotency_key": "second"}, "mirakl")
    assert len(tokens(lines)) == 1
    assert len(cancels(lines)) == 2


def test_401_refreshes_the_token_once_and_resends(logged, example) -> None:
    box, lines = logged
    box.inject("401")
    result = client_for(box).send(example("mirakl"), "mirakl")
    assert result.outcome == "accepted"
    assert len(tokens(lines)) == 2
    assert len(cancels(lines)) == 2


def test_a_second_401_is_an_authentication_error(logged, example) -> None:
    box, lines = logged
    box.inject("401", count=2)
    with pytest.raises(AuthenticationError, match="HTTP 401"):
        client_for(box).send(example("mirakl"), "mirakl")
    assert len(cancels(lines)) == 2


def test_token_is_refreshed_shortly_before_it_expires(logged, example) -> None:
    box, lines = logged
    now = [1000.0]
    client = Client(config=box.client_config(), env={}, clock=lambda: now[0])
    client.send(example("mirakl"), "mirakl")
    now[0] += 3599 - 61  # still inside the lifetime less the safety margin
    client.send({**example("mirakl"), "idempotency_key": "second"}, "mirakl")
    assert len(tokens(lines)) == 1
    now[0] += 2
    client.send({**example("mirakl"), "idempotency_key": "third"}, "mirakl")
    assert len(tokens(lines)) == 2


def test_refused_client_credentials_are_an_auth_error_without_the_secret(logged, example) -> None:
    box, lines = logged
    wrong = "wrong-but-real-looking-secret-123"
    with pytest.raises(AuthenticationError) as caught:
        client_for(box, client_secret=wrong).send(example("mirakl"), "mirakl")
    assert "invalid_client" in str(caught.value)
    assert wrong not in str(caught.value)
    assert cancels(lines) == []
    assert caught.value.exit_code == 4


def test_an_access_token_given_directly_is_used_as_is(logged, example) -> None:
    box, lines = logged
    with pytest.raises(AuthenticationError):
        client_for(box, access_token="not-a-sandbox-token").send(example("mirakl"), "mirakl")
    assert tokens(lines) == []  # no OAuth round trip, and a static token cannot refresh
    assert len(cancels(lines)) == 1


def test_nothing_listening_is_a_transport_error_saying_nothing_was_sent(example) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Client(
        config={"mirakl": {"base_url": f"http://127.0.0.1:{port}/api", "access_token": "t"}}, env={}
    )
    with pytest.raises(TransportError, match="nothing was sent"):
        client.send(example("mirakl"), "mirakl")


def test_sandbox_token_endpoint_is_not_hit_by_faults(logged, example) -> None:
    box, lines = logged
    box.inject("500")
    result = client_for(box).send(example("mirakl"), "mirakl")
    assert tokens(lines) == ["POST /mirakl/auth/oauth/token -> 200"]
    assert result.outcome == "unknown"


def test_client_secret_is_never_in_a_result(sandbox_client, example) -> None:
    result = sandbox_client.send(example("mirakl"), "mirakl")
    assert SANDBOX_CLIENT_SECRET not in repr(result)
    assert SANDBOX_CLIENT_SECRET not in repr(sandbox_client.settings("mirakl"))
