"""Small things a newcomer meets: one result printed once, a way out of used-up demo
stock, a client that closes, and module-level calls that reuse one client."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cancelkit
from cancelkit.cli import main
from cancelkit.core import api
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def test_send_wait_prints_a_synchronous_result_once() -> None:
    result = run(
        "send", "--sandbox", "--wait", "-p", "salesforce", str(EXAMPLES / "salesforce.json")
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("cancelled  salesforce") == 1


def test_used_up_demo_stock_says_how_to_reset_it() -> None:
    example = str(EXAMPLES / "salesforce.json")
    # Line W0002 holds 2 and the example cancels 2.
    assert run("send", "--sandbox", "-p", "salesforce", example).exit_code == 0
    # The same request again is held by the sandbox's ledger: not sent twice.
    repeat = run("send", "--sandbox", "-p", "salesforce", example)
    assert repeat.exit_code == 0 and "already sent at" in repeat.output
    # Another request for the same line (its own key) finds nothing left.
    again = json.loads(Path(example).read_text(encoding="utf-8"))
    second = run("send", "--sandbox", "-p", "salesforce", "-",
                 input=json.dumps({**again, "idempotency_key": "another"}))  # fmt: skip
    assert second.exit_code == 1
    assert "cancelkit sandbox --reset" in second.stderr
    state = Path(os.environ["CANCELKIT_SANDBOX_STATE"])
    assert str(state) in second.stderr
    # ... and the way out it names works: without that file the demo stock is back,
    # and the sandbox's ledger (beside it) starts afresh with it.
    state.unlink()
    assert run("send", "--sandbox", "-p", "salesforce", example).exit_code == 0


def test_a_client_is_a_context_manager_that_closes_its_sessions(
    sandbox: Sandbox, example: Any
) -> None:
    with Client(config=sandbox.client_config()) as client:
        assert client.send(example("mirakl"), "mirakl").outcome == "accepted"
        sessions = [sender.session for sender in client._senders.values()]
        assert sessions
    assert client._senders == {}
    assert all(not s.adapters or all(not a.poolmanager.pools for a in s.adapters.values())
               for s in sessions)  # fmt: skip


def test_module_level_send_reuses_one_client_and_token(example: Any) -> None:
    seen: list[str] = []
    with Sandbox(cancelkit.PluginRegistry().emulators(), log=seen.append) as box:
        config = box.client_config()
        assert api.default_client(config) is api.default_client(config)
        for number in range(3):  # three requests (a repeat would be held by the ledger)
            request = {**example("mirakl"), "idempotency_key": f"send-{number}"}
            assert cancelkit.send(request, "mirakl", config=config).outcome == "accepted"
    assert sum("/oauth/token" in line for line in seen) == 1  # one token for three sends
    assert sum("/cancel " in line for line in seen) == 3


@pytest.mark.parametrize("kind", ["quota", "nope"])
def test_a_fault_that_cannot_apply_is_refused_with_exit_2(kind: str) -> None:
    result = run("send", "--sandbox", "--sandbox-fault", kind, "-p", "mirakl",
                 str(EXAMPLES / "mirakl.json"))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_salesforce_flow_faults_fire() -> None:
    result = run("send", "--sandbox", "--sandbox-fault", "500", "-p", "salesforce-flow",
                 str(EXAMPLES / "salesforce-flow.json"))  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "outcome unknown" in result.output


def test_status_is_refused_where_the_platform_declares_none() -> None:
    # has_status drives behaviour: a synchronous platform has nothing to follow up.
    result = run("status", "--sandbox", "-p", "salesforce", "some-id")
    assert result.exit_code == 2, result.output
    assert "platform: salesforce answers synchronously" in result.output


@pytest.mark.parametrize("tracking_id", ["", " ", "\udcff"], ids=["empty", "blank", "undecodable"])
@pytest.mark.parametrize("platform", ["mirakl", "aboutyou"])
def test_an_unusable_tracking_id_is_bad_input(platform: str, tracking_id: str) -> None:
    result = run("status", "--sandbox", "-p", platform, tracking_id)
    assert result.exit_code == 2, result.output
    assert "tracking_id:" in result.output and "internal error" not in result.output
