"""``cancelkit ledger`` (list, show, resolve) and ``send --resend``, on the sandbox's ledger.

Each test has its own ledgers (conftest): the configured one at $CANCELKIT_LEDGER_URL
and the sandbox's own, beside $CANCELKIT_SANDBOX_STATE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cancelkit import PluginRegistry, hookimpl
from cancelkit.cli import main, register_plugin_commands
from cancelkit.core import jsonutil
from cancelkit.core.ledger.keys import request_key
from cancelkit.core.ledger.location import sandbox_ledger_path, sqlite_url
from cancelkit.core.ledger.store import Claimed, Ledger
from cancelkit.core.schemas import load_request

ROOT = Path(__file__).resolve().parent.parent
MIRAKL = str(ROOT / "examples" / "mirakl.json")
CARRIYO = str(ROOT / "examples" / "carriyo.json")


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def send(platform: str, request: str, *extra: str) -> Any:
    return run("send", "--sandbox", "-p", platform, request, *extra)


def state_path() -> Path:
    return Path(os.environ["CANCELKIT_SANDBOX_STATE"])


def sandbox_ledger() -> Ledger:
    return Ledger(sqlite_url(sandbox_ledger_path(state_path())))


def mirakl_actions() -> int:
    """How many cancels the Mirakl emulator has received (each makes one action)."""
    return len(json.loads(state_path().read_text())["mirakl"]["actions"])


def only_entry() -> Any:
    with sandbox_ledger() as ledger:
        (entry,) = ledger.entries()
    return entry


def unknown_mirakl_send() -> Any:
    """A Mirakl cancel the emulator applied, whose answer was lost: outcome unknown."""
    result = send("mirakl", MIRAKL, "--sandbox-fault", "reset")
    assert result.exit_code == 3, result.output
    assert mirakl_actions() == 1
    entry = only_entry()
    assert (entry.outcome, entry.tracking_id) == ("unknown", None)
    return entry


# -- list ---------------------------------------------------------------------------
def test_list_shows_a_sent_entry_and_the_status_command_that_follows_it_up() -> None:
    assert send("mirakl", MIRAKL).exit_code == 0
    entry = only_entry()
    result = run("ledger", "list", "--sandbox")
    assert result.exit_code == 0, result.output
    header, row, *rest = result.stdout.splitlines()
    assert header.split()[:4] == ["KEY", "PLATFORM", "OUTCOME", "TRACKING"]
    short = "sha256:" + entry.key.removeprefix("sha256:")[:12]
    claimed = entry.claimed_at.strftime("%Y-%m-%d %H:%M:%S")
    assert row.split() == [short, "mirakl", "accepted", entry.tracking_id, *claimed.split()]
    assert rest[0] == "follow up:"
    assert rest[1] == (f"  {short}  cancelkit status -p mirakl --sandbox {entry.tracking_id}")
    assert rest[2] == f"1 shown; ledger at {sqlite_url(sandbox_ledger_path(state_path()))}"


def test_list_without_sandbox_reads_the_configured_ledger_not_the_sandboxs() -> None:
    assert send("carriyo", CARRIYO).exit_code == 0
    result = run("ledger", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"0 shown; ledger at {os.environ['CANCELKIT_LEDGER_URL']}"
    ]


def test_unknown_lists_only_unknown_entries_with_what_to_check_and_how_to_resolve() -> None:
    assert send("carriyo", CARRIYO, "--sandbox-fault", "500").exit_code == 3
    assert send("mirakl", MIRAKL).exit_code == 0
    with sandbox_ledger() as ledger:
        (unknown,) = ledger.entries(outcomes=["unknown"])
    result = run("ledger", "list", "--sandbox", "--unknown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:2]] == ["carriyo"]
    assert "mirakl" not in result.stdout
    assert lines[-2] == (
        f"  {unknown.key[:19]}  check the order on carriyo, then: cancelkit ledger resolve "
        f"--sandbox {unknown.key} --as cancelled|rejected (or --resend)"
    )
    assert lines[-1].startswith("1 shown; ledger at sqlite:///")


def test_a_claim_with_no_answer_is_unknown_and_its_attempt_shows_when_past_the_first() -> None:
    url = os.environ["CANCELKIT_LEDGER_URL"]
    with Ledger(url) as ledger:
        ledger.claim("order-77", fingerprint="f" * 64, platform="carriyo", request={"a": 1})
        ledger.claim(
            "order-78",
            fingerprint="e" * 64,
            platform="mirakl",
            request={"a": 2},
        )
        second = ledger.claim(
            "order-78",
            fingerprint="e" * 64,
            platform="mirakl",
            request={"a": 2},
            may_reclaim=lambda entry: True,
        )
        assert isinstance(second, Claimed) and ledger.leave(second)  # its call left
    result = run("ledger", "list", "--unknown")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:3]}
    assert rows["order-77"].split()[1:4] == ["carriyo", "unknown", "-"]
    assert rows["order-78"].endswith("attempt 2")
    assert not rows["order-77"].endswith("attempt 1")
    # mirakl has status, but with no tracking id there is nothing to ask: check by hand
    assert (
        "  order-78  check the order on mirakl, then: cancelkit ledger resolve order-78 "
        "--as cancelled|rejected (or --resend)"
    ) in result.stdout
    # order-77's sender stopped before its call left: nothing to check, send it again
    assert (
        "  order-77  never sent: sending the same request again (or rerunning its job) sends it"
    ) in result.stdout


def test_list_filters_by_outcome_platform_and_limit_newest_first() -> None:
    assert send("carriyo", CARRIYO).exit_code == 0  # cancelled
    assert send("mirakl", MIRAKL).exit_code == 0  # accepted, newer

    def platforms(*args: str) -> list[str]:
        result = run("ledger", "list", "--sandbox", "--json", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["platform"] for line in result.stdout.splitlines()]

    assert platforms() == ["mirakl", "carriyo"]
    assert platforms("--outcome", "cancelled") == ["carriyo"]
    assert platforms("--outcome", "cancelled", "--outcome", "accepted") == ["mirakl", "carriyo"]
    assert platforms("-p", "mirakl") == ["mirakl"]
    assert platforms("--unknown") == []
    assert platforms("--limit", "1") == ["mirakl"]
    limited = run("ledger", "list", "--sandbox", "--limit", "1")
    assert "1 shown (--limit reached; --limit 0 lists all)" in limited.stdout


def test_list_json_is_json_lines_of_whole_entries() -> None:
    assert send("carriyo", CARRIYO).exit_code == 0
    assert send("mirakl", MIRAKL).exit_code == 0
    result = run("ledger", "list", "--sandbox", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2  # one object per line, nothing else on stdout
    entries = [json.loads(line) for line in lines]
    assert [e["outcome"] for e in entries] == ["accepted", "cancelled"]
    assert set(entries[0]) >= {"key", "request", "call", "result", "latest", "claimed_at"}
    assert entries[0]["call"]["headers"]["Authorization"] == "Bearer ***"


def test_list_of_an_unknown_job_is_bad_input() -> None:
    result = run("ledger", "list", "--sandbox", "--job", "nosuchjob")
    assert result.exit_code == 2
    assert "is not a bulk job here" in result.stderr


# -- show ---------------------------------------------------------------------------
def test_show_finds_an_entry_by_the_start_of_its_key() -> None:
    assert send("mirakl", MIRAKL).exit_code == 0
    entry = only_entry()
    result = run("ledger", "show", "--sandbox", entry.key[:19])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"key          {entry.key}\n" in out
    assert "platform     mirakl\n" in out
    assert "outcome      accepted\n" in out
    assert f"tracking id  {entry.tracking_id}\n" in out
    assert "request:\n{\n" in out and '"price": 15.00' in out  # exact decimals
    assert '"Authorization": "Bearer ***"' in out  # the call as stored: secrets masked
    assert "latest status: none" in out
    assert f"follow up: cancelkit status -p mirakl --sandbox {entry.tracking_id}" in out


def test_show_of_an_ambiguous_or_missing_key_is_bad_input() -> None:
    assert send("mirakl", MIRAKL).exit_code == 0
    assert send("carriyo", CARRIYO).exit_code == 0
    ambiguous = run("ledger", "show", "--sandbox", "sha256:")
    assert ambiguous.exit_code == 2
    assert "matches several entries; give more of it" in ambiguous.stderr
    missing = run("ledger", "show", "--sandbox", "nope")
    assert missing.exit_code == 2
    assert "is not in the ledger" in missing.stderr
    empty = run("ledger", "show", "--sandbox", "")
    assert empty.exit_code == 2
    as_json = run("ledger", "show", "--sandbox", "nope", "--json")
    assert json.loads(as_json.stderr)["error"]["kind"] == "InvalidRequestError"


def test_show_json_round_trips_the_entry() -> None:
    assert send("carriyo", CARRIYO, "--sandbox-fault", "500").exit_code == 3
    entry = only_entry()
    result = run("ledger", "show", "--sandbox", entry.key, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    listed = json.loads(run("ledger", "list", "--sandbox", "--json").stdout)
    assert shown == listed
    assert shown["key"] == entry.key
    assert shown["outcome"] == "unknown"
    assert shown["result"]["errors"][0]["code"] == "OUTCOME_UNKNOWN"


# -- resolve ------------------------------------------------------------------------
def test_resolved_as_cancelled_a_send_of_the_same_request_is_held_and_says_cancelled() -> None:
    entry = unknown_mirakl_send()
    resolved = run("ledger", "resolve", "--sandbox", entry.key[:19], "--as", "cancelled")
    assert resolved.exit_code == 0, resolved.output
    assert resolved.stdout.splitlines()[0] == (
        f"resolved {entry.key} as cancelled: resolved by hand as cancelled"
    )
    again = send("mirakl", MIRAKL)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("cancelled  mirakl")
    assert "warning: already sent at" in again.stdout
    assert f"(ledger key {entry.key}); not sent again" in again.stdout
    assert mirakl_actions() == 1  # nothing went out
    settled = only_entry()
    assert (settled.outcome, settled.note) == ("cancelled", "resolved by hand as cancelled")


def test_resolve_as_refuses_an_entry_whose_outcome_is_known() -> None:
    assert send("carriyo", CARRIYO).exit_code == 0
    entry = only_entry()
    assert entry.outcome == "cancelled"
    result = run("ledger", "resolve", "--sandbox", entry.key, "--as", "rejected")
    assert result.exit_code == 2
    assert "is cancelled already: its outcome is known" in result.stderr
    assert only_entry().outcome == "cancelled"


def test_resolve_takes_exactly_one_of_as_and_resend() -> None:
    entry = unknown_mirakl_send()
    for extra in ([], ["--as", "cancelled", "--resend"]):
        result = run("ledger", "resolve", "--sandbox", entry.key, *extra)
        assert result.exit_code == 2, result.output
        assert "give either --as cancelled|rejected or --resend" in result.stderr
    noted = run("ledger", "resolve", "--sandbox", entry.key, "--resend", "--note", "x")
    assert noted.exit_code == 2
    assert only_entry().outcome == "unknown"
    assert mirakl_actions() == 1


def test_resolve_json_prints_the_resolved_entry() -> None:
    entry = unknown_mirakl_send()
    result = run(
        "ledger", "resolve", "--sandbox", entry.key, "--as", "rejected", "--note", "not there",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["key"], body["outcome"], body["note"]) == (entry.key, "rejected", "not there")


def test_resolve_resend_sends_the_recorded_request_again() -> None:
    entry = unknown_mirakl_send()
    result = run("ledger", "resolve", "--sandbox", entry.key[:19], "--resend")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("accepted  mirakl  tracking id ")
    assert "already sent" not in result.stdout
    assert mirakl_actions() == 2  # the emulator received a second cancel
    again = only_entry()
    assert (again.key, again.attempt, again.outcome) == (entry.key, 2, "accepted")


def test_resolve_resend_refuses_an_applied_entry() -> None:
    assert send("carriyo", CARRIYO).exit_code == 0
    result = run("ledger", "resolve", "--sandbox", only_entry().key, "--resend")
    assert result.exit_code == 2
    assert "carriyo applied it, so it is not sent again" in result.stderr


def test_control_characters_in_a_note_are_shown_not_obeyed() -> None:
    entry = unknown_mirakl_send()
    note = "checked\x1b[2J\x1b]0;pwned\x07\rcancelled\nfake line\x9b"
    resolved = run("ledger", "resolve", "--sandbox", entry.key, "--as", "rejected", "--note", note)
    assert resolved.exit_code == 0, resolved.output
    shown = run("ledger", "show", "--sandbox", entry.key)
    for result in (resolved, shown):
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\r" not in result.stdout and "\x9b" not in result.stdout
        assert "checked\\x1b[2J\\x1b]0;pwned\\x07\\x0dcancelled\\x0afake line\\x9b" in result.stdout
    assert not any(line.startswith("fake") for line in shown.stdout.splitlines())


def test_control_characters_in_a_key_are_shown_not_obeyed() -> None:
    key = "evil\x1b[31m\nkey"
    with Ledger(os.environ["CANCELKIT_LEDGER_URL"]) as ledger:
        claimed = ledger.claim(key, fingerprint="a" * 64, platform="carriyo", request={})
        assert isinstance(claimed, Claimed) and ledger.leave(claimed)
    listed = run("ledger", "list")
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.stdout
    assert "evil\\x1b[31m" in listed.stdout
    # the follow-up's key: quoted for the shell, on one line
    assert "resolve 'evil\\x1b[31m\\x0akey' --as cancelled|rejected" in listed.stdout
    settled = run("ledger", "resolve", key, "--as", "cancelled")
    assert settled.exit_code == 0, settled.output
    assert "\x1b" not in settled.stdout
    again = run("ledger", "resolve", key, "--as", "cancelled")
    assert again.exit_code == 2
    assert "\x1b" not in again.stderr


# -- send --resend --------------------------------------------------------------------
def test_a_repeated_send_is_held_visibly_and_send_resend_sends_again() -> None:
    assert send("mirakl", MIRAKL).exit_code == 0
    held = send("mirakl", MIRAKL)
    assert held.exit_code == 0, held.output
    assert "  warning: already sent at " in held.stdout
    assert "; not sent again" in held.stdout
    held_json = send("mirakl", MIRAKL, "--json")
    body = json.loads(held_json.stdout)
    assert body["details"]["ledger"]["held"] is True
    assert any("not sent again" in warning for warning in body["warnings"])
    assert mirakl_actions() == 1
    # Accepted by Mirakl: the ledger knows it was taken, so --resend sends nothing.
    refused = send("mirakl", MIRAKL, "--resend")
    assert refused.exit_code == 2, refused.output
    assert "resend: the ledger holds key" in refused.output
    assert mirakl_actions() == 1
    # Once settled as not applied (a person checked the platform), --resend sends it.
    key = only_entry().key
    assert run("ledger", "resolve", "--sandbox", key, "--as", "rejected").exit_code == 0
    resent = send("mirakl", MIRAKL, "--resend", "--json")
    assert resent.exit_code == 0, resent.output
    body = json.loads(resent.stdout)
    assert "held" not in body["details"]["ledger"]
    assert body["warnings"] == []
    assert mirakl_actions() == 2
    assert only_entry().attempt == 3  # the claim, the resolution, the resend


def test_send_help_explains_resend() -> None:
    result = run("send", "--help")
    assert "--resend" in result.output
    assert "only after checking on the platform that the earlier send was not" in " ".join(
        result.output.split()
    )


# -- where the ledger is -------------------------------------------------------------
def test_a_ledger_url_with_a_password_is_never_printed_with_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-pass-word"
    with_password = postgres_url.replace("://cancelkit@", f"://cancelkit:{secret}@")
    assert secret in with_password
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", with_password)
    with Ledger(with_password) as ledger:
        ledger.claim("k-1", fingerprint="b" * 64, platform="carriyo", request={})
    result = run("ledger", "list")
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert result.stdout.splitlines()[-1] == (
        f"1 shown; ledger at {with_password.replace(secret, '***')}"
    )


def test_an_unreachable_ledger_is_a_configuration_error_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CANCELKIT_LEDGER_URL", "postgresql://me:hunter2-secret@127.0.0.1:1/x")
    for args in (["ledger", "list"], ["ledger", "show", "k"], ["ledger", "list", "--json"]):
        result = run(*args)
        assert result.exit_code == 4, result.output
        assert "hunter2-secret" not in result.output
        assert "***" in result.output


def test_the_config_files_ledger_url_is_the_one_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path / "from-config.sqlite3")
    config = tmp_path / "config.toml"
    config.write_text(f'[default]\nledger_url = "{url}"\n')
    monkeypatch.delenv("CANCELKIT_LEDGER_URL")
    result = run("--config", str(config), "ledger", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"0 shown; ledger at {url}"


# -- the command itself ----------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["list"], ["show"], ["resolve"]])
def test_every_ledger_command_has_help_with_an_example(command: list[str]) -> None:
    result = run("ledger", *command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert " ".join(["cancelkit ledger", *command]) in result.output


def test_help_lists_ledger_without_importing_it_or_sqlalchemy() -> None:
    code = (
        "import json, sys\n"
        "from cancelkit.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *help_lines, modules = done.stdout.strip().splitlines()
    assert any(
        line.split()[:1] == ["ledger"] and "Audit the ledger: list, show and resolve sends." in line
        for line in help_lines
    )
    loaded = set(json.loads(modules))
    assert "cancelkit.commands.ledger" not in loaded
    assert not any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in loaded)


def test_a_plugin_may_not_replace_the_ledger_command(capsys: pytest.CaptureFixture[str]) -> None:
    class Hijacking:
        @hookimpl
        def cancelkit_register_commands(self, cli: click.Group) -> None:
            @click.command("ledger")
            def fake_ledger() -> None:
                """Not the real ledger."""

            cli.add_command(fake_ledger)

    registry = PluginRegistry(entry_points_to_load=())
    registry.register(Hijacking(), "hijacking")
    group = type(main)("cancelkit")
    register_plugin_commands(registry, group)
    assert "plugin hijacking may not replace the command ledger" in capsys.readouterr().err
    command = group.get_command(click.Context(group), "ledger")
    assert isinstance(command, click.Group)
    assert set(command.commands) == {"list", "show", "resolve"}


def test_a_held_unknown_send_says_how_to_settle_it() -> None:
    entry = unknown_mirakl_send()
    held = send("mirakl", MIRAKL)
    assert held.exit_code == 3
    assert "not sent again" in held.stdout
    assert held.stderr.splitlines()[-1] == (
        "note: the ledger holds this request with its outcome unknown; check the order on "
        f"mirakl, then: cancelkit ledger resolve --sandbox {entry.key} "
        "--as cancelled|rejected (or --resend)"
    )
    assert mirakl_actions() == 1


def test_a_held_claim_with_no_answer_is_not_told_twice_how_to_settle_it() -> None:
    # A first sandbox run writes its state file (a sandbox without one empties its ledger).
    assert send("mirakl", MIRAKL, "--dry-run").exit_code == 0
    request = load_request(jsonutil.loads(Path(MIRAKL).read_text()))
    key, fingerprint = request_key("mirakl", request, "127.0.0.1")  # the sandbox's host
    with sandbox_ledger() as ledger:  # a sender that died once its call had left
        claimed = ledger.claim(key, fingerprint=fingerprint, platform="mirakl", request={})
        assert isinstance(claimed, Claimed) and ledger.leave(claimed)
    held = send("mirakl", MIRAKL)
    assert held.exit_code == 3, held.output
    assert "with no answer recorded" in held.stdout
    assert held.stdout.count("ledger resolve") == 1
    assert "ledger resolve" not in held.stderr
    assert mirakl_actions() == 0  # nothing went out
