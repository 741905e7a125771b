"""The command line: contract commands, exit codes, help, secrets, stdin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cancelkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "mirakl.json")
COMMANDS = ["platforms", "validate", "translate", "send", "status", "sandbox", "cassettes"]


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "cancelkit " + command in result.output


def test_translate_prints_the_contract_json() -> None:
    result = run("translate", "-p", "mirakl", EXAMPLE)
    assert result.exit_code == 0, result.output
    call = json.loads(result.output)
    assert set(call) == {"method", "url", "headers", "body"}
    assert call["headers"]["Authorization"] == "Bearer ***"
    assert '"amount": 15.00' in result.output  # exact, not 15.0


def test_translate_reads_stdin() -> None:
    result = run(
        "translate", "-p", "mirakl", "-", "--format", "curl", stdin=Path(EXAMPLE).read_text()
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("curl -X POST https://miraklconnect.com/api/v2/orders/")


@pytest.mark.parametrize("fmt", ["json", "curl", "http"])
def test_secrets_print_as_stars_even_when_configured(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_ACCESS_TOKEN", "tok-live-0123456789abcdef")
    monkeypatch.setenv("CANCELKIT_MIRAKL_CLIENT_SECRET", "sec-live-0123456789abcdef")
    result = run("translate", "-p", "mirakl", EXAMPLE, "--format", fmt)
    assert result.exit_code == 0
    assert "0123456789abcdef" not in result.output
    assert "Bearer ***" in result.output


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "the request must be a JSON object, not an array"),
        (
            '{"order_id": "O", "lines": [{"line_id": "a", "quantity": 0}]}',
            "lines[0].quantity: must be greater than 0",
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "translate", "send"])
def test_bad_input_exits_2_with_the_field_and_no_traceback(
    command: str, stdin: str, message: str
) -> None:
    args = [command, "-"] if command == "validate" else [command, "-p", "mirakl", "-", "--sandbox"]
    if command == "translate":
        args.remove("--sandbox")
    result = run(*args, stdin=stdin)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_validate_against_a_platform() -> None:
    assert run("validate", EXAMPLE).output.strip() == "ok: valid"
    assert run("validate", "-p", "mirakl", EXAMPLE).output.strip() == "ok: valid for mirakl"
    result = run(
        "validate", "-p", "mirakl", "-", stdin='{"lines": [{"line_id": "a", "quantity": 1}]}'
    )
    assert result.exit_code == 2
    assert "order_id: required by mirakl" in result.output


def test_unknown_platform_and_usage_errors_exit_2() -> None:
    assert run("translate", "-p", "nope", EXAMPLE).exit_code == 2
    assert run("translate", EXAMPLE).exit_code == 2  # -p missing
    assert run("send", "-p", "mirakl", EXAMPLE, "--sandbox-fault", "500").exit_code == 2


def test_send_sandbox_then_status_share_state() -> None:
    sent = run("send", "--sandbox", "-p", "mirakl", EXAMPLE, "--json")
    assert sent.exit_code == 0, sent.output
    result = json.loads(sent.output)
    assert result["outcome"] == "accepted"
    tracking = result["tracking_id"]
    first = json.loads(run("status", "--sandbox", "-p", "mirakl", tracking, "--json").output)
    assert first["outcome"] == "accepted"  # the action, sent by another process, is found
    # A second status within Mirakl's minute per action is refused by the (shared)
    # sandbox with Retry-After 60, longer than core waits: the answer says so.
    second = run("status", "--sandbox", "-p", "mirakl", tracking, "--json")
    assert second.exit_code == 3
    again = json.loads(second.output)
    assert again["outcome"] == "unknown" and "rate limited" in again["message"]


def test_send_wait_polls_to_the_final_outcome() -> None:
    result = run("send", "--sandbox", "-p", "mirakl", EXAMPLE, "--wait")
    assert result.exit_code == 0, result.output
    assert re.search(r"^accepted  mirakl", result.output, re.M)
    assert re.search(r"^cancelled  mirakl", result.output, re.M)


def test_rejected_exits_1(tmp_path: Path) -> None:
    data = json.loads(Path(EXAMPLE).read_text())
    data["order_id"] = "NO-SUCH-ORDER"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    result = run("send", "--sandbox", "-p", "mirakl", str(path))
    assert result.exit_code == 1
    assert "DATA_NOT_FOUND" in result.output


def test_failed_action_exits_1_with_its_code() -> None:
    # --wait --json prints JSON Lines: the accepted result first, the final one last.
    sent = json.loads(
        run(
            "send",
            "--sandbox",
            "-p",
            "mirakl",
            str(ROOT / "examples" / "mirakl-shipped.json"),
            "--json",
            "--wait",
        ).stdout.splitlines()[-1]
    )
    assert sent["outcome"] == "rejected"
    assert sent["errors"][0]["code"] == "ORDER_IN_WRONG_STATE"


@pytest.mark.parametrize("fault", ["500", "slow", "html", "malformed"])
def test_unknown_outcome_exits_3_and_says_so(fault: str, monkeypatch) -> None:
    result = run("send", "--sandbox", "--sandbox-fault", fault, "-p", "mirakl", EXAMPLE)
    assert result.exit_code == 3, result.output
    assert "outcome unknown" in result.output and "NOT resent" in result.output


def test_authentication_failure_exits_4_without_the_secret(monkeypatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("CANCELKIT_MIRAKL_TOKEN_URL", "http://127.0.0.1:9/token")
    monkeypatch.setenv("CANCELKIT_MIRAKL_CLIENT_ID", "id")
    result = run("send", "-p", "mirakl", EXAMPLE)
    assert result.exit_code == 4
    assert "missing setting CANCELKIT_MIRAKL_CLIENT_SECRET" in result.output


def test_connection_refused_exits_3_and_says_nothing_was_sent(monkeypatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("CANCELKIT_MIRAKL_ACCESS_TOKEN", "tok-live-0123456789abcdef")
    result = run("send", "-p", "mirakl", EXAMPLE)
    assert result.exit_code == 3
    assert "nothing was sent" in result.output
    assert "0123456789abcdef" not in result.output


def test_dry_run_sends_nothing() -> None:
    result = run("send", "--sandbox", "--dry-run", "-p", "mirakl", EXAMPLE)
    assert result.exit_code == 0
    assert json.loads(result.output)["method"] == "POST"
    status = run("status", "--sandbox", "-p", "mirakl", "d9574044-59cc-5522-9224-02264186fae0")
    assert status.exit_code == 1  # no action was ever created


@pytest.mark.parametrize("platform", ["salesforce", "salesforce-flow"])
def test_salesforce_secrets_never_print(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_SALESFORCE_ACCESS_TOKEN", "00Dxx!AQ0AQ-live-0123456789abcdef")
    monkeypatch.setenv("CANCELKIT_SALESFORCE_CLIENT_SECRET", "sec-live-0123456789abcdef")
    monkeypatch.setenv("CANCELKIT_SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    for fmt in ("json", "curl", "http"):
        result = run(
            "translate", "-p", platform, str(ROOT / "examples" / "salesforce.json"), "--format", fmt
        )
        assert result.exit_code == 0, result.output
        assert "0123456789abcdef" not in result.output
        assert "Bearer ***" in result.output


def test_platforms_json_lists_capabilities() -> None:
    result = run("platforms", "--json")
    assert result.exit_code == 0
    [mirakl] = [p for p in json.loads(result.output)["platforms"] if p["name"] == "mirakl"]
    assert mirakl["capabilities"]["mode"] == "async"


def _platform_of(example: Path) -> str:
    """examples/<platform>[-<variant>].json; the longest platform name that fits wins."""
    from cancelkit import PluginRegistry

    names = sorted(PluginRegistry().platforms(), key=len, reverse=True)
    return next(n for n in names if example.stem == n or example.stem.startswith(n + "-"))


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.json")), ids=lambda p: p.name)
def test_every_example_works_with_send_sandbox(path: Path) -> None:
    platform = _platform_of(path)
    result = run("send", "--sandbox", "--wait", "-p", platform, str(path), "--json")
    outcome = json.loads(result.stdout.splitlines()[-1])["outcome"]  # JSON Lines: final last
    expected = "rejected" if "shipped" in path.stem else "cancelled"
    assert outcome == expected, result.output
    assert result.exit_code == (1 if expected == "rejected" else 0)


def test_an_unexpected_error_says_it_is_a_bug_and_exits_70(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cancelkit.core.client import Client

    def explode(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Client, "translate", explode)
    result = run("translate", "-p", "mirakl", EXAMPLE)
    assert result.exit_code == 70  # not 3: a crash is not an unknown outcome
    assert "internal error: RuntimeError: boom" in result.output
    assert "CANCELKIT_DEBUG=1" in result.output
    assert "Traceback" not in result.output


def test_cassettes_check_reproduces_a_platform_from_the_command_line() -> None:
    result = run("cassettes", "check", "aboutyou", "--out", str(ROOT / "cassettes"))
    assert result.exit_code == 0, result.output
    count = len(list((ROOT / "cassettes" / "aboutyou").glob("*.yaml")))
    assert count >= 5 and f"{count} of {count} cassettes reproduced" in result.output
