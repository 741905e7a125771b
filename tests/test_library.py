"""Library conveniences: ``CancelResult.to_dict``, ``Client`` as a context manager,
module-level ``cancelkit.wait``, and sending from asyncio through ``asyncio.to_thread``."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import pytest
import simplejson
from click.testing import CliRunner

import cancelkit
from cancelkit.cli import main
from cancelkit.core import api
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox


# -- CancelResult.to_dict ----------------------------------------------------------
def test_to_dict_is_the_json_that_send_json_prints(example: Any) -> None:
    printed = CliRunner().invoke(
        main, ["send", "--sandbox", "-p", "salesforce", "-", "--json"],
        input=simplejson.dumps(example("salesforce"), use_decimal=True),
    )  # fmt: skip
    assert printed.exit_code == 0, printed.output
    shown = simplejson.loads(printed.stdout, use_decimal=True)
    with cancelkit.sandbox() as box, Client(config=box.client_config()) as client:
        result = client.send(example("salesforce"), "salesforce")
    as_dict = result.to_dict()
    assert as_dict == cancelkit.dump_result(result)  # the older name is the same function
    assert set(as_dict) == set(shown)
    assert as_dict["outcome"] == shown["outcome"] == "cancelled"
    assert as_dict["lines"] == shown["lines"]
    # Exact decimals, never floats; simplejson writes them as they are.
    assert as_dict["lines"][1]["quantity"] == Decimal("2")
    assert simplejson.loads(simplejson.dumps(as_dict, use_decimal=True), use_decimal=True) == (
        as_dict
    )


# -- Client as a context manager ---------------------------------------------------
def test_client_is_a_context_manager_that_closes_even_after_an_error(
    sandbox: Sandbox, example: Any
) -> None:
    with (
        pytest.raises(cancelkit.errors.InvalidRequestError),
        Client(config=sandbox.client_config()) as client,
    ):
        assert client.send(example("mirakl"), "mirakl").outcome == "accepted"
        assert client._senders
        client.send({"lines": []}, "mirakl")
    assert client._senders == {}  # every session closed on the way out


# -- cancelkit.wait ------------------------------------------------------------------
def test_module_level_wait_polls_until_final(example: Any) -> None:
    with cancelkit.sandbox() as box:
        config = box.client_config()
        accepted = cancelkit.send(example("mirakl"), "mirakl", config=config)
        assert accepted.outcome == "accepted"
        box.advance(60)  # the action has had its processing time
        final = cancelkit.wait(accepted, config=config, interval=0.05, timeout=30)
    assert final.outcome == "cancelled"
    assert final.tracking_id == accepted.tracking_id


def test_module_level_wait_forwards_every_option_to_client_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def fake_wait(self: Client, result: Any, **options: Any) -> Any:
        seen.update(options, client=self)
        return result

    monkeypatch.setattr(Client, "wait", fake_wait)
    result = cancelkit.CancelResult("mirakl", "accepted", tracking_id="t-1")

    def progress(*args: Any) -> None:
        pass

    config = {"mirakl": {"access_token": "tok-0123456789"}}
    assert cancelkit.wait(result, config=config, timeout=5, progress=progress) is result
    assert seen["timeout"] == 5 and seen["progress"] is progress
    assert seen["client"] is api.default_client(config)  # the client send would use


def test_module_level_wait_returns_a_final_result_as_it_is() -> None:
    rejected = cancelkit.CancelResult("mirakl", "rejected")
    assert cancelkit.wait(rejected) is rejected


def test_wait_is_exported_lazily() -> None:
    assert "wait" in cancelkit.__all__
    assert "wait" in dir(cancelkit)
    assert cancelkit.wait is api.wait


# -- asyncio -------------------------------------------------------------------------
def test_two_sends_run_concurrently_from_asyncio_each_thread_with_its_own_client(
    example: Any,
) -> None:
    """The README's recipe: ``asyncio.to_thread`` around the module-level functions.

    Both threads must be inside ``send`` at the same time (the barrier proves it);
    each thread gets its own default client, as a requests.Session wants.
    """
    barrier = threading.Barrier(2, timeout=30)
    clients: dict[str, Client] = {}

    def send_in_thread(platform: str, config: Any) -> cancelkit.CancelResult:
        clients[platform] = api.default_client(config)
        barrier.wait()  # raises BrokenBarrierError unless the other send runs meanwhile
        return cancelkit.send(example(platform), platform, config=config)

    async def both(config: Any) -> list[cancelkit.CancelResult]:
        return list(
            await asyncio.gather(
                asyncio.to_thread(send_in_thread, "mirakl", config),
                asyncio.to_thread(send_in_thread, "carriyo", config),
            )
        )

    with cancelkit.sandbox() as box:
        mirakl, carriyo = asyncio.run(both(box.client_config()))
    assert (mirakl.outcome, carriyo.outcome) == ("accepted", "cancelled")
    assert clients["mirakl"] is not clients["carriyo"]
