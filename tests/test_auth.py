"""OAuth token details that the sandbox scenarios do not reach: caching, Basic credentials."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import serving

from cancelkit.core.auth import EXPIRY_MARGIN_SECONDS, ClientCredentialsToken
from cancelkit.core.secrets import Scrubber
from cancelkit.core.wire import GuardedSession
from cancelkit.errors import AuthenticationError


class FakeSession:
    """Answers token requests with canned bodies; records what was posted."""

    def __init__(self, *answers: tuple[int, Any]):
        self.answers = list(answers)
        self.posted: list[dict[str, Any]] = []

    def post(self, url: str, **kwargs: Any) -> Any:
        self.posted.append(kwargs)
        status, body = self.answers.pop(0)
        return type("Answer", (), {"status_code": status, "text": json.dumps(body)})()


@pytest.mark.parametrize("expires_in", ["soon", None, True, [1]])
def test_unreadable_expires_in_falls_back_to_the_default_lifetime(expires_in: Any) -> None:
    now = [0.0]
    token = ClientCredentialsToken(
        "https://t.invalid/token",
        {"client_id": "a"},
        platform="p",
        clock=lambda: now[0],
        default_lifetime=100.0,
    )
    session = FakeSession(
        (200, {"access_token": "one", "expires_in": expires_in}), (200, {"access_token": "two"})
    )
    assert token.headers(session)["Authorization"] == "Bearer one"  # type: ignore[arg-type]
    now[0] = 100.0 - EXPIRY_MARGIN_SECONDS - 1
    assert token.headers(session)["Authorization"] == "Bearer one"  # type: ignore[arg-type]
    now[0] += 2
    assert token.headers(session)["Authorization"] == "Bearer two"  # type: ignore[arg-type]


def test_no_lifetime_means_kept_until_refresh() -> None:
    token = ClientCredentialsToken(
        "https://t.invalid/token", {}, platform="p", clock=lambda: 1e12, default_lifetime=None
    )
    session = FakeSession(
        (200, {"access_token": "one", "instance_url": "https://x"}), (200, {"access_token": "two"})
    )
    assert token.headers(session)["Authorization"] == "Bearer one"  # type: ignore[arg-type]
    assert token.headers(session)["Authorization"] == "Bearer one"  # type: ignore[arg-type]
    assert token.answer == {"instance_url": "https://x"}  # the secret is not kept there
    assert token.headers(session, refresh=True)["Authorization"] == "Bearer two"  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [{}, {"access_token": ""}, {"access_token": 5}, "not json"])
def test_a_200_without_a_token_is_an_authentication_error(body: Any) -> None:
    token = ClientCredentialsToken("https://t.invalid/token", {}, platform="p")
    with pytest.raises(AuthenticationError, match="token request refused"):
        token.headers(FakeSession((200, body)))  # type: ignore[arg-type]


def test_form_and_json_encodings() -> None:
    form = FakeSession((200, {"access_token": "t"}))
    ClientCredentialsToken("u", {"client_id": "a"}, platform="p").headers(form)  # type: ignore[arg-type]
    assert form.posted[0]["data"] == {"client_id": "a"}
    as_json = FakeSession((200, {"access_token": "t"}))
    ClientCredentialsToken("u", {"client_id": "a"}, platform="p", encoding="json").headers(as_json)  # type: ignore[arg-type]
    assert json.loads(as_json.posted[0]["data"]) == {"client_id": "a"}
    assert as_json.posted[0]["headers"] == {"Content-Type": "application/json"}


# -- HTTP Basic credentials on the token request (Walmart's Token API) -----------
#: '+', '/' and '=' make the base64 and URL-encoded forms differ from the raw one.
BASIC_ID, BASIC_SECRET = "client-id-0a1b", "CANARY-basic-s3cr+t/v@l=ue"


def basic_forms() -> list[str]:
    """Every form of the credential that must never be shown: raw and encoded."""
    from urllib.parse import quote, quote_plus

    encoded = base64.b64encode(f"{BASIC_ID}:{BASIC_SECRET}".encode()).decode()
    return [f(v) for v in (encoded, BASIC_SECRET) for f in (str, quote, quote_plus)]


@pytest.fixture
def echoing_token_endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A token endpoint that repeats the request's headers and body in every answer.

    ``POST /ok`` answers 200 with a token (and the echo in another field);
    ``POST /refuse`` answers 401 with the echo in ``error_description``.
    """
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            seen.append({**dict(self.headers.items()), "body": body})
            echoed = f"headers={dict(self.headers.items())} body={body}"
            if self.path == "/ok":
                status, payload = 200, {"access_token": "t-1", "expires_in": 900, "note": echoed}
            else:
                status, payload = 401, {"error": "invalid_client", "error_description": echoed}
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Echo", str(self.headers.get("Authorization")))
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as url:
        yield url, seen


def basic_token(url: str) -> ClientCredentialsToken:
    ids = iter(["corr-1", "corr-2"])
    return ClientCredentialsToken(
        url,
        {"grant_type": "client_credentials"},
        platform="p",
        header=lambda t: {"WM_SEC.ACCESS_TOKEN": t},
        basic_auth=(BASIC_ID, BASIC_SECRET),
        token_headers=lambda: {"Accept": "application/json", "WM_QOS.CORRELATION_ID": next(ids)},
    )


def test_basic_auth_and_token_headers_go_on_the_token_request(
    echoing_token_endpoint: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = echoing_token_endpoint
    token = basic_token(f"{url}/ok")
    with GuardedSession(scrubber=Scrubber()) as session:
        assert token.headers(session) == {"WM_SEC.ACCESS_TOKEN": "t-1"}
        token.headers(session, refresh=True)
    encoded = base64.b64encode(f"{BASIC_ID}:{BASIC_SECRET}".encode()).decode()
    assert seen[0]["Authorization"] == f"Basic {encoded}"
    assert seen[0]["Accept"] == "application/json"
    assert seen[0]["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen[0]["body"] == "grant_type=client_credentials"
    # A function of token_headers is asked afresh for each token request.
    assert [s["WM_QOS.CORRELATION_ID"] for s in seen] == ["corr-1", "corr-2"]


def test_an_echoed_basic_credential_never_leaves(
    echoing_token_endpoint: tuple[str, list[dict[str, str]]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Refused (the error quotes it) or granted (the answer and the logs quote it)."""
    from cancelkit.core.cassettes import make_vcr
    from cancelkit.core.logs import http_log

    url, seen = echoing_token_endpoint
    caplog.set_level(logging.DEBUG)
    scrubber = Scrubber()  # the client's; the session and the recorder share it
    cassette = tmp_path / "token.yaml"
    granted = basic_token(f"{url}/ok")
    with (
        GuardedSession(scrubber=scrubber) as session,
        make_vcr("all", {}, scrubber).use_cassette(str(cassette)),
    ):
        granted.headers(session)
        with pytest.raises(AuthenticationError) as refused:
            basic_token(f"{url}/refuse").headers(session)
    assert len(seen) == 2 and all(BASIC_SECRET not in s["body"] for s in seen)
    assert "Basic" in str(seen)  # the endpoint did receive (and echo) the credential
    assert http_log.isEnabledFor(logging.DEBUG) and "HTTP/1.1" in caplog.text  # logs were on
    shown = {
        "error": f"{refused.value}\n{refused.value!r}",
        "answer": repr(granted.answer),
        # vcrpy's own records (a test tool's, not cancelkit's) quote what it recorded.
        "logs": "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] != "vcr"),
        "cassette": cassette.read_text(),
    }
    assert "invalid_client" in shown["error"] and "note" in shown["answer"]
    for where, text in shown.items():
        assert [f for f in basic_forms() if f in text] == [], where


def test_a_refused_basic_credential_is_masked_without_a_client_scrubber() -> None:
    """A session with no scrubber (any requests.Session): the error still masks it."""
    encoded = base64.b64encode(f"{BASIC_ID}:{BASIC_SECRET}".encode()).decode()
    token = ClientCredentialsToken("u", {}, platform="p", basic_auth=(BASIC_ID, BASIC_SECRET))
    session = FakeSession((400, {"error": "bad", "error_description": f"got Basic {encoded}"}))
    with pytest.raises(AuthenticationError) as refused:
        token.headers(session)  # type: ignore[arg-type]
    assert encoded not in str(refused.value) and "got ***" in str(refused.value)
    assert session.posted[0]["headers"]["Authorization"] == f"Basic {encoded}"
    assert BASIC_SECRET not in repr(token) and encoded not in repr(token)
