"""What each kind of setting may hold (contract: README "Credentials and settings").

A :class:`~cancelkit.core.config.Setting` declares its ``kind``; every value is
checked once, when the settings load, whatever its source, so nothing is sent
with a value that would fail later (or, worse, after the cancel was accepted).
The checks return a problem in words, or ``None``; the caller names the setting.
A secret's value never appears in a problem.
"""

from __future__ import annotations

import math
import re
from typing import Literal
from urllib.parse import urlsplit

SettingKind = Literal["text", "url", "seconds"]
KINDS: tuple[SettingKind, ...] = ("text", "url", "seconds")

#: Longest wait or timeout accepted: longer ones overflow the OS timers and help no one.
MAX_SECONDS = 86400.0
# Plain decimal notation (TOML floats such as 1e-3 included); no sign, "inf" or "nan".
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# C0 controls, DEL and C1 controls: never valid in an HTTP header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def problem(kind: SettingKind, secret: bool, value: str) -> str | None:
    """What is wrong with ``value`` for a setting of ``kind``, or ``None`` when it is fine.

    An empty value means "not set" (as an empty environment variable does) and is
    never a problem here; whether a setting is required is the adapter's business.
    """
    if not value:
        return None
    if secret:
        found = _header_problem(value)
        if found:
            return f"cannot be sent in an HTTP header: {found} (the value is not shown)"
    if kind == "seconds":
        return _seconds_problem(value)
    if kind == "url":
        return _url_problem(value, show=not secret)
    return None


def _header_problem(value: str) -> str | None:
    if _CONTROL.search(value):
        return "it contains a line break or another control character"
    if any(ord(c) > 0xFF for c in value):
        return "it contains a character outside Latin-1"
    if value != value.strip():
        return "it starts or ends with whitespace"
    return None


def _seconds_problem(value: str) -> str | None:
    wanted = f"must be a positive number of seconds (at most {MAX_SECONDS:g}), got {value!r}"
    if not _NUMBER.fullmatch(value):
        return wanted
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        return wanted
    return None


def _url_problem(value: str, *, show: bool) -> str | None:
    # A URL with user:password@ is never echoed: the password is a credential.
    show = show and "@" not in value
    shown = f", got {value!r}" if show else ""
    wanted = f"must be an http:// or https:// URL with a host{shown}"
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        return f"must be a URL without spaces or control characters{shown}"
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return wanted
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return wanted
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL would be sent as Basic auth and shown as the URL.
        return "must not carry credentials (user:password@); use the credential settings"
    return None
