"""Where shared rate limits live: one URL, the setting ``limiter_url``, chosen once per client.

Strongest first: ``CANCELKIT_LIMITER_URL``, the config file's profile-level
``limiter_url`` (``[default] limiter_url = "redis://..."``), else none: each process
keeps its own limits (core/ratelimit.py), right for one process on one machine. A
``redis://`` or ``rediss://`` URL shares every platform's limits across all processes
and machines that name the same server. A sandbox client reads no config file, so only
``CANCELKIT_LIMITER_URL`` (or its ``env=``) can give it a shared limiter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError
from .configfile import profile_setting
from .ratelimit import LimitStore

ENV_VARIABLE = "CANCELKIT_LIMITER_URL"
SETTING = "limiter_url"
SCHEMES = ("redis", "rediss")


def limiter_url(
    *,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
    use_file: bool = True,
) -> tuple[str, str] | None:
    """``(url, where)`` of the configured shared-limit store, or None: in-process limits."""
    if env.get(ENV_VARIABLE):
        return env[ENV_VARIABLE], f"{SETTING} (from ${ENV_VARIABLE})"
    if not use_file:
        return None
    found = profile_setting(SETTING, env=env, config_path=config_path, profile=profile)
    if found is None:
        return None
    if not found[0].strip():
        raise ConfigurationError(f"{found[1]}: must not be empty")
    return found


def open_store(url: str, where: str) -> LimitStore:
    """The store ``url`` names, checked to answer; a ConfigurationError naming
    ``where`` (the password masked) when it cannot be used."""
    shown = shown_url(url)
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"{where} {shown}: must be a redis:// or rediss:// URL "
            "(or unset, for limits kept in each process)"
        )
    from .ratelimit_redis import RedisLimits  # loads limits and redis: only now

    return RedisLimits(url, shown=shown, where=where)


def shown_url(url: str) -> str:
    """``url`` as messages show it: any password masked, in the user part and the query."""
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        # Everything up to the last "@" is credentials, whatever it holds: a password
        # with "/", "?" or "#" would end urlsplit's netloc early and print the rest.
        user = rest.rpartition("@")[0]
        if any(c in user for c in "/?#"):  # which "@" ends them is unknowable: hide all
            return f"{scheme}://*** (credentials and address hidden)"
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            name, colon, _password = user.partition(":")
            # A lone user part may be a password too (redis-py reads it as a user name,
            # but people write ``redis://secret@host``): mask it as well.
            netloc = f"{name}:***@{host}" if colon else f"***@{host}"
        query = _masked_query(parts.query)
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:  # unparseable (a bad port, say): show nothing of it
        return "(an unreadable URL)"


def _masked_query(query: str) -> str:
    """A query string with every ``password`` value masked."""
    return urlencode(
        [
            (key, "***" if "password" in key.lower() else value)
            for key, value in parse_qsl(query, keep_blank_values=True)
        ],
        safe="*",
    )
