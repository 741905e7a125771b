"""An OAuth2 client-credentials token endpoint and the token check of API calls.

Platforms agree on the idea and differ in every detail: where the client id and
secret travel (a form, a JSON body, ``Authorization: Basic``), which header
carries the token (``Authorization: Bearer``, Walmart's raw
``WM_SEC.ACCESS_TOKEN``), and how a refusal looks. :class:`TokenIssuer` takes
those details as settings; the rest is done once here:

* tokens are numbered (``sbx-<platform>-token-<n>``), never random, so a
  recording reproduces;
* they expire on the sandbox clock (``EmuRequest.now``), so a test that moves
  the clock on sees the platform's 401;
* the store is part of the emulator's dumped state (``{token: expires_at}``), so
  a token fetched by one ``cancelkit send`` process works in the next.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from .emulator import EmuRequest, EmuResponse
from .refusal import Refusal
from .stateful import StateField

if TYPE_CHECKING:
    from .stateful import StatefulEmulator

#: Where client credentials may travel on the token call.
CREDENTIAL_SOURCES = ("form", "json", "basic")
#: Why an API call's token was refused (passed to a callable ``unauthorized``).
WHY_REFUSED = ("missing", "malformed", "unknown", "expired")


class TokenIssuer(StateField["TokenStore"]):
    """Declares a client-credentials token endpoint; on the emulator, a :class:`TokenStore`.

    ``lifetime`` is in seconds on the sandbox clock (None: tokens never expire).
    ``credentials`` names where the client id and secret may come from
    (``form``, ``json``, ``basic``); ``grant_type`` is the one the body must name
    (None: not checked). API calls carry the token in ``header``, as
    ``"<scheme> <token>"`` or, with ``scheme=None``, the raw token.

    Refusals are the platform's own: ``unauthorized`` for an API call without a
    live token (a :class:`Refusal`, or a function of the reason - ``missing``,
    ``malformed``, ``unknown``, ``expired`` - giving one); ``invalid_client``
    for a wrong id or secret; ``missing_client`` when none is given (None: as
    ``invalid_client``); ``unsupported_grant`` for another grant type. The
    defaults are RFC 6749/6750's. ``answer(token, request)`` is the 200 body
    (default ``access_token``, ``token_type``, ``expires_in``); ``prefix`` the
    token text before its number (default ``sbx-<platform>-token-``).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        lifetime: float | None,
        credentials: tuple[str, ...] = ("form",),
        grant_type: str | None = "client_credentials",
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        unauthorized: Refusal | Callable[[str], Refusal] | None = None,
        invalid_client: Refusal | None = None,
        missing_client: Refusal | None = None,
        unsupported_grant: Refusal | None = None,
        answer: Callable[[str, EmuRequest], Mapping[str, Any]] | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(cast("TokenStore", None))  # never used: seed() makes the store
        unknown = [c for c in credentials if c not in CREDENTIAL_SOURCES]
        if unknown or not credentials:
            raise ValueError(f"credentials come from {CREDENTIAL_SOURCES}, not {credentials!r}")
        self.client_id, self.client_secret = client_id, client_secret
        self.lifetime = lifetime
        self.credentials = credentials
        self.grant_type = grant_type
        self.header, self.scheme = header, scheme
        self.unauthorized = unauthorized or Refusal(
            401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
        self.invalid_client = invalid_client or Refusal(401, {"error": "invalid_client"})
        self.missing_client = missing_client or self.invalid_client
        self.unsupported_grant = unsupported_grant or Refusal(
            400, {"error": "unsupported_grant_type"}
        )
        self.answer = answer
        self.prefix = prefix

    def __repr__(self) -> str:
        # Holds the sandbox secret: never shown, as authenticators do.
        return f"TokenIssuer({self.name!r}, ***)"

    def seed(self, emulator: StatefulEmulator) -> TokenStore:
        """No tokens issued."""
        return TokenStore(self, emulator.platform)

    def dump(self, value: TokenStore) -> dict[str, float | None]:
        """``{token: expires_at}`` (None: never expires), in issue order."""
        return value.dump()

    def load(self, raw: Any, emulator: StatefulEmulator) -> TokenStore:
        """A dumped store; a plain list of tokens (older state files) never expires."""
        if isinstance(raw, list):
            raw = dict.fromkeys(raw)
        if not isinstance(raw, dict):
            raise TypeError(f"expected an object of token -> expiry, got {type(raw).__name__}")
        for token, expires in raw.items():
            if not isinstance(token, str) or not token:
                raise TypeError(f"a token must be a non-empty string, not {token!r}")
            if expires is not None and (
                isinstance(expires, bool) or not isinstance(expires, (int, float))
            ):
                raise TypeError(f"a token's expiry must be a number or null, not {expires!r}")
        expiry = {t: None if e is None else float(e) for t, e in raw.items()}
        return TokenStore(self, emulator.platform, expiry)


class TokenStore:
    """The tokens one emulator issued, with their expiry; the token endpoint and check.

    Iterating gives the tokens (``len``, ``in`` work too), so tests can read them.
    """

    def __init__(
        self,
        issuer: TokenIssuer,
        platform: str,
        expiry: dict[str, float | None] | None = None,
    ) -> None:
        self.issuer = issuer
        self.prefix = issuer.prefix if issuer.prefix is not None else f"sbx-{platform}-token-"
        self._expiry: dict[str, float | None] = expiry or {}

    def __repr__(self) -> str:
        return f"TokenStore({len(self)} tokens)"  # tokens are secrets

    def __len__(self) -> int:
        return len(self._expiry)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._expiry))

    def __contains__(self, token: object) -> bool:
        return token in self._expiry

    def dump(self) -> dict[str, float | None]:
        """``{token: expires_at}``, a copy."""
        return dict(self._expiry)

    def expires_at(self, token: str) -> float | None:
        """When ``token`` expires on the sandbox clock (None: never); KeyError if unknown."""
        return self._expiry[token]

    def live(self, token: str, now: float) -> bool:
        """True when ``token`` was issued here and has not expired at ``now``."""
        if token not in self._expiry:
            return False
        expires = self._expiry[token]
        return expires is None or now < expires

    # -- the token endpoint ----------------------------------------------------
    def issue(self, request: EmuRequest, *, serial: Callable[[], int] | None = None) -> EmuResponse:
        """Answer a token request: 200 with a new token, or raise the platform's Refusal.

        The token is ``<prefix><n>``: n counts the tokens issued, or is ``serial()``
        (called only when a token is issued) for an emulator that numbers tokens
        with its other ids.
        """
        issuer = self.issuer
        params = self._params(request)
        if issuer.grant_type is not None and params.get("grant_type") != issuer.grant_type:
            raise issuer.unsupported_grant.copy()
        client = self._client(request, params)
        if client is None:
            raise issuer.missing_client.copy()
        # Both compared, always, in constant time: no timing tells which one was wrong.
        right_id = _same(client[0], issuer.client_id)
        right_secret = _same(client[1], issuer.client_secret)
        if not (right_id and right_secret):
            raise issuer.invalid_client.copy()
        number = serial() if serial is not None else len(self._expiry) + 1
        token = f"{self.prefix}{number}"
        lifetime = issuer.lifetime
        self._expiry[token] = None if lifetime is None else request.now + lifetime
        if issuer.answer is not None:
            return EmuResponse.json(200, dict(issuer.answer(token, request)))
        payload: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if lifetime is not None:
            payload["expires_in"] = int(lifetime)
        return EmuResponse.json(200, payload)

    def _params(self, request: EmuRequest) -> Mapping[str, Any]:
        """The token call's body fields: JSON or form, as the platform takes them."""
        sources = self.issuer.credentials
        content_type = (request.header("Content-Type") or "").lower()
        if "json" in sources and ("form" not in sources or "json" in content_type):
            try:
                body = request.json()
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        try:
            return request.form()
        except ValueError:  # not UTF-8
            return {}

    def _client(self, request: EmuRequest, params: Mapping[str, Any]) -> tuple[Any, Any] | None:
        """(id, secret) as the request gives them; None when it gives none."""
        sources = self.issuer.credentials
        if "basic" in sources:
            value = request.header("Authorization") or ""
            scheme, _, encoded = value.partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
                except (binascii.Error, ValueError):
                    return ("", "")  # malformed: a wrong client, not a missing one
                client_id, colon, secret = decoded.partition(":")
                return (client_id, secret) if colon else ("", "")
        if "form" in sources or "json" in sources:
            given = params.get("client_id"), params.get("client_secret")
            if all(given):
                return given
        return None

    # -- API calls -------------------------------------------------------------
    def check(self, request: EmuRequest) -> str:
        """The live token an API call carries; raises the ``unauthorized`` Refusal if none.

        Refused: no header, a header not of the form the platform takes, a token
        this emulator never issued (another emulator's included), or one expired
        at ``request.now``.
        """
        issuer = self.issuer
        value = request.header(issuer.header)
        if not value:
            raise self._unauthorized("missing")
        if issuer.scheme is None:
            token = value
        else:
            scheme, _, token = value.partition(" ")
            if scheme.lower() != issuer.scheme.lower():
                raise self._unauthorized("malformed")
        if not token or token != token.strip() or " " in token:
            raise self._unauthorized("malformed")
        if token not in self._expiry:
            raise self._unauthorized("unknown")
        if not self.live(token, request.now):
            raise self._unauthorized("expired")
        return token

    def _unauthorized(self, why: str) -> Refusal:
        refuse = self.issuer.unauthorized
        return refuse.copy() if isinstance(refuse, Refusal) else refuse(why)


def _same(given: Any, expected: str) -> bool:
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
