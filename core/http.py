"""The translated HTTP call and the platform's answer, as plain data.

An :class:`HttpCall` is what ``translate`` returns and what ``send`` performs.
Secret header values never live in it: the adapter puts ``***`` placeholders
there and the authenticator fills real values into a private copy at send time,
so no rendering of a call can ever show a secret.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from . import jsonutil

MASK = "***"


def path_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one URL path segment.

    ``/``, ``?``, ``#`` and ``%`` are encoded, and a segment made only of dots is
    encoded too, since ``.`` and ``..`` would otherwise be collapsed by URL
    normalisation and change the path.
    """
    encoded = quote(value, safe="")
    if encoded.strip(".") == "":
        encoded = encoded.replace(".", "%2E")
    return encoded


#: The masked bearer header of a translated call; the real one is added at send time.
BEARER = {"Authorization": f"Bearer {MASK}"}
#: Headers :func:`render` always masks, whatever the adapter put there.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def json_headers(auth: Mapping[str, str], *, body: bool = True) -> dict[str, str]:
    """Masked auth headers, JSON ``Accept``, and ``Content-Type`` for calls with a body."""
    content = {"Content-Type": "application/json"} if body else {}
    return {**auth, **content, "Accept": "application/json"}


def join_url(base: str, *segments: str, query: Mapping[str, str] | None = None) -> str:
    """``base`` + one encoded path segment per item (+ query string)."""
    url = base.rstrip("/") + "".join("/" + path_segment(s) for s in segments)
    if query:
        url += "?" + urlencode(query)
    return url


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request, exactly as it will be sent (secrets masked)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    #: JSON body (``Decimal`` kept exact), or None.
    body: Any = None

    def body_bytes(self) -> bytes | None:
        """The body as sent on the wire."""
        return None if self.body is None else jsonutil.wire(self.body)

    def to_dict(self) -> dict[str, Any]:
        """The translated-call contract: method, url, headers, body."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body,
        }


def masked_credential(name: str, value: str) -> str:
    """A header value as a rendering shows it: credential headers masked by name.

    ``Basic dXNlcjpwdw==`` -> ``Basic ***`` (the scheme stays, as in ``Bearer ***``);
    any other value of such a header -> ``***``; other headers as they are.
    """
    if name.lower() not in CREDENTIAL_HEADERS:
        return value
    scheme, space, credential = value.partition(" ")
    return f"{scheme} {MASK}" if space and credential and scheme.isalpha() else MASK


def render(call: HttpCall, fmt: str) -> str:
    """Show a call as ``json``, ``curl`` or raw ``http``; secrets stay ``***``.

    Credential headers are masked by name too: an adapter that wrongly fills one
    in at translate time (Basic base64(id:secret), say) still prints none.
    """
    headers = {name: masked_credential(name, value) for name, value in call.headers.items()}
    if fmt == "json":
        return jsonutil.dumps({**call.to_dict(), "headers": headers}, indent=2)
    body = call.body_bytes()
    if fmt == "curl":
        parts = ["curl", "-X", call.method, shlex.quote(call.url)]
        for name, value in headers.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if body is not None:
            parts += ["--data-raw", shlex.quote(body.decode("utf-8"))]
        return " ".join(parts)
    if fmt == "http":
        url = urlsplit(call.url)
        target = url.path + (f"?{url.query}" if url.query else "")
        lines = [f"{call.method} {target} HTTP/1.1", f"Host: {url.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + (body.decode("utf-8") if body else "")
    raise ValueError(f"unknown format {fmt!r}")


@dataclass(frozen=True)
class HttpResponse:
    """The platform's answer, reduced to what normalisers need."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        """The body parsed as JSON (exact decimals), or None if it is not JSON.

        Parsed once: core and the adapter's ``normalise`` get the same object, so
        read it, do not change it.
        """
        return self._parsed

    @cached_property
    def _parsed(self) -> Any:
        try:
            return jsonutil.loads(self.text) if self.text.strip() else None
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        """A header value, looked up case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


def retry_after_seconds(response: HttpResponse) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), or None."""
    value = response.header("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
