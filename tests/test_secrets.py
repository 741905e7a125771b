"""No secret ever leaves: canary credentials against a server that echoes them back.

The library side - every platform, with the sandbox's credentials and with a
canary in every secret setting, against answers (400, 401, 403, 500, refused
token requests) that repeat the request back; results, errors and DEBUG logs -
is the conformance suite's ``test_no_secret_leaves_a_send`` and
``test_no_secret_in_any_rendering`` (tests/test_conformance.py). Here, what lies
outside a plugin: the command line's output (text and ``--json``), a cassette
recorded with the client's scrubber, and the scrubber's own rules.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from helpers import serving

from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.cassettes import make_vcr
from cancelkit.core.client import Client
from cancelkit.errors import CancelkitError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: The run-time token the echo server's token endpoint hands out.
ISSUED_TOKEN = "issued-token-CANARY-0f9e8d7c"


def canary(name: str) -> str:
    # '+', '/', '=' and '&' make the URL-encoded form differ from the raw one.
    return f"CANARY-{name}-s3cr+t/v@l=ue&9"


@dataclass
class Echo:
    """A loopback server that repeats every request back in its answer."""

    api_status: int = 400
    token_status: int = 200
    url: str = ""
    seen: list[str] = field(default_factory=list)


def _echo_body(platform_hint: str, text: str) -> Any:
    if platform_hint.startswith("/sf"):
        flow = [{"actionName": "F", "errors": [{"statusCode": "E", "message": text}]}]
        if "/actions/custom/flow/" in platform_hint:
            return [{**flow[0], "isSuccess": False}]
        return [{"errorCode": "ECHO", "message": text}]
    return {"code": "ECHO", "message": text, "errors": [f"field : {text}"]}


@pytest.fixture
def echo() -> Iterator[Echo]:
    state = Echo()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            echoed = f"headers={dict(self.headers.items())} body={body}"
            state.seen.append(echoed)
            authorization = self.headers.get("Authorization", "")
            if "token" in self.path:
                if state.token_status == 200:
                    payload: Any = {
                        "access_token": ISSUED_TOKEN,
                        "instance_url": f"{state.url}/sf",
                        "expires_in": 3600,
                        "token_type": "Bearer",
                        "note": echoed,
                    }
                else:
                    payload = {"error": "invalid_client", "error_description": echoed}
                status = state.token_status
            else:
                payload, status = _echo_body(self.path, echoed), state.api_status
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Echo-Authorization", authorization.encode().decode("latin-1"))
            self.send_header("Sforce-Limit-Info", f"api-usage={authorization.split(' ')[-1]}")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving(server) as url:
        state.url = url
        yield state


def settings(platform: str, mode: str, url: str) -> dict[str, str]:
    """Canary credentials for ``platform``, pointing at the echo server."""
    platform = "salesforce" if platform.startswith("salesforce") else platform
    base = {
        "mirakl": {"base_url": f"{url}/mirakl"},
        "salesforce": {},
        "carriyo": {"base_url": f"{url}/carriyo", "tenant_id": canary("tenant"),
                    "api_key": canary("carriyo-key")},
        "aboutyou": {"base_url": f"{url}/aboutyou", "api_key": canary("aboutyou-key")},
    }[platform]  # fmt: skip
    if mode == "static":
        if platform == "salesforce":
            return {"instance_url": f"{url}/sf", "access_token": canary("sf-token")}
        if platform == "aboutyou":
            return base
        return {**base, "access_token": canary(f"{platform}-token")}
    oauth = {"client_id": f"client-{platform}", "client_secret": canary(f"{platform}-secret")}
    if platform == "mirakl":
        return {**base, **oauth, "token_url": f"{url}/mirakl-token"}
    if platform == "salesforce":
        return {**oauth, "login_url": f"{url}/sf-login"}
    return {**base, **oauth}


CASES = [
    (platform, mode)
    for platform in ("mirakl", "salesforce", "salesforce-flow", "carriyo", "aboutyou")
    for mode in ("static", "oauth")
    if not (platform == "aboutyou" and mode == "oauth")  # About You has API keys only
]


def secrets_of(config: dict[str, str]) -> list[str]:
    values = [v for v in config.values() if "CANARY" in v] + [ISSUED_TOKEN]
    return [form for v in values for form in {v, quote(v), quote(v, safe=""), quote_plus(v)}]


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize(("platform", "mode"), CASES)
def test_no_canary_in_cli_output(
    echo: Echo, monkeypatch: pytest.MonkeyPatch, platform: str, mode: str, status: int,
    as_json: bool,
) -> None:  # fmt: skip
    echo.api_status = status
    config = settings(platform, mode, echo.url)
    prefix = (
        "CANCELKIT_SALESFORCE_"
        if platform.startswith("salesforce")
        else (f"CANCELKIT_{platform.upper()}_")
    )
    for name, value in config.items():
        monkeypatch.setenv(prefix + name.upper(), value)
    args = ["send", "-p", platform, str(EXAMPLES / f"{platform}.json")]
    result = CliRunner().invoke(main, [*args, "--json"] if as_json else args)
    assert result.exit_code in (1, 3, 4), result.output
    assert leaks(result.output, secrets_of(config)) == []


@pytest.mark.parametrize("status", [400, 401])
@pytest.mark.parametrize(("platform", "mode"), CASES)
def test_no_canary_in_a_recorded_cassette(
    echo: Echo, tmp_path: Path, platform: str, mode: str, status: int
) -> None:
    echo.api_status = status
    config = settings(platform, mode, echo.url)
    settings_name = "salesforce" if platform.startswith("salesforce") else platform
    request = jsonutil.loads((EXAMPLES / f"{platform}.json").read_text())
    cassette = tmp_path / "echo.yaml"
    client = Client(config={settings_name: config}, env={})
    recorder = make_vcr("all", {}, client.scrubber).use_cassette(str(cassette))
    # Refusals are fine here: what matters is what the cassette holds.
    with client, recorder, contextlib.suppress(CancelkitError):
        client.send(request, platform)
    text = cassette.read_text()
    assert "interactions" in text and echo.url in text  # something was recorded
    assert leaks(text, secrets_of(config)) == []


def test_a_field_error_quoting_a_secret_is_masked_not_crashed() -> None:
    """A request that quotes a known secret is still bad input (exit 2), with it masked."""
    from cancelkit.core.secrets import Scrubber
    from cancelkit.errors import FieldError, InvalidRequestError

    scrubber = Scrubber()
    scrubber.add("tok-4f9a7c2e")
    error = InvalidRequestError(FieldError("currency", "'tok-4f9a7c2e' is not an ISO 4217 code"))
    scrubbed = scrubber.scrub_error(error)
    assert isinstance(scrubbed, InvalidRequestError)
    assert scrubbed.errors == [FieldError("currency", "'***' is not an ISO 4217 code")]
    assert "tok-4f9a7c2e" not in str(scrubbed)


def test_every_url_encoding_of_a_secret_is_masked() -> None:
    """Base64 tokens hold / + =: quote() keeps the slash, quote(safe="") does not."""
    from cancelkit.core.secrets import Scrubber

    scrubber = Scrubber()
    scrubber.add("ZZabc+def/ghi==")
    for echoed in ("ZZabc%2Bdef/ghi%3D%3D", "ZZabc%2Bdef%2Fghi%3D%3D", "ZZabc+def/ghi=="):
        assert scrubber.scrub(f"Location: http://x/?t={echoed}") == "Location: http://x/?t=***"
