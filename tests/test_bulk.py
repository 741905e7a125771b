"""``cancelkit bulk`` and ``Client.send_many`` as documented (README: Bulk cancellation),
attacked as a careless user or a hostile platform would.

Judged by what the emulator received (its request log, or its saved state for the
standalone sandbox), not by the tool's own report alone. Subprocess runs only where
signals must reach a real process; everything else runs in process, on loopback.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from bulkhelp import (
    HOSTILE,
    PLATFORMS,
    VirtualTime,
    Watched,
    carriyo_rejected,
    cli,
    job_id,
    json_lines,
    keyed,
    line,
    mirakl_line,
    mirakl_received,
    mixed,
    raw_controls,
    sandbox_ledger_url,
    write_jsonl,
)
from ledgerhelp import cancels, example
from test_sandbox_command import cancelkit_command, clean_environment, start_sandbox, stop

import cancelkit
from cancelkit.core import bulk as core_bulk
from cancelkit.core.bulk import BUFFER_PER_PLATFORM, RESULTS_BUFFER, BulkResult
from cancelkit.core.client import Client
from cancelkit.core.config import env_prefix
from cancelkit.core.ledger.store import Ledger
from cancelkit.core.model import CancelResult
from cancelkit.core.ratelimit import SlidingWindowLimiter
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.sending import RetryPolicy
from cancelkit.errors import ConfigurationError, TransportError

#: Subprocess waits: a hang fails the test, never blocks the run.
HANG_GUARD = 60.0


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Watched:
    """Watch every in-process sandbox started from now on (``--sandbox`` runs)."""
    seen = Watched()
    original = Sandbox.__init__

    def init(self: Sandbox, *args: Any, **kwargs: Any) -> None:
        kwargs["log"] = seen.log.append
        original(self, *args, **kwargs)
        for kind, platform, params in seen.faults:
            self.inject(kind, platform, **params)
        seen.faults.clear()  # for the next sandbox only: a rerun meets none
        seen.boxes.append(self)

    monkeypatch.setattr(Sandbox, "__init__", init)
    return seen


def report(job: str, *extra: str) -> Any:
    return cli("bulk", "report", job, "--sandbox", *extra)


# -- 1. a mixed JSON Lines job: exit codes, --json, a rerun holds everything ---------------


@pytest.mark.parametrize(
    ("case", "code"), [("all done", 0), ("one rejected", 1), ("one unknown", 3)]
)
def test_mixed_platforms_exit_code_json_lines_and_a_rerun_sends_nothing(
    tmp_path: Path, emulator: Watched, case: str, code: int
) -> None:
    objects = mixed()
    if case == "one rejected":
        objects.append(carriyo_rejected())
    if case == "one unknown":  # Mirakl does not deduplicate: an unknown is never resent
        emulator.inject_next("500", "mirakl")
    path = tmp_path / "cancels.jsonl"
    data = write_jsonl(path, objects)

    first = cli("bulk", str(path), "--sandbox", "--json")
    assert first.exit_code == code, first.stderr
    results = json_lines(first.stdout)
    # One JSON line per request, each numbered as in the input, none twice.
    assert sorted(r["number"] for r in results) == list(range(1, len(objects) + 1))
    for r in results:
        assert r["platform"] == objects[r["number"] - 1]["platform"]
        assert r["held"] is False
        assert r["error"] is None
        assert r["result"]["platform"] == r["platform"]
    by_number = {r["number"]: r["result"]["outcome"] for r in results}
    assert by_number[1] == ("unknown" if case == "one unknown" else "accepted")  # mirakl
    assert (by_number[2], by_number[3], by_number[4]) == ("accepted", "cancelled", "cancelled")
    if case == "one rejected":
        assert by_number[5] == "rejected"
    # The emulator received each request exactly once.
    for platform in PLATFORMS:
        wanted = sum(1 for o in objects if o["platform"] == platform)
        assert len(emulator.cancels(platform)) == wanted, emulator.log
    received = len(emulator.log)

    again = cli("bulk", str(path), "--sandbox", "--json")
    assert again.exit_code == code, again.stderr
    held = json_lines(again.stdout)
    assert len(held) == len(objects)
    assert all(r["held"] for r in held), held
    assert {r["number"]: r["result"]["outcome"] for r in held} == by_number
    assert len(emulator.log) == received, emulator.log[received:]  # nothing more at all
    assert f"already sent {len(objects)}" in again.stderr
    assert f"bulk job {job_id(data)}" in again.stderr


def test_without_json_stdout_stays_empty(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, mixed())
    result = cli("bulk", str(path), "--sandbox")
    assert (result.exit_code, result.stdout) == (0, "")
    assert len(emulator.cancels()) == len(PLATFORMS)


# -- 2. bad input anywhere: exit 2, each problem with its place, nothing sent, no job ----


def _good(n: int) -> list[str]:
    return [json.dumps(line("mirakl", keyed("mirakl", f"good-{i}"))) for i in range(n)]


def _bad_quantity() -> dict[str, Any]:
    return line("mirakl", {**example("mirakl"), "lines": [{"line_id": "x", "quantity": 0}]})


BAD_INPUTS = {
    "bad quantity on line 3": (
        "cancels.jsonl",
        "\n".join([*_good(2), json.dumps(_bad_quantity())]) + "\n",
        ["line 3: lines[0].quantity: must be greater than 0"],
    ),
    "a line that is not JSON": (
        "cancels.jsonl",
        "\n".join([_good(1)[0], "{not json", _good(2)[1]]) + "\n",
        ["line 2: json: not valid JSON"],
    ),
    "unknown platform": (
        "cancels.jsonl",
        "\n".join([*_good(1), json.dumps(line("shopify", example("mirakl")))]) + "\n",
        ["line 2", "unknown platform 'shopify'"],
    ),
    "no platform": (
        "cancels.jsonl",
        "\n".join([*_good(1), json.dumps(example("mirakl"))]) + "\n",
        ["line 2: platform: missing"],
    ),
    "a JSON array, not an object": (
        "cancels.jsonl",
        "\n".join([*_good(1), "\n", '["mirakl"]']) + "\n",
        ["line 4: json: must be a JSON object"],
    ),
    "CSV with an unknown column": (
        "cancels.csv",
        "platform,order_id,line_id,quantity,colour\ncarriyo,ORD-1001,line-kbd,1,red\n",
        ["row 1: header: unknown column 'colour'"],
    ),
    "CSV with a short row": (
        "cancels.csv",
        "platform,order_id,fulfillment_order_id,reason,line_id,quantity\n"
        "carriyo,ORD-1001,FO-1001-1,CUSTOMER_REQUEST,line-kbd,1\ncarriyo,ORD-1001\n",
        ["row 3: row: has 2 cells; the header has 6"],
    ),
    "empty file": ("cancels.jsonl", "", ["holds no request"]),
    "blank lines only": ("cancels.jsonl", "\n \n\r\n", ["holds no request"]),
    "empty CSV": ("cancels.csv", "", ["row 1: header: the file is empty"]),
    "CSV with a header only": ("cancels.csv", "platform,line_id,quantity\n", ["holds no request"]),
}


def _refused_and_nothing_left(result: Any, data: bytes, emulator: Watched) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    assert emulator.log == []  # nothing sent: not even a token request
    gone = report(job_id(data))
    assert gone.exit_code == 2, gone.stdout  # no job was left in the ledger
    assert "is not a bulk job here" in gone.stderr
    with Ledger(sandbox_ledger_url()) as ledger:
        assert list(ledger.entries()) == []


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_anywhere_is_named_by_place_and_nothing_is_sent(
    tmp_path: Path, emulator: Watched, case: str
) -> None:
    name, text, expected = BAD_INPUTS[case]
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(data)
    result = cli("bulk", str(path), "--sandbox")
    for wanted in expected:
        assert wanted in result.stderr, result.stderr
    _refused_and_nothing_left(result, data, emulator)


def test_several_problems_are_each_listed_with_exit_2(tmp_path: Path, emulator: Watched) -> None:
    text = "\n".join([*_good(2), json.dumps(_bad_quantity()), "{oops", *_good(1)]) + "\n"
    path = tmp_path / "cancels.jsonl"
    path.write_text(text)
    result = cli("bulk", str(path), "--sandbox")
    assert "line 3: lines[0].quantity: must be greater than 0" in result.stderr, result.stderr
    assert "line 4: json: not valid JSON" in result.stderr
    _refused_and_nothing_left(result, text.encode(), emulator)


def test_more_than_twenty_problems_are_cut_short_and_nothing_is_sent(
    tmp_path: Path, emulator: Watched
) -> None:
    path = tmp_path / "cancels.jsonl"
    text = "{oops\n" * 25
    path.write_text(text)
    result = cli("bulk", str(path), "--sandbox")
    shown = [x for x in result.stderr.splitlines() if ": json: not valid JSON" in x]
    assert [x.split(": ")[1] for x in shown] == [f"line {n}" for n in range(1, 21)]
    assert "and 5 more problems" in result.stderr
    _refused_and_nothing_left(result, text.encode(), emulator)


def test_input_that_is_not_utf8_is_bad_input_with_its_place(
    tmp_path: Path, emulator: Watched
) -> None:
    path = tmp_path / "stock-out.csv"
    data = (
        b"platform,order_id,fulfillment_order_id,reason,line_id,quantity\n"
        b"carriyo,ORD-1001,FO-1001-1,CUSTOMER_REQUEST,line-kbd,1\n"
    ) + "carriyo,ORD-1001,FO-1001-1,CUSTOMER_REQUEST,line-caf\xe9,1\n".encode("cp1252")
    path.write_bytes(data)
    result = cli("bulk", str(path), "--sandbox")
    assert "row 3" in result.stderr, result.stderr
    _refused_and_nothing_left(result, data, emulator)


def test_an_unknown_platform_reads_line_n_platform(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, [line("mirakl", example("mirakl")), line("shopify", example("mirakl"))])
    result = cli("bulk", str(path), "--sandbox")
    assert result.exit_code == 2
    assert "line 2: platform: unknown platform 'shopify'" in result.stderr, result.stderr


def test_an_idempotency_key_reused_for_another_request_is_bad_input(
    tmp_path: Path, emulator: Watched
) -> None:
    path = tmp_path / "cancels.jsonl"
    write_jsonl(
        path, [line("mirakl", keyed("mirakl", "k1")), line("carriyo", keyed("carriyo", "k1"))]
    )
    result = cli("bulk", str(path), "--sandbox")
    assert emulator.cancels() == []
    assert result.exit_code == 2
    assert "line 2: idempotency_key" in result.stderr


def test_an_idempotency_key_an_earlier_send_used_for_another_request_is_bad_input(
    tmp_path: Path, emulator: Watched
) -> None:
    # The key is in the ledger already, for another request: refused before anything
    # goes out (the report would otherwise show that other request's outcome).
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(keyed("mirakl", "my-key-0001")))
    assert cli("send", "--sandbox", "-p", "mirakl", str(earlier)).exit_code == 0
    sent = len(emulator.cancels())
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, [line("carriyo", keyed("carriyo", "my-key-0001")),
                       line("mirakl", keyed("mirakl", "another-key"))])  # fmt: skip
    result = cli("bulk", str(path), "--sandbox")
    assert result.exit_code == 2, result.stderr
    assert "line 1: idempotency_key: 'my-key-0001' was already used" in result.stderr
    assert len(emulator.cancels()) == sent


# -- 3. CSV, and the per-line report -------------------------------------------------------

CSV_TWO_ORDERS = (
    "\ufeffquantity,line_id,platform,order_id,fulfillment_order_id,reason,currency,price,"
    "shipping_price,product_id\n"
    "1,line-kbd,carriyo,ORD-1001,FO-1001-1,CUSTOMER_REQUEST,,,,\n"
    ",,,,,,,,,\n"  # a blank row: skipped, does not end a request
    "1,0a4xx00000000W0001,salesforce,,0a3xx0000000085AAA,,,,,\n"
    "2,0a4xx00000000W0002,salesforce,,0a3xx0000000085AAA,,,,,\n"
)


def test_csv_rows_of_two_orders_are_two_requests_and_the_report_lists_them(
    tmp_path: Path, emulator: Watched
) -> None:
    path = tmp_path / "stock-out.csv"
    path.write_text(CSV_TWO_ORDERS, encoding="utf-8")
    job = job_id(path.read_bytes())
    result = cli("bulk", str(path), "--sandbox", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json_lines(result.stdout)) == 2
    assert f"bulk job {job}: 2 requests" in result.stderr
    assert len(emulator.cancels("carriyo")) == 1
    assert len(emulator.cancels("salesforce")) == 1  # two rows, one request

    as_json = report(job, "--format", "json")
    assert as_json.exit_code == 0, as_json.stderr
    rows = json_lines(as_json.stdout)
    assert [(r["number"], r["where"], r["platform"], r["outcome"]) for r in rows] == [
        (1, "row 2", "carriyo", "cancelled"),
        (2, "rows 4-5", "salesforce", "cancelled"),
    ]
    assert all(r["key"].startswith("sha256:") for r in rows)

    as_csv = report(job[:6], "--format", "csv")  # a unique start of the id will do
    assert as_csv.exit_code == 0
    table = as_csv.stdout.splitlines()
    assert table[0] == "number,where,platform,outcome,tracking_id,key,message"
    assert table[1].startswith("1,row 2,carriyo,cancelled,,sha256:")
    assert table[2].startswith("2,rows 4-5,salesforce,cancelled,,sha256:")
    assert len(table) == 3

    people = report(job)  # table is the default
    assert people.exit_code == 0
    assert people.stdout.splitlines()[0] == f"job {job}: 2 requests from {path}"
    assert "row 2" in people.stdout and "rows 4-5" in people.stdout


def test_rows_of_one_order_far_apart_are_separate_requests(
    tmp_path: Path, emulator: Watched
) -> None:
    path = tmp_path / "unsorted.csv"
    path.write_text(
        "platform,fulfillment_order_id,line_id,quantity\n"
        "salesforce,0a3xx0000000085AAA,0a4xx00000000W0001,1\n"
        "salesforce,0a3xx0000000088AAA,0a4xx00000000W0005,0.75\n"
        "salesforce,0a3xx0000000085AAA,0a4xx00000000W0002,1\n"
    )
    result = cli("bulk", str(path), "--sandbox", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(emulator.cancels("salesforce")) == 3


def test_report_of_an_unknown_job_is_exit_2(emulator: Watched) -> None:
    result = report("0123456789ab")
    assert result.exit_code == 2
    assert "'0123456789ab' is not a bulk job here" in result.stderr


def test_format_csv_reads_any_name_as_csv(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "export.txt"
    path.write_text(CSV_TWO_ORDERS, encoding="utf-8")
    result = cli("bulk", str(path), "--format", "csv", "--sandbox", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(emulator.cancels()) == 2


# -- 4. stdin ------------------------------------------------------------------------------


def test_stdin_works_and_the_same_bytes_again_are_the_same_job(emulator: Watched) -> None:
    data = "".join(json.dumps(o) + "\n" for o in mixed())
    first = cli("bulk", "-", "--sandbox", "--json", stdin=data)
    assert first.exit_code == 0, first.stderr
    assert f"bulk job {job_id(data.encode())}: 4 requests from -" in first.stderr
    assert len(emulator.cancels()) == 4
    received = len(emulator.log)

    again = cli("bulk", "-", "--sandbox", "--json", stdin=data)
    assert again.exit_code == 0
    assert all(r["held"] for r in json_lines(again.stdout))
    assert len(emulator.log) == received
    assert report(job_id(data.encode())).exit_code == 5  # accepted, no final status yet


def test_csv_on_stdin_with_format(emulator: Watched) -> None:
    result = cli("bulk", "-", "--format", "csv", "--sandbox", "-q", stdin=CSV_TWO_ORDERS)
    assert result.exit_code == 0, result.stderr
    assert len(emulator.cancels()) == 2


# -- 5. stopping and resuming (a real process, a standalone sandbox) -----------------------

RESUME_REQUESTS = 200


def _wait_until_received(state: Path, at_least: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while sum(mirakl_received(state).values()) < at_least:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the run ended or hung before {at_least} cancels were received")
        time.sleep(0.05)


def _bulk_process(env: dict[str, str], path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cancelkit_command(), "bulk", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _answered_line_ids(ledger_url: str) -> tuple[list[str], list[str]]:
    """(line ids the ledger holds as answered, line ids claimed with no answer)."""
    with Ledger(ledger_url) as ledger:
        entries = list(ledger.entries())
    answered = [e.request["lines"][0]["line_id"] for e in entries if e.answered]
    in_flight = [e.request["lines"][0]["line_id"] for e in entries if e.in_flight]
    return answered, in_flight


def test_sigint_then_sigterm_stop_cleanly_and_a_rerun_sends_each_line_exactly_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "platform-state.json"
    sandbox = start_sandbox(state, tmp_path)
    try:
        env = {**clean_environment(tmp_path), **sandbox.exports}
        path = tmp_path / "stock-out.jsonl"
        write_jsonl(path, (mirakl_line(n) for n in range(RESUME_REQUESTS)))
        line_ids = sorted(f"bulk-{n:04d}" for n in range(RESUME_REQUESTS))
        job = job_id(path.read_bytes())

        before = 0
        for sig in (signal.SIGINT, signal.SIGTERM):  # SIGTERM: as the first Ctrl-C
            process = _bulk_process(env, path)
            _wait_until_received(state, before + 10, process)  # sending, not starting
            process.send_signal(sig)
            _, err = process.communicate(timeout=HANG_GUARD)
            assert process.returncode == 130, (sig, err)
            assert "Traceback" not in err, err
            assert "run the same command again to send the rest" in err, err
            assert f"cancelkit bulk report {job}" in err
            received = mirakl_received(state)
            answered, in_flight = _answered_line_ids(env["CANCELKIT_LEDGER_URL"])
            # The sends in flight finished and were recorded: none is left unknown.
            assert in_flight == []
            assert sorted(answered) == sorted(received), "received but not recorded"
            assert all(received[x] == 1 for x in answered)
            assert len(received) < RESUME_REQUESTS, "stopped too late to prove anything"
            before = len(received)

        final = subprocess.run(
            [*cancelkit_command(), "bulk", str(path), "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD * 2,
        )
        assert final.returncode == 0, final.stderr
        assert final.stderr == ""
        received = mirakl_received(state)
        assert sorted(received) == line_ids
        assert set(received.values()) == {1}, {k: v for k, v in received.items() if v != 1}
    finally:
        stop(sandbox)


def _stderr_lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # a thread, so that reading can time out
        assert process.stderr is not None
        for text in process.stderr:
            lines.put(text)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue[str], start: str) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + HANG_GUARD
    while not any(x.startswith(start) for x in seen):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            pytest.fail(f"no line starting {start!r}: {seen}")
    return seen


def test_a_second_ctrl_c_leaves_at_once_and_the_send_in_flight_stays_unknown(
    tmp_path: Path,
) -> None:
    import requests

    state = tmp_path / "platform-state.json"
    sandbox = start_sandbox(state, tmp_path)
    try:
        env = {**clean_environment(tmp_path), **sandbox.exports}
        fault = {"kind": "slow", "platform": "mirakl", "delay": 2}
        assert requests.post(f"{sandbox.url}/_sandbox/faults", json=fault, timeout=5).ok
        path = tmp_path / "stock-out.jsonl"
        write_jsonl(path, (mirakl_line(n) for n in range(3)))
        process = subprocess.Popen(
            [*cancelkit_command(), "bulk", str(path), "--concurrency", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = _stderr_lines(process)
        _wait_until_received(state, 1, process)  # applied; its answer is held back 2 s
        process.send_signal(signal.SIGINT)
        _wait_for_line(lines, "stopping:")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=HANG_GUARD)
        assert process.returncode == 130
        answered, in_flight = _answered_line_ids(env["CANCELKIT_LEDGER_URL"])
        assert (answered, in_flight) == ([], ["bulk-0000"])
    finally:
        stop(sandbox)


def test_an_interrupted_check_is_completed_by_the_rerun(
    tmp_path: Path, emulator: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cancels.jsonl"
    data = write_jsonl(path, (line("mirakl", keyed("mirakl", f"k{i}")) for i in range(5)))
    original = Client.key_and_fingerprint
    calls = {"n": 0}

    def ctrl_c_on_the_third(self: Client, request: Any, platform: str) -> tuple[str, str]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C while the input is being checked
        return original(self, request, platform)

    monkeypatch.setattr(Client, "key_and_fingerprint", ctrl_c_on_the_third)
    interrupted = cli("bulk", str(path), "--sandbox")
    assert interrupted.exit_code == 130
    assert emulator.cancels() == []
    monkeypatch.setattr(Client, "key_and_fingerprint", original)

    resumed = cli("bulk", str(path), "--sandbox", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    assert len(emulator.cancels("mirakl")) == 5
    rows = json_lines(report(job_id(data), "--format", "json").stdout)
    assert [r["number"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["outcome"] for r in rows} == {"accepted"}


# -- 6. rate limits and Retry-After through send_many, on virtual time --------------------


def _virtual_sandbox(vt: VirtualTime) -> tuple[Sandbox, list[tuple[float, str]]]:
    timed: list[tuple[float, str]] = []
    box = Sandbox(
        cancelkit.PluginRegistry().emulators(),
        log=lambda text: timed.append((vt.clock(), text)),
        clock=vt.clock,
    )
    return box, timed


def _aboutyou_cancels(timed: list[tuple[float, str]]) -> list[tuple[float, str]]:
    return [(t, text) for t, text in timed if text.startswith("POST /aboutyou/orders/cancel")]


def test_a_refusal_with_retry_after_holds_every_worker_of_the_platform() -> None:
    vt = VirtualTime(hold_first=True)
    box, timed = _virtual_sandbox(vt)
    with box:
        box.inject("429", "aboutyou", retry_after=100)  # beyond the sender's own max wait
        client = Client(config=box.client_config(), sleep=vt.sleep, clock=vt.clock)

        def items() -> Iterator[tuple[str, dict[str, Any]]]:
            yield "aboutyou", keyed("aboutyou", "first")
            vt.wait_for_a_sleep()  # the first was refused and its worker waits
            for n in range(5):
                yield "aboutyou", keyed("aboutyou", f"then-{n}")

        with client:
            results = list(client.send_many(items(), concurrency=3))
    assert sorted(r.index for r in results) == list(range(6))
    assert {r.outcome for r in results} == {"accepted"}, [r.result for r in results]
    sent = _aboutyou_cancels(timed)
    assert len(sent) == 7, sent  # six requests, one of them twice
    (refused_at, refused), *rest = sent
    assert refused.endswith("-> 429")
    # Nothing went out while the platform's gate was closed: not the refused one, and
    # not the others (they started after the refusal and had to wait with it).
    assert all(t >= refused_at + 100 for t, _ in rest), (refused_at, rest)
    assert all(text.endswith("-> 200") for _, text in rest)
    assert len(vt.sleepers()) > 1, vt.calls  # more than one worker waited


@pytest.mark.parametrize(
    ("retry_after", "attempts", "received"),
    [
        (100, None, 3),  # long: reported by the sender at once; send_many sends 3 times
        (100, 2, 2),
        # short: the sender retries itself (RetryPolicy) within each of send_many's attempts
        (5, None, 3 * (RetryPolicy().max_retries + 1)),
        # longer than bulk ever holds a platform's workers (an hour): reported at once
        (core_bulk.MAX_PAUSE + 1, None, 1),
    ],
)
def test_attempts_bound_the_resends(
    retry_after: float, attempts: int | None, received: int
) -> None:
    vt = VirtualTime()
    box, timed = _virtual_sandbox(vt)
    with box:
        box.inject("429", "aboutyou", retry_after=retry_after, count=1000)
        client = Client(config=box.client_config(), sleep=vt.sleep, clock=vt.clock)
        items = [("aboutyou", keyed("aboutyou", "always-limited"))]
        with client:
            if attempts is None:
                results = list(client.send_many(items))
            else:
                results = list(
                    core_bulk.send_many(
                        client, items, attempts=attempts, sleep=vt.sleep, clock=vt.clock
                    )
                )
    [result] = results
    assert result.result is not None
    assert (result.outcome, result.result.errors[0].code) == ("rejected", "RATE_LIMITED")
    assert result.result.retryable
    assert len(_aboutyou_cancels(timed)) == received


def test_about_you_never_receives_more_than_50_cancels_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vt = VirtualTime()
    box, timed = _virtual_sandbox(vt)
    granted = {"n": 0}
    original = SlidingWindowLimiter.acquire

    # Virtual time moves at once; a request granted before a sleep must reach the
    # emulator before the clock moves on, as it would in real time.
    def acquire(self: SlidingWindowLimiter, clock: Any, sleep: Any) -> float:
        with vt._lock:
            waited = original(self, clock, sleep)
            granted["n"] += 1
            return float(waited)

    def all_granted_arrived() -> None:
        deadline = time.monotonic() + 10
        while len(_aboutyou_cancels(timed)) < granted["n"] and time.monotonic() < deadline:
            time.sleep(0.001)

    vt.before_advance = all_granted_arrived
    monkeypatch.setattr(SlidingWindowLimiter, "acquire", acquire)
    with box:
        client = Client(config=box.client_config(), sleep=vt.sleep, clock=vt.clock)
        items = [("aboutyou", keyed("aboutyou", f"ay-{n}")) for n in range(120)]
        with client:
            results = list(client.send_many(items, concurrency=4))
    assert sorted(r.index for r in results) == list(range(120))
    assert {r.outcome for r in results} == {"accepted"}
    sent = _aboutyou_cancels(timed)
    assert len(sent) == 120, "a cancel was refused (429) and sent again"
    times = sorted(t for t, _ in sent)
    busiest = max(sum(1 for u in times if t <= u < t + 60) for t in times)
    assert busiest == 50, busiest
    assert vt.now - 1_000_000.0 >= 120  # three minutes' worth of windows were waited


# -- 7. send_many: each input once, lazily, and stopping -----------------------------------


@pytest.fixture
def logged() -> Iterator[tuple[Sandbox, list[str]]]:
    lines: list[str] = []
    with Sandbox(cancelkit.PluginRegistry().emulators(), log=lines.append) as box:
        yield box, lines


def _two_platforms(
    n: int, counter: dict[str, int] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    for i in range(n):
        if counter is not None:
            counter["pulled"] += 1
        if i % 2:
            yield "salesforce", keyed("salesforce", f"sf-{i}")
        else:
            yield "mirakl", keyed("mirakl", f"mk-{i}")


def test_each_input_is_yielded_exactly_once_and_sent_exactly_once(
    logged: tuple[Sandbox, list[str]],
) -> None:
    box, lines = logged
    with Client(config=box.client_config()) as client:
        results = list(client.send_many(_two_platforms(500), concurrency=8))
    assert sorted(r.index for r in results) == list(range(500))
    assert all(r.error is None and not r.held for r in results)
    assert all(r.platform == ("salesforce" if r.index % 2 else "mirakl") for r in results)
    assert len(cancels(lines, "mirakl")) == 250
    assert len(cancels(lines, "salesforce")) == 250


#: Items a send_many run may have pulled from its input, per platform: those waiting in
#: the lane, those its workers hold, and one the feeder is trying to put.
PER_PLATFORM = BUFFER_PER_PLATFORM + 8 + 1


def _run_in_thread(target: Any) -> None:
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(HANG_GUARD)
    assert not worker.is_alive(), "send_many did not return"


def test_the_input_is_read_lazily_and_closing_the_generator_stops_sending(
    logged: tuple[Sandbox, list[str]],
) -> None:
    box, lines = logged
    counter = {"pulled": 0}
    taken: list[BulkResult] = []

    def consume() -> None:
        with Client(config=box.client_config(), ledger=False) as client:
            results = client.send_many(_two_platforms(100_000, counter), concurrency=8)
            for result in results:
                taken.append(result)
                if len(taken) == 5:
                    break
            results.close()  # the consumer left: start nothing new

    _run_in_thread(consume)
    sent = len(cancels(lines))  # every worker has ended: this is final
    assert counter["pulled"] < 5_000, counter  # far fewer than the input's 100,000
    # What was pulled and not sent waited in the buffers: at most theirs.
    assert counter["pulled"] - sent <= 2 * PER_PLATFORM, (counter, sent)
    assert sent >= 5
    assert len({r.index for r in taken}) == 5


def test_the_stop_event_ends_the_run_and_every_send_that_went_out_is_reported(
    logged: tuple[Sandbox, list[str]],
) -> None:
    box, lines = logged
    counter = {"pulled": 0}
    stop = threading.Event()
    got: list[BulkResult] = []

    def consume() -> None:
        with Client(config=box.client_config(), ledger=False) as client:
            for result in client.send_many(
                _two_platforms(100_000, counter), concurrency=8, stop=stop
            ):
                got.append(result)
                if len(got) == 5:
                    stop.set()

    _run_in_thread(consume)
    assert counter["pulled"] - len(got) <= 2 * PER_PLATFORM, counter
    indices = [r.index for r in got]
    assert len(indices) == len(set(indices))
    # The sends in flight finished and were yielded; nothing else went out.
    assert len(cancels(lines)) == len(got)


def test_a_paused_consumer_holds_the_input_back() -> None:
    counter = {"pulled": 0}
    sends = {"n": 0}
    # The buffers, plus as many finished results again: any bound at all will do.
    # The lanes' buffers and workers, plus the finished results not yet taken.
    bound = 2 * PER_PLATFORM + RESULTS_BUFFER + 5

    class Instant:
        """A client whose sends are answered at once (memory is the point here)."""

        def send(self, request: Any, platform: str) -> CancelResult:
            sends["n"] += 1
            return CancelResult(platform=platform, outcome="cancelled")

    def consume() -> None:
        results = core_bulk.send_many(
            cast(Client, Instant()), _two_platforms(100_000, counter), concurrency=8
        )
        for n, _ in enumerate(results, start=1):
            if n == 5:
                break
        deadline = time.monotonic() + 5  # the consumer is busy with its fifth result
        while counter["pulled"] <= bound and time.monotonic() < deadline:
            time.sleep(0.01)
        results.close()

    _run_in_thread(consume)
    assert counter["pulled"] <= bound, (counter, sends)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_error_in_the_input_reaches_the_caller(logged: tuple[Sandbox, list[str]]) -> None:
    box, _ = logged

    def broken() -> Iterator[tuple[str, dict[str, Any]]]:
        yield "mirakl", keyed("mirakl", "one")
        raise OSError("the export was cut off")

    with Client(config=box.client_config()) as client, pytest.raises(OSError, match="cut off"):
        list(client.send_many(broken()))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_unexpected_error_in_a_send_is_not_lost(
    logged: tuple[Sandbox, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, _ = logged
    original = Client.send

    def buggy(self: Client, request: Any, platform: str, **kwargs: Any) -> Any:
        if request.get("idempotency_key") == "k1":
            raise RuntimeError("a plugin bug")
        return original(self, request, platform, **kwargs)

    monkeypatch.setattr(Client, "send", buggy)
    got: list[BulkResult] = []
    raised: list[BaseException] = []

    def consume() -> None:
        with Client(config=box.client_config()) as client:
            try:
                items = [("mirakl", keyed("mirakl", f"k{i}")) for i in range(5)]
                got.extend(client.send_many(items, concurrency=1))
            except RuntimeError as error:
                raised.append(error)

    _run_in_thread(consume)
    # Either the bug surfaces to the caller, or every other request still went out.
    assert raised or {0, 2, 3, 4} <= {r.index for r in got}, [r.index for r in got]


def test_a_duplicate_line_is_refused_and_nothing_is_sent(tmp_path: Path, emulator: Watched) -> None:
    # One key twice in one file: it would go out once, and the second line would read
    # as "unknown" while the first is in flight. Refused as bad input instead.
    path = tmp_path / "twice.jsonl"
    write_jsonl(path, [line("mirakl", example("mirakl"))] * 2)
    result = cli("bulk", str(path), "--sandbox", "--json")
    assert result.exit_code == 2, result.stderr
    assert "line 2: request: repeats line 1" in result.stderr, result.stderr
    assert emulator.cancels() == []


# -- 8. configuration and connection errors ------------------------------------------------


def _real_mode_env(monkeypatch: pytest.MonkeyPatch, box: Sandbox, *, skip: str = "") -> None:
    """Point the real (non-sandbox) client at ``box``: every platform but ``skip`` fully,
    ``skip`` with its base URL only (no credentials)."""
    for platform, settings in box.client_config().items():
        for name, value in settings.items():
            if platform != skip or name == "base_url":
                monkeypatch.setenv(env_prefix(platform) + name.upper(), value)


def test_a_configuration_problem_is_an_error_result_in_the_library(
    logged: tuple[Sandbox, list[str]],
) -> None:
    box, lines = logged
    env = {
        env_prefix("aboutyou") + "BASE_URL": box.base_url("aboutyou"),
        **{env_prefix("mirakl") + k.upper(): v for k, v in box.client_config()["mirakl"].items()},
    }
    with Client(env=env, ledger=False) as client:
        items = [("aboutyou", keyed("aboutyou", "a")), ("mirakl", keyed("mirakl", "m"))]
        results = {r.platform: r for r in client.send_many(items)}
    assert isinstance(results["aboutyou"].error, ConfigurationError)
    assert results["aboutyou"].error.exit_code == 4
    assert "CANCELKIT_ABOUTYOU_API_KEY" in str(results["aboutyou"].error)
    assert results["aboutyou"].outcome == "error"
    assert results["mirakl"].outcome == "accepted"
    assert cancels(lines, "aboutyou") == []
    assert len(cancels(lines, "mirakl")) == 1


def test_a_configuration_problem_stops_the_run_instead_of_failing_every_line(
    tmp_path: Path, logged: tuple[Sandbox, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, lines = logged
    _real_mode_env(monkeypatch, box, skip="aboutyou")
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, (line("aboutyou", keyed("aboutyou", f"a{i}")) for i in range(400)))
    result = cli("bulk", str(path))
    notes = [x for x in result.stderr.splitlines() if "missing setting" in x]
    assert notes and "CANCELKIT_ABOUTYOU_API_KEY" in notes[0]
    assert len(notes) < 100, len(notes)  # it stopped; not one failure per line
    assert cancels(lines) == []
    assert "Traceback" not in result.stderr


def test_a_configuration_problem_exits_4_not_interrupted(
    tmp_path: Path, logged: tuple[Sandbox, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, _ = logged
    _real_mode_env(monkeypatch, box, skip="aboutyou")
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, (line("aboutyou", keyed("aboutyou", f"a{i}")) for i in range(20)))
    result = cli("bulk", str(path))
    assert "interrupted" not in result.stderr, result.stderr
    assert result.exit_code == 4


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_is_could_not_connect_exit_3_and_a_rerun_sends_them(
    tmp_path: Path, logged: tuple[Sandbox, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, lines = logged
    _real_mode_env(monkeypatch, box)
    live = box.client_config()["mirakl"]["base_url"]
    monkeypatch.setenv(env_prefix("mirakl") + "BASE_URL", f"http://127.0.0.1:{_dead_port()}/x")
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, [line("mirakl", keyed("mirakl", f"m{i}")) for i in range(3)])

    down = cli("bulk", str(path), "--json")
    assert down.exit_code == 3, down.stderr
    results = json_lines(down.stdout)
    assert len(results) == 3
    assert all("could not connect" in r["error"] for r in results), results
    assert all("nothing was sent" in r["error"] for r in results)
    assert down.stderr.count("could not connect") == 3
    assert cancels(lines) == []

    nowhere = {
        env_prefix("mirakl") + "BASE_URL": f"http://127.0.0.1:{_dead_port()}/x",
        env_prefix("mirakl") + "ACCESS_TOKEN": "t",
    }
    with Client(env=nowhere, ledger=False) as client:
        [one] = list(client.send_many([("mirakl", example("mirakl"))]))
    assert isinstance(one.error, TransportError)

    monkeypatch.setenv(env_prefix("mirakl") + "BASE_URL", live)
    up = cli("bulk", str(path), "-q")  # nothing was sent, so nothing is held
    assert up.exit_code == 0, up.stderr
    assert len(cancels(lines, "mirakl")) == 3


# -- 9. progress on stderr -----------------------------------------------------------------


def test_quiet_prints_nothing_on_stderr(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, mixed())
    result = cli("bulk", str(path), "--sandbox", "-q")
    assert (result.exit_code, result.stderr) == (0, "")
    assert len(emulator.cancels()) == 4


def test_progress_is_plain_lines_with_a_final_summary(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "cancels.jsonl"
    data = write_jsonl(path, [*mixed(), carriyo_rejected()])
    result = cli("bulk", str(path), "--sandbox")
    assert result.exit_code == 1
    job = job_id(data)
    err = result.stderr.splitlines()
    assert err[0] == f"bulk job {job}: 5 requests from {path}"
    assert err[-2].startswith("bulk: 5/5 (100%) cancelled 2, accepted 2, rejected 1")
    assert err[-1] == f"per line: cancelkit bulk report {job} --sandbox"
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # no live bar


def test_control_characters_never_reach_the_terminal_raw(
    tmp_path: Path, emulator: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cancelkit.plugins.carriyo import emulator as carriyo

    original = carriyo.CarriyoEmulator.handle

    def hostile(self: Any, request: Any) -> Any:
        if request.method == "POST" and request.segments[-1:] == ("cancel",):
            if b"forbidden" in request.body:
                raise carriyo._refusal(403, HOSTILE)
            raise carriyo._refusal(400, HOSTILE)
        return original(self, request)

    monkeypatch.setattr(carriyo.CarriyoEmulator, "handle", hostile)
    refused = example("carriyo")
    forbidden = {**example("carriyo"), "lines": [{"line_id": "forbidden", "quantity": 1}]}
    path = tmp_path / "evil\x1b[2J\x9b.jsonl"  # a file name is text from outside too
    data = write_jsonl(path, [line("carriyo", refused), line("carriyo", forbidden)])
    result = cli("bulk", str(path), "--sandbox")
    assert len(emulator.cancels("carriyo")) >= 2
    assert raw_controls(result.stderr) == set(), repr(result.stderr)
    assert "\\x1b" in result.stderr  # shown, escaped
    table = report(job_id(data))
    assert raw_controls(table.stdout) == set(), repr(table.stdout)
    assert "EVIL" in table.stdout


# -- 10. the command line ------------------------------------------------------------------


def test_help_lists_bulk_and_bulk_help_works() -> None:
    top = cli("--help")
    assert top.exit_code == 0
    assert "bulk" in top.stdout
    own = cli("bulk", "--help")
    assert own.exit_code == 0, own.stderr
    assert "report" in own.stdout and "FILE" in own.stdout
    run = cli("bulk", "report", "--help")
    assert run.exit_code == 0 and "JOB" in run.stdout


def test_a_file_named_report_is_given_as_dot_slash_report(
    tmp_path: Path, emulator: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "report", mixed())
    as_job = cli("bulk", "report", "--sandbox")  # the subcommand, wanting a JOB
    assert as_job.exit_code == 2
    assert emulator.cancels() == []
    as_file = cli("bulk", "./report", "--sandbox", "-q")
    assert as_file.exit_code == 0, as_file.stderr
    assert len(emulator.cancels()) == 4


def test_options_may_come_before_the_file(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "cancels.jsonl"
    write_jsonl(path, mixed())
    result = cli("bulk", "--sandbox", "-q", "--concurrency", "2", str(path))
    assert result.exit_code == 0, result.stderr
    assert len(emulator.cancels()) == 4


def test_a_missing_file_is_exit_2(tmp_path: Path, emulator: Watched) -> None:
    result = cli("bulk", str(tmp_path / "nope.jsonl"), "--sandbox")
    assert result.exit_code == 2
    assert "is not a readable file" in result.stderr
    assert emulator.log == []


# -- a job's report follows the ledger -----------------------------------------------------


def test_report_lines_match_what_the_emulator_received(tmp_path: Path, emulator: Watched) -> None:
    path = tmp_path / "cancels.jsonl"
    objects = [*mixed(), carriyo_rejected()]
    data = write_jsonl(path, objects)
    assert cli("bulk", str(path), "--sandbox", "-q").exit_code == 1
    rows = json_lines(report(job_id(data), "--format", "json").stdout)
    assert [(r["number"], r["where"], r["platform"]) for r in rows] == [
        (n, f"line {n}", o["platform"]) for n, o in enumerate(objects, start=1)
    ]
    outcomes = [r["outcome"] for r in rows]
    assert outcomes == ["accepted", "accepted", "cancelled", "cancelled", "rejected"]
    assert "no-such-line is not in fulfillment order" in rows[4]["message"]
    assert report(job_id(data)).exit_code == 1  # rejected is worse than pending


def test_a_wait_being_stopped_returns_at_once_with_the_known_state(
    sandbox: Sandbox, example: Any
) -> None:
    # A bulk run stopping with --wait must not sit out a 60-second status pause.
    slept: list[float] = []
    with Client(config=sandbox.client_config(), sleep=slept.append) as client:
        accepted = client.send(example("mirakl"), "mirakl")
        asked = {"n": 0}

        def stop() -> bool:
            asked["n"] += 1
            return asked["n"] > 2  # stopping arrives during the first pause

        final = client.wait(accepted, timeout=600, interval=60, stop=stop)
    assert final.outcome == "accepted" and final.tracking_id == accepted.tracking_id
    # Two steps of a second (stop was asked before each), not the 60-second pause.
    assert slept == [1.0, 1.0], slept
