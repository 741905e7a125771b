"""Core paces status calls where a platform limits them per tracking id.

Mirakl allows one ``GET /v2/orders/actions/{action_id}`` a minute per action; a
client that polls faster, or retries a refused poll sooner, is itself refused. The
rule lives in core (``Capabilities.status_interval``), so it holds for every
caller: ``status`` twice, ``wait``, and retries after 429 or 5xx.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import cancelkit
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.plugins.mirakl.adapter import MiraklConnectAdapter

GAP = 60.0


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mirakl with a one-a-minute status limit, whatever the plugin itself declares."""
    caps = dataclasses.replace(MiraklConnectAdapter.capabilities, status_interval=GAP)
    monkeypatch.setattr(MiraklConnectAdapter, "capabilities", caps)


@pytest.fixture
def logged() -> Iterator[tuple[Sandbox, list[str]]]:
    lines: list[str] = []
    with Sandbox(cancelkit.PluginRegistry().emulators(), log=lines.append) as box:
        yield box, lines


def status_calls(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("GET /mirakl/api/v2/orders/actions/")]


def on_virtual_time(box: Sandbox, sleeps: Any, *, advance_sandbox: bool = True) -> Client:
    """A client whose sleeps are recorded and move its clock (and the sandbox's)."""
    if advance_sandbox:
        sleeps.follow(box.advance)
    return Client(config=box.client_config(), env={}, sleep=sleeps, clock=sleeps.clock)


def accepted(client: Client, example: Any) -> cancelkit.CancelResult:
    # A key of its own each time: the ledger would hold a repeat of the same request.
    result = client.send({**example("mirakl"), "idempotency_key": uuid.uuid4().hex}, "mirakl")
    assert result.outcome == "accepted" and result.tracking_id
    return result


@pytest.mark.usefixtures("paced")
def test_a_second_status_within_the_interval_waits_out_the_rest(
    logged: tuple[Sandbox, list[str]], sleeps: Any, example: Any
) -> None:
    box, lines = logged
    client = on_virtual_time(box, sleeps)
    result = accepted(client, example)
    client.status("mirakl", result.tracking_id)
    sleeps(15)  # the caller lets 15 s pass, then asks again
    client.status("mirakl", result.tracking_id)
    assert sleeps.calls == [15, GAP - 15]
    assert len(status_calls(lines)) == 2


@pytest.mark.usefixtures("paced")
def test_a_retry_after_429_on_status_keeps_the_gap(
    logged: tuple[Sandbox, list[str]], sleeps: Any, example: Any
) -> None:
    box, lines = logged
    client = on_virtual_time(box, sleeps)
    result = accepted(client, example)
    box.inject("429", "mirakl", retry_after=1)
    client.status("mirakl", result.tracking_id)
    # Retry-After said 1 s; the platform's per-action minute says the rest.
    assert sleeps.calls == [1.0, GAP - 1.0]
    assert len(status_calls(lines)) == 2


@pytest.mark.usefixtures("paced")
def test_wait_polls_first_at_its_interval_then_no_faster_than_allowed(
    logged: tuple[Sandbox, list[str]], sleeps: Any, example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, _ = logged
    client = on_virtual_time(box, sleeps)
    result = accepted(client, example)
    pending = dataclasses.replace(result)  # every poll answers "still pending"
    monkeypatch.setattr(Client, "status", lambda self, platform, tid: pending)
    client.wait(result, interval=2, timeout=150)
    assert sleeps.calls == [2, GAP, GAP]


def test_other_tracking_ids_are_not_held_back(
    paced: None, logged: tuple[Sandbox, list[str]], sleeps: Any, example: Any
) -> None:
    box, lines = logged
    client = on_virtual_time(box, sleeps, advance_sandbox=False)
    first, second = accepted(client, example), accepted(client, example)
    client.status("mirakl", first.tracking_id)
    client.status("mirakl", second.tracking_id)
    assert sleeps.calls == []
    assert len(status_calls(lines)) == 2
