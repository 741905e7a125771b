"""Canary secrets, and finding them (or any credential) in text that leaves the client."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from cancelkit.core.secrets import field_names

#: Secret headers that must be ``***`` in a cassette, whatever the platform.
SECRET_HEADER_NAMES = ("authorization", "x-api-key", "tenant-id", "cookie", "set-cookie")
#: Token answer fields that must be ``***`` in a cassette (in any case, ``_`` or ``-``).
TOKEN_ANSWER_FIELDS = ("access_token", "refresh_token", "id_token", "client_secret", "password")
#: Token request fields that carry a credential (``client_id`` is public: RFC 6749 2.2).
TOKEN_REQUEST_SECRETS = (
    "client_secret",
    "password",
    "refresh_token",
    "access_token",
    "api_key",
    "client_assertion",
    "assertion",
)
#: Runs of base64 (standard or URL-safe) long enough to hide a secret.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def canary(name: str) -> str:
    """A recognisable secret for setting ``name``.

    ``+``, ``/``, ``=`` and ``&`` make its URL-encoded forms differ from the raw one.
    """
    return f"CANARY-{name}-s3cr+t/v@l=ue&9"


def forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may appear: raw, and URL-encoded three ways."""
    found: list[str] = []
    for secret in secrets:
        if len(secret) < 6:  # too short to tell from ordinary text
            continue
        for form in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret)):
            if form not in found:
                found.append(form)
    return found


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The forms of ``secrets`` that occur in ``text``, as is or inside base64.

    Base64 is no mask: ``Authorization: Basic base64(id:secret)`` shows the secret
    to anyone who decodes it, so every base64-looking run is decoded and searched.
    """
    candidates = forms(secrets)
    found = [form for form in candidates if form in text]
    hidden = [form for form in candidates if form not in found]
    if hidden:
        decoded = base64_decoded(text)
        found += [f"{form} (base64-encoded)" for form in hidden if form in decoded]
    return found


def base64_decoded(text: str) -> str:
    """Every base64-looking run of ``text`` (and of its URL-decoded form), decoded.

    Each run is tried at the four alignments, so characters glued before it (a
    path's ``/orders/``) do not hide what follows; what does not decode is skipped.
    """
    texts = {text, unquote(text)} if "%" in text else {text}
    decoded: list[str] = []
    for each in texts:
        for run in _BASE64_RUN.findall(each):
            for offset in range(4):
                value = _b64decode(run[offset:])
                if value is not None:
                    decoded.append(value)
    return "\n".join(decoded)


def _b64decode(run: str) -> str | None:
    chunk = run.rstrip("=").replace("-", "+").replace("_", "/")
    if len(chunk) % 4 == 1:  # not a whole number of bytes: drop the stray character
        chunk = chunk[:-1]
    if len(chunk) < 6:
        return None
    try:
        raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", "replace")


def secret_values(settings: Mapping[str, str], secret_names: Iterable[str]) -> list[str]:
    """The values of ``settings`` that are secret."""
    names = set(secret_names)
    return [value for key, value in settings.items() if key in names and value]


def cassette_patterns(
    secrets: Iterable[str], token_prefixes: Iterable[str]
) -> list[re.Pattern[str]]:
    """What must never be in a cassette: these secrets, issued tokens, unmasked credentials.

    Credential fields are found in any case, with or without ``_`` or ``-``
    (``refreshToken`` as well as ``refresh_token``).
    """
    header = "|".join(SECRET_HEADER_NAMES)
    fields = field_names(TOKEN_ANSWER_FIELDS)
    form_fields = field_names(("client_secret", "password", "access_token", "refresh_token"))
    return [
        *(re.compile(re.escape(form)) for form in forms(secrets)),
        *(re.compile(re.escape(prefix)) for prefix in token_prefixes if len(prefix) >= 6),
        re.compile(r"Bearer (?!\*\*\*)\S+"),
        re.compile(r"Basic (?!\*\*\*)\S+"),
        re.compile(rf'"({fields})"\s*:\s*"(?!\*\*\*")', re.IGNORECASE),
        re.compile(rf"(?<![\w-])({form_fields})=(?!%2A%2A%2A|\*\*\*)[^&\s]", re.IGNORECASE),
        re.compile(rf"(?im)^\s+({header}):\s*\n\s+- (?!'\*\*\*'$).*$"),
    ]


def sent_credentials(
    headers: Iterable[tuple[str, str]],
    body: bytes,
    credential_headers: Collection[str],
    token_request: bool,
) -> list[tuple[str, str]]:
    """``(where, credential)`` for each credential one request carried.

    ``credential_headers``: lower-case names of the headers the authenticator set
    (the client's ``scrubber.header_names``); Basic gives its password (its user
    when the password is empty), any other scheme what follows it. A token
    request adds its secret fields (form or JSON).
    """
    found: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() in credential_headers or name.lower() in SECRET_HEADER_NAMES:
            found += [(f"header {name}", part) for part in credential_parts(value)]
    if token_request:
        secret_field = re.compile(field_names(TOKEN_REQUEST_SECRETS), re.IGNORECASE)
        found += [
            (f"token request field {key}", value)
            for key, value in _fields(body)
            if secret_field.fullmatch(key)
        ]
    return found


def credential_parts(value: str) -> list[str]:
    """What a credential header value holds: the whole value, or what follows its scheme."""
    scheme, space, rest = value.partition(" ")
    if not (space and rest and scheme.isalpha()):
        return [value]
    if scheme.lower() == "basic":
        decoded = _b64decode(rest.strip())
        if decoded is not None and ":" in decoded:
            user, _, password = decoded.partition(":")
            return [password or user]
    return [rest]


def _fields(body: bytes) -> list[tuple[str, str]]:
    """The top-level string fields of a JSON object or form body."""
    text = body.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        return parse_qsl(text, keep_blank_values=True)
    if not isinstance(value, dict):
        return []
    return [(str(k), v) for k, v in value.items() if isinstance(v, str)]


def undeclared_secrets(
    settings: Mapping[str, str],
    secret_names: Collection[str],
    sent: Iterable[tuple[str, str]],
) -> dict[str, str]:
    """Settings not declared secret whose value went out as a credential -> where.

    Such a setting is masked nowhere: ``repr(settings)``, logs and errors show it.
    """
    found: dict[str, str] = {}
    sent = list(sent)
    for name, value in settings.items():
        if name in secret_names or len(value) < 6:  # too short to tell from chance
            continue
        for where, credential in sent:
            if value == credential or value in re.split(r"[\s,;:=&\"']+", credential):
                found.setdefault(name, where)
    return found


def token_prefix(token: str) -> str:
    """``sbx-mirakl-token-3`` -> ``sbx-mirakl-token-``, shared by every token it mints."""
    return token.rstrip("0123456789")
