"""Human output tells the whole story; ``--json`` errors are JSON (issue 11, item 2).

Per-line errors print under their line; a synchronous result under ``--wait`` prints
once; ``validate`` reports every problem in one run (the schema's and the
platform's), as text or ``--json``; under ``--json`` every error is one JSON object
on stderr; an internal error exits 70, not 3, and says how to report it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cancelkit import cli
from cancelkit.core.client import Client

ROOT = Path(__file__).resolve().parent.parent
MIRAKL = str(ROOT / "examples" / "mirakl.json")

#: Three different mistakes: two the schema finds (a currency that is not ISO 4217,
#: a quantity of 0) and one only the platform does (Mirakl needs the order id).
THREE_MISTAKES = {
    "currency": "EURO",
    "reason": "CUSTOMER_REQUEST",
    "lines": [
        {"line_id": "0002_3202630-A-1", "quantity": 0, "price": "15.00", "shipping_price": "8.00"}
    ],
}
EXPECTED = [
    {"field": "currency", "message": "'EURO' is not an ISO 4217 currency code"},
    {"field": "lines[0].quantity", "message": "must be greater than 0"},
    {"field": "order_id", "message": "required by mirakl"},
]


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), input=stdin)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch, sleeps: Any) -> Any:
    """No real sleeping: each sleep moves the command's and the sandbox's clocks."""
    sleeps.follow(lambda s: cli._active_sandbox.advance(s) if cli._active_sandbox else None)
    monkeypatch.setattr(cli, "_sleep", sleeps)
    monkeypatch.setattr(cli, "_clock", sleeps.clock)
    return sleeps


# -- results -------------------------------------------------------------------------
def test_a_line_error_prints_under_its_line_once(fake_time: Any, tmp_path: Path) -> None:
    request = tmp_path / "partial.json"
    request.write_text(json.dumps({"lines": [{"line_id": "1001", "quantity": 1},
                                             {"line_id": "9999", "quantity": 1}]}))  # fmt: skip
    result = run("send", "--sandbox", "-p", "aboutyou", str(request), "--wait")
    assert result.exit_code == 1, result.output
    final = result.stdout[result.stdout.index("partial  aboutyou") :]
    assert (
        "  line 9999  quantity 1  rejected\n"
        "    error ITEM_NOT_CANCELLED: Order item 9999 not found\n"
    ) in final
    assert final.count("Order item 9999 not found") == 1  # not again at the top level


def test_a_retryable_error_says_the_same_cancel_may_succeed_later(
    fake_time: Any, tmp_path: Path
) -> None:
    from cancelkit.plugins.mirakl.scenarios import request

    path = tmp_path / "down.json"  # this seeded order's channel is down: UNAVAILABLE
    path.write_text(json.dumps(request("0026_COMMERCIAL_ID-C", "0004_3202632-C-1")))
    result = run("send", "--sandbox", "-p", "mirakl", str(path), "--wait")
    assert result.exit_code == 1, result.output
    assert "error UNAVAILABLE" in result.stdout
    assert "(nothing was applied; the same cancel may succeed later)" in result.stdout
    final = result.stdout[result.stdout.index("rejected  mirakl") :]
    assert "line 0004_3202632-C-1  quantity 1  rejected" in final  # the line is kept


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_synchronous_result_under_wait_prints_once(as_json: bool) -> None:
    example = str(ROOT / "examples" / "salesforce.json")
    args = ["send", "--sandbox", "--wait", "-p", "salesforce", example]
    result = run(*args, *(["--json"] if as_json else []))
    assert result.exit_code == 0, result.output
    if as_json:
        [line] = result.stdout.splitlines()
        assert json.loads(line)["outcome"] == "cancelled"
    else:
        assert result.stdout.count("cancelled  salesforce") == 1
    assert "waiting" not in result.stderr  # nothing to wait for


# -- validate --------------------------------------------------------------------------
def test_validate_reports_three_different_mistakes_in_one_run() -> None:
    result = run("validate", "-p", "mirakl", "-", stdin=json.dumps(THREE_MISTAKES))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        *(f"error: {e['field']}: {e['message']}" for e in EXPECTED),
        "invalid for mirakl: 3 problems; nothing was sent",
    ]


def test_validate_json_lists_every_problem() -> None:
    result = run("validate", "--json", "-p", "mirakl", "-", stdin=json.dumps(THREE_MISTAKES))
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"valid": False, "platform": "mirakl", "errors": EXPECTED}
    valid = run("validate", "--json", "-p", "mirakl", MIRAKL)
    assert valid.exit_code == 0
    assert json.loads(valid.stdout) == {"valid": True, "platform": "mirakl", "errors": []}


def test_validate_without_a_platform_reports_every_schema_problem() -> None:
    result = run("validate", "--json", "-", stdin=json.dumps(THREE_MISTAKES))
    assert result.exit_code == 2
    assert json.loads(result.stdout)["errors"] == EXPECTED[:2]


def test_validate_finds_problems_behind_hostile_input_too() -> None:
    # A lone surrogate stops the schema from running at all in load_request; validate
    # sets that line aside and goes on to the next line and the platform.
    bad = '{"lines": [{"line_id": "\\ud800", "quantity": 1}, {"line_id": "b", "quantity": 1.5}]}'
    result = run("validate", "--json", "-p", "mirakl", "-", stdin=bad)
    fields = [e["field"] for e in json.loads(result.stdout)["errors"]]
    assert fields[0] == "lines[0].line_id"
    assert "lines[1].quantity" in fields  # mirakl: whole quantities only, on the right line
    assert "order_id" in fields


def test_validate_json_of_a_file_that_is_not_json() -> None:
    result = run("validate", "--json", "-", stdin="{nope")
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)["errors"]
    assert "not valid JSON" in problem["message"]


def test_validate_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sending(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validate sent something")

    monkeypatch.setattr(Client, "send", no_sending)
    monkeypatch.setattr(Client, "_sender", no_sending)
    assert run("validate", "-p", "mirakl", MIRAKL).exit_code == 0
    assert run("validate", "-p", "mirakl", "-", stdin=json.dumps(THREE_MISTAKES)).exit_code == 2


# -- JSON errors on stderr -------------------------------------------------------------
def error_object(result: Result) -> dict[str, Any]:
    """The last stderr line, which under --json is the error object."""
    body: dict[str, Any] = json.loads(result.stderr.splitlines()[-1])["error"]
    return body


def test_bad_input_under_json_is_a_json_error_object_on_stderr() -> None:
    result = run(
        "send", "--json", "--sandbox", "-p", "mirakl", "-",
        stdin='{"order_id": "O", "lines": [{"line_id": "a", "quantity": 0}]}',
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    error = error_object(result)
    assert error["kind"] == "InvalidRequestError" and error["exit_code"] == 2
    assert {"field": "lines[0].quantity", "message": "must be greater than 0"} in error["errors"]


def test_configuration_errors_under_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("CANCELKIT_MIRAKL_CLIENT_ID", "id")
    result = run("send", "--json", "-p", "mirakl", MIRAKL)
    assert result.exit_code == 4
    error = error_object(result)
    assert (error["kind"], error["exit_code"], error["errors"]) == ("ConfigurationError", 4, [])
    assert "CANCELKIT_MIRAKL_CLIENT_SECRET" in error["message"]


@pytest.mark.parametrize("command", [["status", "-p", "nope", "x"], ["platforms"]])
def test_every_json_command_reports_errors_as_json(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cancelkit.core.registry import PluginRegistry

    def broken(self: Any) -> Any:
        raise RuntimeError("boom")

    if command == ["platforms"]:
        monkeypatch.setattr(PluginRegistry, "platforms", broken)
    result = run(*command, "--json")
    assert result.exit_code in (2, 70)
    assert error_object(result)["exit_code"] == result.exit_code


# -- internal errors ---------------------------------------------------------------
def explode(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Client, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(Client, "send", boom)


def test_an_internal_error_exits_70_and_says_how_to_report_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    explode(monkeypatch)
    result = run("send", "--sandbox", "-p", "mirakl", MIRAKL)
    assert result.exit_code == cli.EXIT_INTERNAL == 70
    first, report, note = result.stderr.splitlines()
    assert first == f"internal error: RuntimeError: boom (raised in {__name__})"
    assert "CANCELKIT_DEBUG=1" in report and "report it" in report
    assert "NOT resent" in note  # send: the cancel may already be out
    assert "Traceback" not in result.output


def test_an_internal_error_under_json(monkeypatch: pytest.MonkeyPatch) -> None:
    explode(monkeypatch)
    result = run("send", "--json", "--sandbox", "-p", "mirakl", MIRAKL)
    assert result.exit_code == 70
    error = error_object(result)
    assert (error["kind"], error["exit_code"], error["exception"]) == (
        "InternalError",
        70,
        "RuntimeError",
    )
    assert error["module"] == __name__
    assert "CANCELKIT_DEBUG=1" in error["report"]


def test_cancelkit_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    explode(monkeypatch)
    monkeypatch.setenv("CANCELKIT_DEBUG", "1")
    result = run("send", "--sandbox", "-p", "mirakl", MIRAKL)
    assert isinstance(result.exception, RuntimeError)


def test_the_follow_up_command_quotes_a_hostile_tracking_id() -> None:
    """A tracking id is the platform's text: pasting the suggested command runs nothing."""
    import shlex

    from cancelkit.core.outcomes import accepted_result
    from cancelkit.core.schemas import load_request

    request = load_request({"order_id": "o", "lines": [{"line_id": "l", "quantity": 1}]})
    hostile = "a$(touch /tmp/PWNED); `id` #"
    message = accepted_result("mirakl", request, hostile, 202).message or ""
    command = message.split("follow up with: ", 1)[1]
    assert shlex.split(command) == ["cancelkit", "status", "-p", "mirakl", hostile]


def test_a_reader_closing_the_pipe_is_not_a_bug() -> None:
    """`cancelkit ... | head -n 1`: exit 141 as a shell would, no "report this bug"."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    cancelkit = Path(sys.executable).parent / "cancelkit"
    done = subprocess.run(
        [str(cancelkit), "example", "salesforce"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "internal error" not in done.stderr


def test_a_platforms_escape_codes_are_shown_not_obeyed(capsys: pytest.CaptureFixture[str]) -> None:
    """An error text that would clear the screen or move the cursor prints harmlessly."""
    from cancelkit.cli import _print_result
    from cancelkit.core.model import CancelResult, ResultError

    hostile = "refused\x1b[1A\x1b[2K\x1b]0;pwned\x07\rcancelled"
    _print_result(
        CancelResult("mirakl", "rejected", errors=(ResultError(hostile, "X"),), message=hostile)
    )
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\r" not in shown and "\x07" not in shown
    assert "refused\\x1b[1A\\x1b[2K\\x1b]0;pwned\\x07\\x0dcancelled" in shown
