"""Where the Celery broker is: the profile-level setting ``broker_url``.

Strongest first: ``CANCELKIT_BROKER_URL``, the config file's ``[profile] broker_url``,
else a Redis on this machine (:data:`DEFAULT_BROKER_URL`). Any broker URL Celery
takes works (``redis://``, ``rediss://``, ``amqp://``, ``sqs://``...). Messages show it
with its password masked (:func:`shown_url`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..core.configfile import profile_setting
from ..core.limiterlocation import shown_url
from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_BROKER_URL",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "ENV_VARIABLE",
    "SETTING",
    "VISIBILITY_ENV",
    "broker_problem",
    "broker_url",
    "shown_url",
    "visibility_timeout",
]

ENV_VARIABLE = "CANCELKIT_BROKER_URL"
SETTING = "broker_url"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
#: Seconds a Redis-type broker waits for an unacknowledged task before handing it to
#: another worker (tasks are acknowledged after they ran: ``acks_late``).
VISIBILITY_ENV = "CANCELKIT_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_TIMEOUT = 3600


def broker_url(
    *,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
) -> tuple[str, str]:
    """``(url, where)`` of the broker: environment, then config file, then the default.

    ``where`` names the source for messages (``broker_url (from $CANCELKIT_BROKER_URL)``).
    An empty value in the config file is a ConfigurationError naming it.
    """
    if env.get(ENV_VARIABLE):
        return env[ENV_VARIABLE], f"{SETTING} (from ${ENV_VARIABLE})"
    found = profile_setting(SETTING, env=env, config_path=config_path, profile=profile)
    if found is not None:
        if not found[0].strip():
            raise ConfigurationError(f"{found[1]}: must not be empty")
        return found
    return DEFAULT_BROKER_URL, f"{SETTING} (the default)"


#: Transports whose virtual host is a Redis database number.
_REDIS_TRANSPORTS = frozenset({"redis", "rediss"})


def broker_problem(url: str) -> str | None:
    """Why ``url`` cannot be a broker URL (one line, no secret in it), or None.

    Read as Celery will read it (kombu parses it and loads its transport, connecting
    nowhere), so a mistake is caught before anything is listed or queued, not as an
    internal error once the connection is tried.
    """
    from kombu.connection import Connection

    scheme, separator, _ = url.strip().partition("://")
    if not separator or not scheme:
        return "must be a broker URL such as redis://HOST:6379/0 (no scheme:// in it)"
    try:
        connection = Connection(url)  # type: ignore[no-untyped-call]
        connection.transport  # noqa: B018 - imports the transport's module, if installed
    except ModuleNotFoundError as error:
        return (
            f"the {scheme} transport needs the Python package {error.name}, which is not "
            f"installed (pip install 'celery[{scheme.partition('+')[0]}]')"
        )
    except KeyError:
        return f"unknown broker transport {scheme!r} (redis://, rediss://, amqp://, sqs://...)"
    except TypeError as error:  # kombu: a setting given twice (user part and query)
        named = str(error).rpartition(" ")[2].strip("'\"")
        return f"{named or 'a setting'} is given both in the URL and in its query"
    except Exception as error:  # ValueError: a bad port, say
        return f"cannot be read: {_without_credentials(str(error), url)}"
    database = str(connection.virtual_host or "").strip("/")
    if connection.transport_cls in _REDIS_TRANSPORTS and database and not database.isdigit():
        return (
            "the Redis database after the host must be a number (a password holding "
            "/ # ? or @ must be percent-encoded: %2F %23 %3F %40)"
        )
    return None


def _without_credentials(text: str, url: str) -> str:
    """kombu's message about ``url``, with what it quotes of it (which may be a piece
    of a password) and every piece of the user part masked."""
    rest = url.partition("://")[2]
    credentials = rest.rpartition("@")[0] if "@" in rest else ""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'***'", text)
    for piece in sorted({credentials, *re.split(r"[:@/#?]", credentials)}, key=len, reverse=True):
        if len(piece) >= 3:  # shorter ones would mask words (kombu quotes its values)
            text = text.replace(piece, "***")
    return text[:200]


def visibility_timeout(env: Mapping[str, str] = os.environ) -> int:
    """``CANCELKIT_VISIBILITY_TIMEOUT`` in whole seconds (default 3600); a value that is
    not a positive whole number is a ConfigurationError naming it."""
    raw = env.get(VISIBILITY_ENV, "").strip()
    if not raw:
        return DEFAULT_VISIBILITY_TIMEOUT
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ConfigurationError(
            f"${VISIBILITY_ENV}: must be a whole number of seconds greater than 0, not {raw!r}"
        )
    return seconds
