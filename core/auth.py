"""Credentials on the wire: static tokens, API keys and cached OAuth2 tokens.

Authenticators turn settings into request headers at send time only, so a
translated call never holds a secret. OAuth2 tokens are cached until shortly
before ``expires_in`` and can be refreshed once when the platform answers 401.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import AuthenticationError, TransportError
from . import jsonutil
from .http import HttpCall
from .secrets import Scrubber

if TYPE_CHECKING:  # requests loads only when something is sent, not for translate
    import requests

#: Refresh this many seconds before the platform says the token expires.
EXPIRY_MARGIN_SECONDS = 60.0
_SECRET_ANSWER_FIELDS = ("access_token", "refresh_token", "id_token", "signature")


class Authenticator:
    """Gives the headers that authenticate one call (base class of all authenticators)."""

    #: True when a fresh credential can be fetched after a 401.
    can_refresh: bool = False

    def headers(self, session: requests.Session, *, refresh: bool = False) -> Mapping[str, str]:
        """Headers to add to the call; ``refresh`` forces a new token."""
        raise NotImplementedError

    def rebase(self, call: HttpCall) -> HttpCall:
        """The call as it must be sent once authenticated (e.g. on the token's instance URL)."""
        return call

    def __repr__(self) -> str:
        # Authenticators hold credentials: their repr shows none, whatever the subclass keeps.
        return f"{type(self).__name__}(***)"


def mask_repr(authenticator: Authenticator) -> Authenticator:
    """Make sure ``repr()`` of this authenticator's class shows no credential.

    A plugin's authenticator that is a dataclass gets a generated ``__repr__``
    printing every field; core calls this on every authenticator it uses, so no
    plugin can forget.
    """
    cls = type(authenticator)
    if cls.__repr__ is not Authenticator.__repr__:
        cls.__repr__ = Authenticator.__repr__  # type: ignore[method-assign]
    return authenticator


@dataclass(repr=False)
class StaticHeaders(Authenticator):
    """Fixed headers: an access token given directly, or an API key."""

    values: Mapping[str, str]
    can_refresh: bool = False

    def headers(self, session: requests.Session, *, refresh: bool = False) -> Mapping[str, str]:
        """The configured headers, unchanged."""
        return self.values


class ClientCredentialsToken(Authenticator):
    """OAuth2 client-credentials bearer token, cached until shortly before expiry.

    :param token_url: the token endpoint.
    :param fields: the token request's fields (``grant_type``, and the client
        credentials where the platform takes them in the body).
    :param encoding: ``form`` (``application/x-www-form-urlencoded``) or ``json``.
    :param header: the headers that carry the token on every call (a bearer
        ``Authorization`` by default; Walmart's ``WM_SEC.ACCESS_TOKEN``, say).
    :param default_lifetime: seconds a token lives when the answer has no
        ``expires_in``; None keeps it until the platform answers 401.
    :param basic_auth: ``(client_id, client_secret)`` sent as HTTP Basic
        credentials on the token request (RFC 6749 section 2.3.1), for platforms that
        take them there rather than in ``fields``. The encoded credential is taught
        to the client's secret scrubber before the request leaves, so a token
        endpoint that echoes it is masked in logs, errors and cassettes.
    :param token_headers: extra headers for the token request, or a function
        giving them afresh for each request (a new correlation id per call, say).
        They are not credentials; ``Authorization`` here is overridden by ``basic_auth``.
    """

    can_refresh = True

    def __init__(
        self,
        token_url: str,
        fields: Mapping[str, str],
        *,
        encoding: str = "form",
        platform: str,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        header: Callable[[str], Mapping[str, str]] = lambda t: {"Authorization": f"Bearer {t}"},
        default_lifetime: float | None = 3600.0,
        basic_auth: tuple[str, str] | None = None,
        token_headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    ):
        self.token_url = token_url
        self._fields = dict(fields)
        # Only the encoded header is kept: it is what goes on the wire, and what a
        # scrubber must know to mask an echo of it.
        self._basic = None if basic_auth is None else basic_header(*basic_auth)
        self._token_headers = token_headers
        self._encoding = encoding
        self._platform = platform
        self._timeout = timeout
        self._clock = clock
        self._header = header
        self._default_lifetime = default_lifetime
        self._token: str | None = None
        self._expires_at = 0.0
        #: The token answer without its secrets (e.g. Salesforce's ``instance_url``).
        self.answer: dict[str, object] = {}
        # Bulk workers share one authenticator: one token request, not one per thread.
        self._fetching = threading.Lock()

    def headers(self, session: requests.Session, *, refresh: bool = False) -> Mapping[str, str]:
        """Bearer header, fetching a token when none is cached or it is expiring."""
        if refresh or self._token is None or self._clock() >= self._expires_at:
            stale = self._token if refresh else None
            with self._fetching:
                # Another thread may have fetched while this one waited for the lock.
                if self._token is None or self._token == stale or self._clock() >= self._expires_at:
                    self._fetch(session)
        assert self._token is not None
        return self._header(self._token)

    def _fetch(self, session: requests.Session) -> None:
        headers = self._request_headers(session)
        data: Mapping[str, str] | bytes = self._fields
        if self._encoding != "form":
            data = jsonutil.wire(self._fields)
            headers["Content-Type"] = "application/json"
        try:
            response = session.post(
                self.token_url, data=data, headers=headers or None, timeout=self._timeout
            )
        except _request_exception() as error:
            raise TransportError(
                f"{self._platform}: could not reach the token endpoint {self.token_url} "
                f"({type(error).__name__}); nothing was sent"
            ) from None
        payload = _json_or_none(response)
        answer = payload if isinstance(payload, dict) else {}
        token = answer.get("access_token")
        # Our own mask for what this request carried, whatever scrubber the session has.
        scrub = self._own_scrubber().scrub_value
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise AuthenticationError(
                f"{self._platform}: token request refused (HTTP {response.status_code})"
                + scrub(_oauth_reason(payload))
            )
        lifetime = _seconds(answer.get("expires_in"), self._default_lifetime)
        self._token = token
        self.answer = scrub({k: v for k, v in answer.items() if k not in _SECRET_ANSWER_FIELDS})
        # No lifetime known (Salesforce): keep the token until the platform says 401.
        self._expires_at = (
            float("inf")
            if lifetime is None
            else self._clock() + max(lifetime - EXPIRY_MARGIN_SECONDS, 0.0)
        )

    def _request_headers(self, session: requests.Session) -> dict[str, str]:
        """The token request's headers; the Basic credential is taught to the scrubber first."""
        extra = self._token_headers() if callable(self._token_headers) else self._token_headers
        headers = dict(extra or {})
        if self._basic is not None:
            headers["Authorization"] = self._basic
            # The session's scrubber is the client's: its logs, results, errors and
            # cassettes then mask an echo of the credential (as core does for the
            # headers of every call, before anything is sent).
            scrubber = getattr(session, "scrubber", None)
            if isinstance(scrubber, Scrubber):
                scrubber.add_headers({"Authorization": self._basic})
        return headers

    def _own_scrubber(self) -> Scrubber:
        scrubber = Scrubber()
        if self._basic is not None:
            scrubber.add_headers({"Authorization": self._basic})
        return scrubber


def basic_header(user: str, password: str) -> str:
    """``Basic base64(user:password)``, the HTTP Basic ``Authorization`` value (RFC 7617)."""
    credential = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {credential}"


def _seconds(value: object, default: float | None) -> float | None:
    """``expires_in`` as seconds; a missing or unreadable one gives ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return default
    try:
        return float(value)
    except ValueError:
        return default


def _request_exception() -> type[Exception]:
    import requests

    return requests.RequestException


def _json_or_none(response: requests.Response) -> object:
    try:
        return jsonutil.loads(response.text)
    except ValueError:
        return None


def _oauth_reason(payload: object) -> str:
    if not isinstance(payload, dict):
        return ""
    parts = [str(payload[k]) for k in ("error", "error_description", "message") if payload.get(k)]
    return ": " + " - ".join(parts) if parts else ""
