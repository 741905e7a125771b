"""OAuth token caching details that the sandbox scenarios do not reach."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cancelkit.core.auth import EXPIRY_MARGIN_SECONDS, ClientCredentialsToken
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
