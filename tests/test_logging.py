"""Logging and a look at the wire (issue 11, item 3).

cancelkit logs on named loggers (``cancelkit``, ``cancelkit.http``,
``cancelkit.platform.<name>``) and is silent until told otherwise; ``-v`` shows the
HTTP exchange on stderr as httpie's ``--print=Hh`` does, ``-vv`` adds the bodies
(``HhBb``); no secret ever shows, token requests included; and every result built
from an answer names the platform's request id in ``details["request_id"]``.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import ROOT

from cancelkit.cli import main
from cancelkit.core import answers, logs
from cancelkit.core.client import Client
from cancelkit.core.http import HttpResponse
from cancelkit.core.model import CancelResult
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.secrets import Scrubber
from cancelkit.core.sending import Delivery
from cancelkit.plugins.aboutyou import emulator as aboutyou_emulator
from cancelkit.plugins.carriyo import emulator as carriyo_emulator
from cancelkit.plugins.mirakl import emulator as mirakl_emulator
from cancelkit.plugins.salesforce import emulator as salesforce_emulator

PLATFORMS = ("mirakl", "salesforce", "salesforce-flow", "carriyo", "aboutyou")
EXAMPLES = ROOT / "examples"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def cli(*args: str, input: str | None = None) -> Result:
    # click 8.2+ keeps stderr apart from stdout in the result.
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def send(platform: str, *flags: str) -> Result:
    """``cancelkit send --sandbox`` of the example, under a new idempotency key each time
    (the sandbox ledger would hold a repeat: nothing would go out to be logged)."""
    example = json.loads((EXAMPLES / f"{platform}.json").read_text(encoding="utf-8"))
    request = json.dumps({**example, "idempotency_key": uuid.uuid4().hex})
    return cli(*flags, "send", "--sandbox", "-p", platform, "-", input=request)


# -- silent by default -------------------------------------------------------------
def test_the_cancelkit_logger_has_only_a_null_handler_and_nothing_is_printed(
    capsys: pytest.CaptureFixture[str], sandbox: Sandbox, example: Any
) -> None:
    root_handlers = list(logging.getLogger().handlers)
    with Client(config=sandbox.client_config()) as client:
        result = client.send(example("mirakl"), "mirakl")
    assert result.outcome == "accepted"
    handlers = logging.getLogger("cancelkit").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]
    assert logging.getLogger("cancelkit.http").handlers == []
    assert logging.getLogger("cancelkit.platform.mirakl").handlers == []
    assert logging.getLogger().handlers == root_handlers  # no basicConfig
    assert capsys.readouterr() == ("", "")


def test_without_v_the_cli_prints_no_exchange_and_leaves_no_handler() -> None:
    done = send("mirakl")
    assert done.exit_code == 0, done.output
    assert done.stderr == ""
    verbose = send("mirakl", "-v")
    assert verbose.exit_code == 0 and "HTTP/1.1 202 Accepted" in verbose.stderr
    # The -v handler is gone once the command ends: the next command is silent again.
    assert [type(h) for h in logging.getLogger("cancelkit").handlers] == [logging.NullHandler]
    assert logging.getLogger("cancelkit").level == logging.NOTSET
    assert send("mirakl").stderr == ""


# -- the exchange: -v and -vv ------------------------------------------------------
def test_v_shows_request_and_status_lines_with_headers_but_no_bodies() -> None:
    done = send("mirakl", "-v")
    assert done.exit_code == 0, done.stderr
    err = done.stderr
    assert "accepted  mirakl" in done.stdout and "accepted" not in err.split("\n")[0]
    # The token request, then the cancel, each followed by its answer (httpie's H, h).
    expected_in_order = [
        "POST /mirakl/auth/oauth/token HTTP/1.1",
        "HTTP/1.1 200 OK",
        "POST /mirakl/api/v2/orders/0024_COMMERCIAL_ID-A/cancel HTTP/1.1",
        "Authorization: Bearer ***",
        "HTTP/1.1 202 Accepted",
        "X-Request-Id: ",
        "mirakl: accepted (HTTP 202, request id ",
    ]
    at = 0
    for text in expected_in_order:
        at = err.index(text, at) + len(text)  # each after the one before
    assert re.search(r"^Host: 127\.0\.0\.1:\d+$", err, re.MULTILINE)
    assert "Content-Type: application/json" in err
    # No bodies at -v.
    assert "cancelations" not in err and "access_token" not in err
    assert "client_secret" not in err


def test_vv_adds_the_bodies_json_indented_secrets_masked() -> None:
    done = send("mirakl", "-vv")
    assert done.exit_code == 0, done.stderr
    err = done.stderr
    assert "client_secret=***" in err  # the token request's form
    assert "grant_type=client_credentials" in err
    assert '"access_token": "***"' in err  # the token answer
    assert '"token_type": "Bearer"' in err
    assert '"cancelations": [' in err  # the cancel, indented
    assert '"amount": 15.00' in err  # exact decimals
    assert '"action_id": ' in err  # the answer's body
    assert "sandbox-client-secret" not in err


def test_v_also_shows_status_calls() -> None:
    first = cli("send", "--sandbox", "-p", "mirakl", str(EXAMPLES / "mirakl.json"), "--json")
    tracking = json.loads(first.stdout)["tracking_id"]
    done = cli("-v", "status", "--sandbox", "-p", "mirakl", tracking)
    assert f"GET /mirakl/api/v2/orders/actions/{tracking} HTTP/1.1" in done.stderr
    assert "X-Request-Id: " in done.stderr


# -- no secret ever shows ----------------------------------------------------------
#: Real-looking credentials, with the characters that URL-encode and JSON-escape.
REAL_LOOKING = {
    (mirakl_emulator, "SANDBOX_CLIENT_SECRET"): "mk_live_Q9v+Xr2/8LtZ=w4&pN7s",
    (salesforce_emulator, "SANDBOX_CLIENT_SECRET"): "3MVG9_sfSecret+7Hq/2Lz=KpX8&1",
    (carriyo_emulator, "SANDBOX_CLIENT_SECRET"): "cy_secret_8Jd+3Kq/1Zx=Tw6&Rb2",
    (carriyo_emulator, "SANDBOX_API_KEY"): "cy_key_Nq4Wz7Pt2Ls9Hd5Vb1Xc",
    (carriyo_emulator, "SANDBOX_TENANT"): "tenant-7f3a9c1e5b",
    (aboutyou_emulator, "SANDBOX_API_KEY"): "ay_live_5Gh8Jk2Lm6Np9Qr3St7",
}


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_secret_reaches_stderr_with_vv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str, as_json: bool
) -> None:
    for (module, name), value in REAL_LOOKING.items():
        monkeypatch.setattr(module, name, value)
    # The token endpoints were declared with the sandbox secrets: they take these instead.
    issuers = {
        mirakl_emulator: mirakl_emulator.MiraklEmulator.tokens,
        salesforce_emulator: salesforce_emulator.SalesforceEmulator.tokens,
        carriyo_emulator: carriyo_emulator.CarriyoEmulator.tokens,
    }
    for module, issuer in issuers.items():
        monkeypatch.setattr(issuer, "client_secret", module.SANDBOX_CLIENT_SECRET)
    flags = ("--json",) if as_json else ()
    done = cli("-vv", "send", "--sandbox", "-p", platform, str(EXAMPLES / f"{platform}.json"),
               *flags)  # fmt: skip
    assert done.exit_code == 0, done.output  # the real-looking credentials were accepted
    # The run-time tokens the emulators issued are secrets too.
    state = json.loads((tmp_path / "sandbox-state.json").read_text())
    issued = [t for emulated in state.values() for t in emulated.get("tokens", [])]
    secrets = [*REAL_LOOKING.values(), *issued]
    forms = {f for s in secrets for f in (s, json.dumps(s)[1:-1], _quoted(s))}
    shown = done.stdout + done.stderr
    assert [s for s in forms if s in shown] == []
    # ... and the exchange was shown, credentials masked.
    assert "HTTP/1.1 200 OK" in done.stderr
    assert "Authorization: Bearer ***" in done.stderr or "X-API-Key: ***" in done.stderr


def _quoted(value: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(value)


def test_the_scrubbing_filter_covers_every_cancelkit_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "pw-LEAKED-9f8e7d6c"
    Scrubber().add(secret)  # every scrubber feeds the process-wide filter
    caplog.set_level(logging.DEBUG)
    logs.http_log.debug("body %s", secret)
    logs.platform_logger("acme").info("said %s", secret)
    assert secret not in caplog.text
    assert caplog.text.count("***") == 2


def test_the_cli_handler_masks_records_of_loggers_it_never_filtered() -> None:
    secret = "pw-CHILD-1a2b3c4d"
    Scrubber().add(secret)
    written: list[str] = []
    undo = logs.show_on_stderr(2, written.append)
    try:
        # A plugin's own logger under cancelkit, with no filter of its own.
        logging.getLogger("cancelkit.someplugin.detail").debug("token %s", secret)
    finally:
        undo()
    assert written == ["token ***"]


def test_bodies_mask_secret_fields_the_scrubber_has_not_seen_yet() -> None:
    scrubber = Scrubber()
    token_answer = b'{"access_token": "fresh-unknown-token", "token_type": "Bearer", "n": 1.50}'
    shown = logs.render_body(token_answer, "application/json", scrubber)
    assert "fresh-unknown-token" not in shown
    assert '"token_type": "Bearer"' in shown and '"n": 1.50' in shown
    form = "grant_type=client_credentials&client_id=abc&client_secret=s%2Bcr%2Ft"
    assert logs.render_body(form, "application/x-www-form-urlencoded", scrubber) == (
        "grant_type=client_credentials&client_id=abc&client_secret=***"
    )
    assert logs.mask_header("X-Api-Key", "k-123456", scrubber) == "***"
    assert logs.mask_header("Authorization", "Bearer abc.def", scrubber) == "Bearer ***"
    assert logs.mask_header("Content-Type", "application/json", scrubber) == "application/json"


# -- the platform's request id -------------------------------------------------------
@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_result_from_an_answer_carries_the_request_id(
    sandbox_client: Client, example: Any, platform: str
) -> None:
    adapter = sandbox_client.registry.platform(platform)
    result = sandbox_client.send(example(platform), platform)
    assert result.http_status is not None
    assert UUID.match(result.details["request_id"]), result.details
    if adapter.capabilities.has_status:
        assert result.tracking_id
        later = sandbox_client.status(platform, result.tracking_id)
        assert UUID.match(later.details["request_id"])
        assert later.details["request_id"] != result.details["request_id"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_sandbox_sends_the_header_the_adapter_reads_first(
    sandbox: Sandbox, platform: str
) -> None:
    from cancelkit.core.registry import PluginRegistry

    adapter = PluginRegistry().platform(platform)
    emulator = sandbox.emulator_for(platform)
    assert emulator.request_id_header == adapter.request_id_headers[0]


def test_the_request_id_is_kept_for_refusals_and_core_verdicts_too(
    sandbox_client: Client, sandbox: Sandbox, example: Any
) -> None:
    sandbox.inject("500", "carriyo")
    unknown = sandbox_client.send(example("carriyo"), "carriyo")
    assert unknown.outcome == "unknown"
    assert UUID.match(unknown.details["request_id"])
    sandbox.inject("429", "aboutyou", retry_after=None, count=3)
    limited = sandbox_client.send(example("aboutyou"), "aboutyou")
    assert limited.outcome == "rejected"
    assert UUID.match(limited.details["request_id"])


def test_request_id_first_header_present_wins_and_a_broken_plugin_loses_nothing(
    sandbox_client: Client,
) -> None:
    adapter = sandbox_client.registry.platform("salesforce")
    both = HttpResponse(200, {"x-request-id": "second", "X-SFDC-Request-Id": "first"}, "{}")
    assert adapter.request_id(both) == "first"
    assert adapter.request_id(HttpResponse(200, {"X-Request-Id": "only"}, "{}")) == "only"
    assert adapter.request_id(HttpResponse(200, {}, "{}")) is None

    class Broken(type(adapter)):  # type: ignore[misc]
        def response_details(self, response: HttpResponse) -> dict[str, Any]:
            raise RuntimeError("plugin bug")

    base = CancelResult(platform="salesforce", outcome="cancelled", details={"mine": 1})
    delivery = Delivery("answer", HttpResponse(200, {"X-SFDC-Request-Id": "r-1"}, "{}"))
    kept = answers._with_response_details(base, Broken(), delivery)
    assert kept.details == {"request_id": "r-1", "mine": 1}


# -- start-up stays cheap ------------------------------------------------------------
def test_v_translate_loads_neither_requests_nor_logging_config() -> None:
    probe = (
        "import json, sys; from cancelkit.cli import main\n"
        "sys.argv = ['cancelkit', '-vv', 'translate', '-p', 'mirakl', sys.argv[1]]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(EXAMPLES / "mirakl.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert loaded & {"requests", "logging.config", "logging.handlers"} == set()
    assert '"url"' in done.stdout
