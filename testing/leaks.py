"""Canary secrets, and finding them (or any credential) in text that leaves the client."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

#: Secret headers that must be ``***`` in a cassette, whatever the platform.
SECRET_HEADER_NAMES = ("authorization", "x-api-key", "tenant-id", "cookie", "set-cookie")


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
    """The forms of ``secrets`` that occur in ``text``."""
    return [form for form in forms(secrets) if form in text]


def secret_values(settings: Mapping[str, str], secret_names: Iterable[str]) -> list[str]:
    """The values of ``settings`` that are secret."""
    names = set(secret_names)
    return [value for key, value in settings.items() if key in names and value]


def cassette_patterns(
    secrets: Iterable[str], token_prefixes: Iterable[str]
) -> list[re.Pattern[str]]:
    """What must never be in a cassette: these secrets, issued tokens, unmasked credentials."""
    header = "|".join(SECRET_HEADER_NAMES)
    return [
        *(re.compile(re.escape(form)) for form in forms(secrets)),
        *(re.compile(re.escape(prefix)) for prefix in token_prefixes if len(prefix) >= 6),
        re.compile(r"Bearer (?!\*\*\*)\S+"),
        re.compile(r"Basic (?!\*\*\*)\S+"),
        re.compile(r'"(access_token|refresh_token|id_token|client_secret)"\s*:\s*"(?!\*\*\*")'),
        re.compile(r"(client_secret|password|access_token)=(?!%2A%2A%2A|\*\*\*)[^&\s]"),
        re.compile(rf"(?im)^\s+({header}):\s*\n\s+- (?!'\*\*\*'$).*$"),
    ]


def token_prefix(token: str) -> str:
    """``sbx-mirakl-token-3`` -> ``sbx-mirakl-token-``, shared by every token it mints."""
    return token.rstrip("0123456789")
