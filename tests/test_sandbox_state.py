"""Sandbox state shared by processes: no lost update, no torn file, clear errors.

The state file is shared by every ``cancelkit send/status --sandbox`` and
``cancelkit sandbox`` process; these tests run real processes against one file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from helpers import mirakl_token

import cancelkit
from cancelkit.cli import main
from cancelkit.plugins.mirakl.emulator import SEED_ORDERS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mirakl.json"
WRITERS = 8
#: Guards against a hung child only; no assertion depends on how long anything takes.
HANG_GUARD = 300

posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fsync of a directory")


@pytest.fixture
def state_path() -> Path:
    """The per-test state file conftest points CANCELKIT_SANDBOX_STATE at."""
    return Path(os.environ["CANCELKIT_SANDBOX_STATE"])


def seed(path: Path) -> None:
    """Write the seeded demo state, as a sandbox that served nothing leaves it."""
    with cancelkit.sandbox(state_path=path):
        pass
    assert path.is_file()


def spawn_senders(path: Path, count: int) -> list[subprocess.Popen[str]]:
    """``count`` concurrent ``cancelkit send --sandbox -p mirakl`` processes on one state file."""
    command = [sys.executable, "-m", "cancelkit.cli", "send", "--sandbox", "-p", "mirakl"]
    env = {**os.environ, "CANCELKIT_SANDBOX_STATE": str(path)}
    senders = []
    for number in range(count):
        # Each its own idempotency key: the sandbox ledger sends one request only once.
        request = path.with_name(f"request-{number}.json")
        example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
        request.write_text(json.dumps({**example, "idempotency_key": f"writer-{number}"}))
        senders.append(
            subprocess.Popen(
                [*command, "--json", str(request)],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    return senders


def tracking_ids(senders: list[subprocess.Popen[str]]) -> list[str]:
    """Wait for every sender; each must have been accepted. Their tracking ids."""
    ids = []
    for sender in senders:
        out, err = sender.communicate(timeout=HANG_GUARD)
        assert sender.returncode == 0, (out, err)
        result = json.loads(out)
        assert result["outcome"] == "accepted", result
        ids.append(result["tracking_id"])
    return ids


def mirakl_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))["mirakl"]


def test_eight_concurrent_sends_lose_no_update(state_path: Path) -> None:
    ids = tracking_ids(spawn_senders(state_path, WRITERS))

    state = mirakl_state(state_path)
    # One token and one cancel action per process, every id counted once.
    assert sorted(state["actions"]) == sorted(ids)
    assert len(set(ids)) == WRITERS
    assert len(state["tokens"]) == WRITERS
    assert state["counter"] == 2 * WRITERS


def test_no_reader_sees_a_partial_file_while_writers_run(state_path: Path) -> None:
    seed(state_path)
    versions = {state_path.read_bytes()}
    senders = spawn_senders(state_path, WRITERS)
    reads = 0
    # Bounded: ends when the writers do (each is bounded by HANG_GUARD).
    while any(sender.poll() is None for sender in senders):
        raw = state_path.read_bytes()  # the path always exists: it is replaced, never removed
        assert set(json.loads(raw)) >= {"mirakl"}, raw[:200]
        versions.add(raw)
        reads += 1
    ids = tracking_ids(senders)
    versions.add(state_path.read_bytes())

    assert reads > 0
    assert len(versions) > 1  # the reader did watch the file change
    assert sorted(mirakl_state(state_path)["actions"]) == sorted(ids)


#: Saves a large state through the state module in a loop, printing each saved
#: generation. With a third argument N > 0, the N-th call of os.fsync prints
#: "fsync" and waits there to be killed: a kill in the middle of a save.
SAVER = r"""
import os
import sys
import time
from pathlib import Path

from cancelkit.core.sandbox.emulator import Emulator
from cancelkit.core.sandbox.state import StateFile

ROWS, STOP_AT = int(sys.argv[2]), int(sys.argv[3])
fsyncs = 0
real_fsync = os.fsync

def fsync(fd):
    global fsyncs
    fsyncs += 1
    if fsyncs == STOP_AT:
        print("fsync", flush=True)
        time.sleep(600)
    real_fsync(fd)

os.fsync = fsync

class Big(Emulator):
    platform = "big"
    production_bases = {}

    def __init__(self):
        self.generation = 0

    def handle(self, request):
        raise NotImplementedError

    def client_settings(self, base_url):
        return {}

    def reset(self):
        self.generation = 0

    def dump_state(self):
        return {"generation": self.generation, "rows": [self.generation] * ROWS}

    def load_state(self, state):
        self.generation = int(state["generation"])

state = StateFile(Path(sys.argv[1]))
emulators = {"big": Big()}
for _ in range(100_000):
    with state.locked():
        state.load(emulators)
        emulators["big"].generation += 1
        state.save(emulators)
    print(emulators["big"].generation, flush=True)
"""
ROWS = 200_000


def start_saver(path: Path, stop_at_fsync: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path), str(ROWS), str(stop_at_fsync)],
        text=True,
        stdout=subprocess.PIPE,
    )


def whole_state(path: Path) -> int:
    """The generation in the file, after checking the file is one complete state."""
    state = json.loads(path.read_text(encoding="utf-8"))["big"]
    assert state["rows"] == [state["generation"]] * ROWS
    return int(state["generation"])


@posix_only
@pytest.mark.parametrize(
    ("stop_at_fsync", "kept"),
    [(3, 1), (4, 2)],
    ids=["before the rename: the previous state", "after the rename: the new state"],
)
def test_kill_9_in_the_middle_of_a_save_keeps_one_whole_state(
    state_path: Path, stop_at_fsync: int, kept: int
) -> None:
    # fsync 1 and 2 belong to the first save (file, directory); 3 and 4 to the second.
    saver = start_saver(state_path, stop_at_fsync)
    try:
        assert saver.stdout is not None
        assert saver.stdout.readline().strip() == "1"
        assert saver.stdout.readline().strip() == "fsync"
        os.kill(saver.pid, signal.SIGKILL)
        saver.communicate(timeout=HANG_GUARD)
    finally:
        if saver.poll() is None:
            saver.kill()
    assert saver.returncode == -signal.SIGKILL
    assert whole_state(state_path) == kept
    # Killed before the rename, the half-done temporary file is all that is left of it.
    leftovers = list(state_path.parent.glob(f".{state_path.name}.*.tmp"))
    assert len(leftovers) == (1 if kept == 1 else 0)


@posix_only
def test_kill_9_at_any_moment_keeps_a_whole_state(state_path: Path) -> None:
    saved = 0
    # A few points in time after the first save of each run: the kill lands
    # wherever it lands (serialising, writing, between saves); none may tear the file.
    for delay in (0.0, 0.004, 0.011, 0.023, 0.047, 0.09, 0.18):
        saver = start_saver(state_path)
        try:
            assert saver.stdout is not None
            assert int(saver.stdout.readline()) == saved + 1  # continues from the file
            time.sleep(delay)
            os.kill(saver.pid, signal.SIGKILL)
            rest, _ = saver.communicate(timeout=HANG_GUARD)
        finally:
            if saver.poll() is None:
                saver.kill()
        assert saver.returncode == -signal.SIGKILL
        printed = int(rest.split()[-1]) if rest.split() else saved + 1
        # The last save that finished, or the one after it if it finished unreported.
        saved = whole_state(state_path)
        assert saved in (printed, printed + 1)


BAD_STATES = {
    "empty": b"",
    "truncated JSON": b'{"mirakl": ',
    "a list": b"[]",
    "a platform that is not an object": b'{"mirakl": 3}',
    "a platform state without its keys": b'{"mirakl": {}}',
    "not UTF-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("content", BAD_STATES.values(), ids=BAD_STATES.keys())
def test_a_bad_state_file_is_a_configuration_error_with_the_way_out(
    state_path: Path, content: bytes
) -> None:
    state_path.write_bytes(content)
    result = CliRunner().invoke(main, ["send", "--sandbox", "-p", "mirakl", str(EXAMPLE)])

    assert result.exit_code == 4, result.output
    assert str(state_path) in result.output
    assert "cancelkit sandbox --reset" in result.output
    assert "internal error" not in result.output
    assert "Traceback" not in result.output
    assert state_path.read_bytes() == content  # left for the user to look at


@posix_only
def test_sandbox_reset_recovers_from_a_corrupt_state_file(state_path: Path) -> None:
    state_path.write_bytes(b'{"mirakl": ')
    leftover = state_path.parent / f".{state_path.name}.killed.tmp"  # a save killed mid-write
    leftover.write_bytes(b'{"mirakl": {"ord')
    # --reset restores the demo orders and exits (it serves nothing).
    done = subprocess.run(
        [sys.executable, "-m", "cancelkit.cli", "sandbox", "--reset"],
        env={**os.environ, "CANCELKIT_SANDBOX_STATE": str(state_path)},
        text=True,
        capture_output=True,
        timeout=HANG_GUARD,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert not state_path.exists()  # no file is the seeded demo data
    assert not leftover.exists()
    seed(state_path)  # a sandbox loads the absent file as the demo orders
    assert mirakl_state(state_path)["orders"] == SEED_ORDERS


def bearer_for(box: Any) -> str:
    return str(mirakl_token(box)["access_token"])


def mirakl_cancel(box: Any, bearer: str) -> str:
    answer = requests.post(
        f"{box.base_url('mirakl')}/api/v2/orders/0024_COMMERCIAL_ID-A/cancel",
        json={
            "cancelations": [
                {
                    "order_line_id": "0002_3202630-A-1",
                    "quantity": 1,
                    "reason": "CUSTOMER_CANCELATION",
                    "price": {"amount": 15, "currency": "USD"},
                    "shipping_price": {"amount": 8, "currency": "USD"},
                }
            ]
        },
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=5,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["action_id"]


def mirakl_poll(box: Any, action_id: str, bearer: str) -> requests.Response:
    return requests.get(
        f"{box.base_url('mirakl')}/api/v2/orders/actions/{action_id}",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=5,
    )


def test_running_sandboxes_see_each_others_updates(state_path: Path) -> None:
    # Both load the (absent) file at start; each request rereads it.
    with (
        cancelkit.sandbox(state_path=state_path) as first,
        cancelkit.sandbox(state_path=state_path) as second,
    ):
        bearer = bearer_for(first)
        action_id = mirakl_cancel(first, bearer)
        assert mirakl_poll(second, action_id, bearer).json()["status"] == "PENDING"
        # Mirakl allows one status call a minute per action: the first sandbox's clock
        # moves on a minute, and sees the poll the second one answered.
        assert mirakl_poll(first, action_id, bearer).status_code == 429
        first.advance(60)
        assert mirakl_poll(first, action_id, bearer).json()["status"] == "SUCCESS"
    assert mirakl_state(state_path)["actions"][action_id]["polls"] == 2


def test_a_state_file_spoilt_while_serving_fails_the_request_not_the_server(
    state_path: Path,
) -> None:
    with cancelkit.sandbox(state_path=state_path) as box:
        bearer = bearer_for(box)
        state_path.write_bytes(b"[]")
        answer = mirakl_poll(box, "nope", bearer)
        assert answer.status_code == 500
        assert answer.json()["code"] == "SANDBOX_STATE"
        assert str(state_path) in answer.json()["message"]
    assert state_path.read_bytes() == b"[]"  # stop() does not write over it


def test_without_a_state_file_no_file_is_touched(tmp_path: Path, state_path: Path) -> None:
    with cancelkit.sandbox() as box:
        mirakl_cancel(box, bearer_for(box))
    assert list(tmp_path.iterdir()) == []
