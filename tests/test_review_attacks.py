"""Regressions for what an attacking review of the safety work found (each was reproduced).

A number beyond Decimal's range in an answer lost a sent cancel to an internal error;
a deduplicating platform's resend could turn an unknown outcome into "rejected";
configuration errors, plugin traces and shortened error messages could print a secret;
an over-long config path was an internal error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import serving

from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import AuthenticationError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "mirakl.json")
CANARY = "CANARYtok1234567"

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def scripted() -> Iterator[tuple[str, list[Callable[[dict[str, str]], Answer]], list[str]]]:
    """A loopback server answering each request with the next scripted answer."""
    script: list[Callable[[dict[str, str]], Answer]] = []
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            status, headers, body = script.pop(0)(dict(self.headers.items()))
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving(server) as url:
        yield url, script, seen


def mirakl_client(url: str) -> Client:
    return Client(config={"mirakl": {"base_url": url, "access_token": CANARY}}, env={})


def test_a_number_beyond_decimal_range_in_an_answer_is_unknown_not_a_crash(scripted) -> None:
    url, script, seen = scripted
    script.append(lambda h: (202, {}, b'{"action_id": "a1", "x": 1e1000000000000000000}'))
    result = mirakl_client(url).send(jsonutil.loads(Path(EXAMPLE).read_text()), "mirakl")
    assert result.outcome == "unknown" and len(seen) == 1  # sent once, not lost
    assert "NOT resent" in (result.message or "")


def test_a_number_beyond_decimal_range_in_a_request_file_is_exit_2(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    text = Path(EXAMPLE).read_text().replace('"quantity": 1', '"quantity": 1e1000000000000000000')
    request.write_text(text)
    result = CliRunner().invoke(main, ["validate", "-p", "mirakl", str(request)])
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output


@pytest.mark.parametrize("second", ["429", "503", "401", "redirect"])
def test_after_an_unknown_send_a_resend_refusal_never_replaces_the_truth(second: str) -> None:
    # About You deduplicates, so core resends once after "unknown": whatever refusal the
    # resend meets, the first send may have been applied - the outcome stays unknown.
    seen: list[str] = []
    with Sandbox(cancelkit_emulators(), log=seen.append) as box:
        box.inject("html", "aboutyou")  # processed, answer unreadable
        params = {"retry_after": 99} if second in ("429", "503") else {}
        box.inject(second, "aboutyou", **params)
        client = Client(config=box.client_config(), sleep=lambda s: None)
        result = client.send({"lines": [{"line_id": "1001", "quantity": 1}]}, "aboutyou")
    assert result.outcome == "unknown", result.message
    assert "sent 2 times" in (result.message or "")
    assert sum("/orders/cancel" in line for line in seen) == 2


def cancelkit_emulators() -> list[Any]:
    import cancelkit

    return cancelkit.PluginRegistry().emulators()


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://api.example.com/{CANARY} x",
        f"https://user:{CANARY}@api.example.com:99999/api",
        f"ftp://user:{CANARY}@api.example.com/api",
        f"https://user:{CANARY}@api.example.com/ tok",
    ],
)
def test_configuration_errors_never_print_a_secret(
    monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_ACCESS_TOKEN", CANARY)
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", base_url)
    result = CliRunner().invoke(main, ["translate", "-p", "mirakl", EXAMPLE])
    assert result.exit_code == 4, result.output
    assert CANARY not in result.output


def test_a_shortened_error_message_does_not_keep_part_of_a_secret(scripted) -> None:
    url, script, _ = scripted

    def echo(headers: dict[str, str]) -> Answer:
        # Cut at 200 characters, the message would end in the middle of the token.
        body = {"message": "x" * 185 + headers.get("Authorization", "")}
        return 401, {}, json.dumps(body).encode()

    script.append(echo)
    with pytest.raises(AuthenticationError) as caught:
        mirakl_client(url).send(jsonutil.loads(Path(EXAMPLE).read_text()), "mirakl")
    assert CANARY[:8] not in str(caught.value)


def test_plugin_traces_never_print_a_secret(scripted) -> None:
    url, script, _ = scripted
    echo: Callable[[dict[str, str]], Answer] = lambda h: (  # noqa: E731
        400,
        {},
        json.dumps({"code": "E", "message": f"echo {h.get('Authorization')}"}).encode(),
    )
    script.append(echo)
    env = {
        **os.environ,
        "CANCELKIT_TRACE_PLUGINS": "1",
        "CANCELKIT_MIRAKL_BASE_URL": url,
        "CANCELKIT_MIRAKL_ACCESS_TOKEN": CANARY,
    }
    done = subprocess.run(
        [sys.executable, "-m", "cancelkit.cli", "send", "-p", "mirakl", EXAMPLE],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "cancelkit_normalise [hook]" in done.stderr  # the trace ran
    assert CANARY not in done.stdout + done.stderr


def test_a_config_path_too_long_for_the_file_system_is_exit_4(tmp_path: Path) -> None:
    path = tmp_path / ("a" * 5000)
    result = CliRunner().invoke(main, ["--config", str(path), "translate", "-p", "mirakl", EXAMPLE])
    assert result.exit_code == 4, result.output
    assert "internal error" not in result.output


def test_a_sandbox_state_where_no_lock_can_be_made_is_exit_4_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /proc takes no new files: the lock cannot be created, so waiting would not help.
    monkeypatch.setenv("CANCELKIT_SANDBOX_STATE", "/proc/cancelkit-state.json")
    result = CliRunner().invoke(main, ["send", "--sandbox", "-p", "mirakl", EXAMPLE])
    assert result.exit_code == 4, result.output
    assert "cannot lock it" in result.output
