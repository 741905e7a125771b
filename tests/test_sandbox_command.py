"""``cancelkit sandbox`` as a tool: the port it bound, the exports a client needs,
a reset that exits, documented control endpoints, and chunked request bodies.

The standalone sandbox runs as a real subprocess; clients reach it the way a person
would, through the ``export`` lines it prints.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from cancelkit.cli import main
from cancelkit.core.registry import PluginRegistry
from cancelkit.core.sandbox.server import Sandbox, read_body, read_chunked

#: Upper bound on anything a subprocess is waited for (a hang fails, never blocks CI).
HANG_GUARD = 60.0
#: The last line of the start-up banner.
BANNER_END = "# control:"


def cancelkit_command() -> list[str]:
    """The installed ``cancelkit`` script of this environment (else ``python -m``)."""
    script = Path(sys.executable).parent / "cancelkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cancelkit.cli"]


def clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without CANCELKIT_* (conftest's state path kept)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANCELKIT_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")  # no config file
    return {**env, **extra}


@dataclass
class RunningSandbox:
    """A ``cancelkit sandbox --port 0`` subprocess and what it printed on start."""

    process: subprocess.Popen[str]
    banner: list[str]
    lines: queue.Queue[str]

    @property
    def url(self) -> str:
        match = re.match(r"cancelkit sandbox on (http://\S+) ", self.banner[0])
        assert match, self.banner
        return match.group(1)

    @property
    def exports(self) -> dict[str, str]:
        """The ``export`` lines, read back as a POSIX shell would."""
        found: dict[str, str] = {}
        for line in self.banner:
            if line.startswith("export "):
                [assignment] = shlex.split(line[len("export ") :])
                name, _, value = assignment.partition("=")
                found[name] = value
        return found


def start_sandbox(state: Path, tmp_path: Path) -> RunningSandbox:
    """Start ``cancelkit sandbox --port 0`` and read its banner (bounded wait)."""
    process = subprocess.Popen(
        [*cancelkit_command(), "sandbox", "--port", "0"],
        env=clean_environment(tmp_path, CANCELKIT_SANDBOX_STATE=str(state)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # a thread, so that reading can time out
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    banner: list[str] = []
    deadline = time.monotonic() + HANG_GUARD
    while not banner or not banner[-1].startswith(BANNER_END):
        try:
            banner.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            process.kill()
            pytest.fail(f"no start-up banner within {HANG_GUARD} s: {banner}")
    return RunningSandbox(process, banner, lines)


def stop(running: RunningSandbox) -> str:
    """SIGTERM it (as a service manager would); what it printed after the banner."""
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(timeout=HANG_GUARD)
    rest = []
    while not running.lines.empty():
        rest.append(running.lines.get())
    return "\n".join(rest)


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path / "standalone-state.json", tmp_path)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=HANG_GUARD)


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cancelkit ARGS`` as a subprocess with ``env`` added to a clean environment."""
    return subprocess.run(
        [*cancelkit_command(), *args],
        env=clean_environment(tmp_path, **(env or {})),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )


# -- the start-up banner ---------------------------------------------------------
def test_port_0_prints_the_port_actually_bound(standalone: RunningSandbox) -> None:
    port = int(standalone.url.rsplit(":", 1)[1])
    assert port != 0
    assert ":0/" not in "\n".join(standalone.banner)
    answer = requests.get(f"{standalone.url}/_sandbox", timeout=5)
    assert answer.status_code == 200
    for platform in answer.json()["platforms"]:
        assert f"  {platform}: {standalone.url}/{platform}/" in standalone.banner


def test_the_exports_cover_every_platform_with_its_poll_interval(
    standalone: RunningSandbox,
) -> None:
    exports = standalone.exports
    settings = requests.get(f"{standalone.url}/_sandbox", timeout=5).json()["platforms"]
    # Every setting of every emulated platform, exactly as the sandbox gives them.
    expected = {
        f"CANCELKIT_{platform.upper()}_{name.upper()}": value
        for platform, values in settings.items()
        for name, value in values.items()
    }
    # ... and the sandbox's own ledger, beside its state: never the real one.
    ledger = exports.pop("CANCELKIT_LEDGER_URL")
    assert ledger.startswith("sqlite:///") and ledger.endswith("standalone-state.ledger.sqlite3")
    assert exports == expected
    assert exports["CANCELKIT_MIRAKL_POLL_INTERVAL"] == "2.5"  # not Mirakl's 60 s
    assert exports["CANCELKIT_ABOUTYOU_POLL_INTERVAL"] == "1"
    assert exports["CANCELKIT_MIRAKL_BASE_URL"] == f"{standalone.url}/mirakl/api"
    # The credentials printed are said to be the sandbox's, not real ones.
    assert any("sandbox's own demo values" in line for line in standalone.banner)


def test_the_exports_point_a_plain_client_at_it_for_every_platform(
    standalone: RunningSandbox, tmp_path: Path
) -> None:
    """The README's flow in another shell: paste the exports, pipe an example in."""
    platforms = sorted(PluginRegistry().examples())
    assert {"mirakl", "aboutyou", "carriyo", "salesforce", "salesforce-flow"} <= set(platforms)
    for platform in platforms:
        example = cli(tmp_path, "example", platform)
        assert example.returncode == 0, example.stderr
        sent = cli(tmp_path, "send", "-p", platform, "-", env=standalone.exports,
                   stdin=example.stdout)  # fmt: skip
        assert sent.returncode == 0, (platform, sent.stdout, sent.stderr)
    # Every call went to the standalone sandbox (it logs each request it serves).
    log = stop(standalone)
    for emulator in ("mirakl", "aboutyou", "carriyo", "salesforce"):
        assert f"POST /{emulator}/" in log, log


@pytest.mark.parametrize("platform", ["mirakl", "aboutyou"])
def test_send_wait_against_the_standalone_sandbox_polls_at_the_sandbox_pace(
    standalone: RunningSandbox, tmp_path: Path, platform: str
) -> None:
    """Without POLL_INTERVAL in the exports, Mirakl would be polled once a minute."""
    example = cli(tmp_path, "example", platform).stdout
    started = time.monotonic()
    sent = cli(tmp_path, "send", "-p", platform, "-", "--wait", env=standalone.exports,
               stdin=example)  # fmt: skip
    elapsed = time.monotonic() - started
    assert sent.returncode == 0, (sent.stdout, sent.stderr)
    assert f"cancelled  {platform}" in sent.stdout
    assert elapsed < 30, elapsed


def test_sigterm_stops_it_and_says_so(standalone: RunningSandbox) -> None:
    rest = stop(standalone)
    assert standalone.process.returncode == 0
    assert rest.endswith("stopped")


def test_an_interrupt_before_serving_stops_at_once_and_saves(tmp_path: Path) -> None:
    """Ctrl-C or SIGTERM while the banner prints: no wait for a loop that never ran."""
    state = tmp_path / "state.json"
    box = Sandbox(PluginRegistry().emulators(), state_path=state)
    outcome: list[str] = []

    def interrupted() -> None:
        raise KeyboardInterrupt

    def serve() -> None:
        try:
            box.serve_forever(ready=interrupted)
        except KeyboardInterrupt:
            outcome.append("interrupted")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.join(timeout=HANG_GUARD)
    assert outcome == ["interrupted"]
    assert state.is_file()  # the state was saved on the way out


def test_a_port_in_use_is_a_usage_error_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(tmp_path, "sandbox", "--port", str(port),
                   env={"CANCELKIT_SANDBOX_STATE": str(tmp_path / "s.json")})  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"--port: cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "internal error" not in done.stderr


# -- reset -------------------------------------------------------------------
def test_reset_restores_the_demo_orders_and_exits(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b'{"mirakl": ')  # even a corrupt file
    done = cli(tmp_path, "sandbox", "--reset", env={"CANCELKIT_SANDBOX_STATE": str(state)})
    assert done.returncode == 0, done.stderr
    assert "reset to the seeded demo orders" in done.stdout
    assert str(state) in done.stdout
    assert not state.exists()


def test_reset_reaches_a_running_sandbox_at_its_next_request(
    standalone: RunningSandbox, tmp_path: Path
) -> None:
    # The Salesforce example cancels all of line W0002: a second send finds nothing left.
    example = cli(tmp_path, "example", "salesforce").stdout

    def send(key: str | None = None) -> int:
        request = example
        if key is not None:
            request = json.dumps({**json.loads(example), "idempotency_key": key})
        done = cli(tmp_path, "send", "-p", "salesforce", "-", env=standalone.exports,
                   stdin=request)  # fmt: skip
        return done.returncode

    # A repeat is held by the sandbox ledger (exit 0, not sent); another request fails.
    assert [send(), send(), send("another")] == [0, 0, 1]
    state = tmp_path / "standalone-state.json"
    reset = cli(tmp_path, "sandbox", "--reset", env={"CANCELKIT_SANDBOX_STATE": str(state)})
    assert reset.returncode == 0
    assert standalone.process.poll() is None  # still serving
    assert send() == 0


def test_the_reset_endpoint_restores_the_demo_orders(standalone: RunningSandbox) -> None:
    answer = requests.post(f"{standalone.url}/_sandbox/reset", timeout=5)
    assert answer.status_code == 200
    assert "mirakl" in answer.json()["reset"]


# -- documentation -----------------------------------------------------------
def test_help_documents_the_control_endpoints_and_reset() -> None:
    shown = CliRunner().invoke(main, ["sandbox", "--help"]).output
    shown += " ".join(shown.split())  # option help wraps with the column widths
    for documented in (
        "POST /_sandbox/reset",
        "POST /_sandbox/faults",
        '"kind": "429"',
        "POST /_sandbox/clock",
        '{"advance": 60}',
        "GET  /_sandbox",
        "--reset",
        "then exit",
        "export CANCELKIT_",
    ):
        assert documented in shown, documented


def test_the_documented_clock_and_fault_endpoints_work(standalone: RunningSandbox) -> None:
    clock = requests.post(f"{standalone.url}/_sandbox/clock", json={"advance": 60}, timeout=5)
    assert clock.status_code == 200 and clock.json()["now"] > time.time() + 50
    fault = requests.post(f"{standalone.url}/_sandbox/faults",
                          json={"kind": "429", "platform": "mirakl", "count": 1,
                                "retry_after": 1}, timeout=5)  # fmt: skip
    assert fault.status_code == 201
    assert fault.json()["queued"][0]["kind"] == "429"


# -- chunked request bodies ----------------------------------------------------
def _pieces(*parts: bytes) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    yield from parts


def test_a_chunked_body_is_read_by_the_standalone_sandbox(standalone: RunningSandbox) -> None:
    answer = requests.post(
        f"{standalone.url}/_sandbox/faults",
        data=_pieces(b'{"kind": "503", ', b'"platform": "carriyo", ', b'"count": 2}'),
        timeout=5,
    )
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert answer.status_code == 201, answer.text
    [queued] = answer.json()["queued"]
    assert (queued["kind"], queued["platform"], queued["count"]) == ("503", "carriyo", 2)


def test_a_chunked_cancel_reaches_the_emulator(sandbox: Sandbox) -> None:
    """An emulator sees the whole chunked body: a valid Mirakl cancel is accepted."""
    from helpers import mirakl_token

    bearer = mirakl_token(sandbox)["access_token"]
    body = (
        b'{"cancelations": [{"order_line_id": "0002_3202630-A-1", "quantity": 1, '
        b'"reason": "CUSTOMER_CANCELATION", "price": {"amount": 15, "currency": "USD"}, '
        b'"shipping_price": {"amount": 8, "currency": "USD"}}]}'
    )
    answer = requests.post(
        f"{sandbox.base_url('mirakl')}/api/v2/orders/0024_COMMERCIAL_ID-A/cancel",
        data=_pieces(body[:20], body[20:77], body[77:]),
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert answer.status_code == 202, answer.text
    assert answer.json()["action_id"]


def _raw_exchange(box: Sandbox, request: bytes) -> bytes:
    host, port = box.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def test_a_malformed_chunked_body_is_a_400_and_the_connection_closes(sandbox: Sandbox) -> None:
    answer = _raw_exchange(
        sandbox,
        b"POST /_sandbox/faults HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in answer
    assert b"is not hexadecimal" in answer


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", b"hello"),  # extension, trailer
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),  # upper-case hex
        (b"0\r\n\r\n", b""),
    ],
)
def test_read_chunked_decodes(encoded: bytes, decoded: bytes) -> None:
    assert read_chunked(io.BytesIO(encoded)) == decoded


@pytest.mark.parametrize(
    ("encoded", "problem"),
    [
        (b"+5\r\nhello\r\n0\r\n\r\n", "not hexadecimal"),
        (b"5\r\nhel", "cut short"),
        (b"5\r\nhelloXX0\r\n\r\n", "not followed by CRLF"),
        (b"5", "cut short"),
        (b"11\r\n" + b"x" * 17 + b"\r\n0\r\n\r\n", "larger than 16 bytes"),
    ],
)
def test_read_chunked_refuses_what_it_cannot_frame(encoded: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        read_chunked(io.BytesIO(encoded), limit=16)


def test_read_body_prefers_chunked_and_refuses_other_codings() -> None:
    headers = Message()
    headers["Transfer-Encoding"] = "chunked"
    headers["Content-Length"] = "3"
    assert read_body(headers, io.BytesIO(b"2\r\nok\r\n0\r\n\r\n")) == b"ok"
    headers.replace_header("Transfer-Encoding", "gzip, chunked")
    with pytest.raises(ValueError, match="not supported"):
        read_body(headers, io.BytesIO(b""))
    plain = Message()
    plain["Content-Length"] = "2"
    assert read_body(plain, io.BytesIO(b"okEXTRA")) == b"ok"


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_reset_never_deletes_what_is_not_a_state_file(tmp_path: Path, kind: str) -> None:
    """`--reset` with CANCELKIT_SANDBOX_STATE pointing at /dev/null must not delete it."""
    import os

    target = tmp_path / "not-a-state-file"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    result = CliRunner().invoke(
        main, ["sandbox", "--reset"], env={"CANCELKIT_SANDBOX_STATE": str(target)}
    )
    assert result.exit_code == 4, result.output
    assert "is not a regular file; not deleting it" in result.output
    assert target.exists()
