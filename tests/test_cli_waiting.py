"""``send --wait`` never loses work and always reports (issue 11, item 1).

The accepted result (and its tracking id) is out before the wait starts; Ctrl-C
and an expired ``--wait-timeout`` say the cancel was sent and how to follow it up;
progress goes to stderr through ``Client.wait``'s observer; the final result keeps
its lines. No test sleeps for real: the command's sleep and clock are replaced
(``cancelkit.cli._sleep`` / ``_clock``) and each sleep moves the sandbox clock on.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cancelkit import cli
from cancelkit.core.client import Client
from cancelkit.core.model import CancelResult, LineResult
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.waiting import WaitProgress, keep_lines

ROOT = Path(__file__).resolve().parent.parent
MIRAKL = str(ROOT / "examples" / "mirakl.json")
ABOUTYOU = str(ROOT / "examples" / "aboutyou.json")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch, sleeps: Any) -> Any:
    """The command sleeps on a virtual clock; each sleep moves the sandbox's clock too."""

    def advance(seconds: float) -> None:
        if cli._active_sandbox is not None:
            cli._active_sandbox.advance(seconds)

    sleeps.follow(advance)
    monkeypatch.setattr(cli, "_sleep", sleeps)
    monkeypatch.setattr(cli, "_clock", sleeps.clock)
    return sleeps


def interrupt_on_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the wait sleeps before its first poll."""

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_sleep", ctrl_c)


def still_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every status poll answers "still pending" (the accepted result itself)."""
    original = Client.send

    def send(self: Client, request: Any, platform: str, **kwargs: Any) -> CancelResult:
        accepted = original(self, request, platform, **kwargs)
        monkeypatch.setattr(Client, "status", lambda self, platform, tid: accepted)
        return accepted

    monkeypatch.setattr(Client, "send", send)


# -- the accepted result first, then the final one ------------------------------
def test_json_wait_prints_json_lines_accepted_first_final_last(fake_time: Any) -> None:
    result = run("send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait", "--json")
    assert result.exit_code == 0, result.output
    accepted, final = (json.loads(line) for line in result.stdout.splitlines())
    assert accepted["outcome"] == "accepted" and accepted["tracking_id"]
    assert final["outcome"] == "cancelled"
    assert final["tracking_id"] == accepted["tracking_id"]
    # The final result keeps the line the accepted one listed, now cancelled.
    assert [(line["line_id"], line["status"]) for line in final["lines"]] == [
        ("0002_3202630-A-1", "cancelled")
    ]
    assert fake_time.calls == [2.5]  # one pause before the first poll, none real


def test_text_wait_prints_the_accepted_result_before_the_final_one(fake_time: Any) -> None:
    result = run("send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("accepted  mirakl  tracking id") < out.index("cancelled  mirakl")
    final = out[out.index("cancelled  mirakl") :]
    assert "line 0002_3202630-A-1  quantity 1  cancelled" in final


# -- Ctrl-C ------------------------------------------------------------------------
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_during_the_wait_keeps_the_tracking_id_and_says_how_to_follow_up(
    as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_on_sleep(monkeypatch)
    args = ["send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait", *(["--json"] if as_json else [])]
    result = run(*args)
    assert result.exit_code == 130
    if as_json:
        [line] = result.stdout.splitlines()  # the accepted result, still parseable
        tracking = json.loads(line)["tracking_id"]
        error = json.loads(result.stderr.splitlines()[-1])["error"]
        assert (error["kind"], error["exit_code"]) == ("Interrupted", 130)
        assert error["tracking_id"] == tracking
        follow_up = error["follow_up"]
        assert "WAS sent" in error["message"]
    else:
        assert "accepted  mirakl  tracking id " in result.stdout
        tracking = result.stdout.split("tracking id ")[1].split()[0]
        assert "the cancellation WAS sent" in result.stderr
        assert tracking in result.stderr
        follow_up = result.stderr.split("follow up with: ")[1].strip()
    assert follow_up == f"cancelkit status -p mirakl --sandbox {tracking}"
    # ... and the command it names finds the cancel that was sent.
    status = run(*shlex.split(follow_up)[1:], "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["tracking_id"] == tracking


def test_the_follow_up_command_keeps_the_global_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    interrupt_on_sleep(monkeypatch)
    config = tmp_path / "my config.toml"
    config.write_text("")
    result = run("--config", str(config), "send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait")
    assert result.exit_code == 130, result.output
    follow_up = result.stderr.split("follow up with: ")[1].strip()
    assert shlex.split(follow_up)[:3] == ["cancelkit", "--config", str(config)]


def test_ctrl_c_while_sending_says_the_cancel_may_have_gone_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ctrl_c(self: Client, request: Any, platform: str, **kwargs: Any) -> CancelResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "send", ctrl_c)
    result = run("send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait")
    assert result.exit_code == 130
    assert "may or may not have reached it" in result.stderr
    assert "NOT resent" in result.stderr


# -- --wait-timeout ----------------------------------------------------------------
def test_an_expired_wait_timeout_says_it_gave_up_and_exits_5(
    fake_time: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    still_pending(monkeypatch)
    result = run("send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait", "--wait-timeout", "130")
    assert result.exit_code == cli.EXIT_PENDING == 5
    # First poll after mirakl's 2.5 s, then no faster than its once a minute.
    assert fake_time.calls == [2.5, 60.0, 60.0]
    assert "gave up waiting after 2 min 02 s and 3 polls (--wait-timeout 2 min 10 s)" in (
        result.stderr
    )
    assert "still pending" in result.stderr
    assert "follow up with: cancelkit status -p mirakl --sandbox " in result.stderr
    assert result.stdout.count("accepted  mirakl") == 1  # not printed twice


def test_an_expired_wait_timeout_under_json_ends_stdout_with_the_pending_result(
    fake_time: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    still_pending(monkeypatch)
    result = run(
        "send", "--sandbox", "-p", "mirakl", MIRAKL, "--wait", "--wait-timeout", "1", "-q", "--json"
    )
    assert result.exit_code == 5
    [line] = result.stdout.splitlines()  # no poll fitted: the accepted result is the latest
    assert json.loads(line)["outcome"] == "accepted"
    [error_line] = result.stderr.splitlines()  # -q: nothing but the error object
    error = json.loads(error_line)["error"]
    assert (error["kind"], error["exit_code"]) == ("WaitTimeout", 5)
    assert error["tracking_id"] == json.loads(line)["tracking_id"]


# -- progress on stderr ------------------------------------------------------------
def test_progress_is_one_line_per_poll_when_stderr_is_not_a_terminal(fake_time: Any) -> None:
    result = run("send", "--sandbox", "-p", "aboutyou", ABOUTYOU, "--wait")
    assert result.exit_code == 0, result.output
    tracking = result.stdout.split("tracking id ")[1].split()[0]
    lines = result.stderr.splitlines()
    assert len(lines) == len(fake_time.calls) >= 2  # one before each poll
    assert all(line.startswith(f"waiting for aboutyou to finish {tracking}: ") for line in lines)
    assert "accepted; first poll in 1 s; 0 s so far, gives up at 10 min" in lines[0]
    assert "still pending after 1 poll; next poll in 1.5 s; 1 s so far" in lines[1]
    assert "\r" not in result.stderr  # no redrawing outside a terminal


def test_quiet_shows_no_progress(fake_time: Any) -> None:
    result = run("send", "--sandbox", "-p", "aboutyou", ABOUTYOU, "--wait", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "cancelled  aboutyou" in result.stdout


def test_on_a_terminal_the_line_is_redrawn_with_a_countdown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sleeps: Any
) -> None:
    monkeypatch.setattr(cli, "_sleep", sleeps)
    monkeypatch.setattr(cli, "_clock", sleeps.clock)
    monkeypatch.setattr(cli, "_stderr_columns", lambda: 200)
    report = cli._WaitReport(quiet=False, live=True)
    accepted = CancelResult("mirakl", "accepted", tracking_id="d9574044-59cc-5522")
    report(WaitProgress("sleeping", "mirakl", "d9574044-59cc-5522", 0.0, 0, 600.0, accepted, 3.0))
    report.sleep(3.0)
    report.close()
    assert sleeps.calls == [1.0, 1.0, 1.0]  # slept in steps, to redraw
    # click drops the erase-line escape when stderr is not a real terminal, as here.
    frames = capsys.readouterr().err.split("\r")[1:]
    assert [f.split("first poll in ")[1].split(";")[0] for f in frames[:-1]] == [
        "3 s",
        "2 s",
        "1 s",
        "0 s",
    ]
    assert frames[0].startswith("waiting: mirakl d9574044...: accepted;")
    assert frames[-1] == "waited 3 s (0 polls)\n"


# -- the library: lines kept, progress told, Retry-After honoured ----------------
def test_client_wait_keeps_the_lines_with_their_final_status(
    sandbox_client: Client, example: Callable[[str], dict[str, Any]]
) -> None:
    accepted = sandbox_client.send(example("mirakl"), "mirakl")
    steps: list[WaitProgress] = []
    final = sandbox_client.wait(accepted, on_progress=steps.append)
    assert final.outcome == "cancelled"
    assert [(line.line_id, line.quantity, line.status) for line in final.lines] == [
        ("0002_3202630-A-1", Decimal(1), "cancelled")
    ]
    assert [(s.step, s.polls) for s in steps] == [("sleeping", 0), ("polled", 1)]
    assert steps[0].seconds == 2.5 and steps[0].why == "poll interval"
    assert steps[1].result.outcome == "cancelled"


def test_a_pause_the_platform_imposes_is_told_as_held_back(
    sandbox: Sandbox, sandbox_client: Client, sleeps: Any, example: Any
) -> None:
    accepted = sandbox_client.send(example("mirakl"), "mirakl")
    sandbox.inject("429", "mirakl", retry_after=1)  # the first status poll is refused
    steps: list[WaitProgress] = []
    final = sandbox_client.wait(accepted, on_progress=steps.append)
    assert final.outcome == "cancelled"
    held = [(s.step, s.seconds) for s in steps if s.step == "held_back"]
    assert held[0] == ("held_back", 1.0)  # Retry-After: 1
    assert sum(seconds for _, seconds in held) == sum(sleeps.calls) - 2.5


def test_a_rate_limited_poll_does_not_end_the_wait(
    sandbox_client: Client, sleeps: Any, example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = sandbox_client.send(example("mirakl"), "mirakl")
    limited = CancelResult("mirakl", "unknown", tracking_id=accepted.tracking_id, retry_after=90)
    done = dataclasses.replace(limited, outcome="cancelled", retry_after=None)
    answers = iter([limited, done])
    monkeypatch.setattr(Client, "status", lambda self, platform, tid: next(answers))
    steps: list[WaitProgress] = []
    final = sandbox_client.wait(accepted, on_progress=steps.append)
    assert final.outcome == "cancelled"
    assert sleeps.calls == [2.5, 90]
    assert [s.why for s in steps if s.step == "sleeping"] == ["poll interval", "Retry-After"]


def test_an_expired_timeout_is_told_and_returns_the_pending_lines(
    sandbox_client: Client, example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = sandbox_client.send(example("mirakl"), "mirakl")
    pending = CancelResult("mirakl", "accepted", tracking_id=accepted.tracking_id)
    monkeypatch.setattr(Client, "status", lambda self, platform, tid: pending)
    steps: list[WaitProgress] = []
    final = sandbox_client.wait(accepted, timeout=100, on_progress=steps.append)
    assert final.outcome == "accepted"
    assert [line.status for line in final.lines] == ["pending"]
    assert steps[-1].step == "gave_up" and steps[-1].polls == 2


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("cancelled", "cancelled"),
        ("rejected", "rejected"),
        ("accepted", "pending"),
        ("partial", "unknown"),  # which line fared how is not said
        ("unknown", "unknown"),
    ],
)
def test_keep_lines_gives_unnamed_lines_the_status_the_outcome_implies(
    outcome: Any, status: str
) -> None:
    accepted = CancelResult(
        "p",
        "accepted",
        lines=(LineResult("a", Decimal(1), "pending"), LineResult("b", Decimal(2), "pending")),
        tracking_id="t",
        warnings=("reason ignored",),
    )
    final = keep_lines(accepted, CancelResult("p", outcome, tracking_id="t"))
    assert [(line.line_id, line.quantity, line.status) for line in final.lines] == [
        ("a", Decimal(1), status),
        ("b", Decimal(2), status),
    ]
    assert final.warnings == ("reason ignored",)


def test_keep_lines_keeps_the_lines_the_platform_named() -> None:
    accepted = CancelResult(
        "p",
        "accepted",
        lines=(LineResult("a", Decimal(1), "pending"), LineResult("b", Decimal(1), "pending")),
    )
    said = CancelResult("p", "partial", lines=(LineResult("a", Decimal(1), "cancelled"),))
    final = keep_lines(accepted, said)
    assert [(line.line_id, line.status) for line in final.lines] == [
        ("a", "cancelled"),
        ("b", "unknown"),
    ]
    named = CancelResult("p", "cancelled", lines=(LineResult("a", Decimal(1), "cancelled"),))
    assert keep_lines(CancelResult("p", "accepted", lines=named.lines), named) is named
