"""Where the Celery broker is: the profile-level setting ``broker_url``.

Strongest first: ``CANCELKIT_BROKER_URL``, the config file's ``[profile] broker_url``,
else a Redis on this machine (:data:`DEFAULT_BROKER_URL`). Any broker URL Celery
takes works (``redis://``, ``rediss://``, ``amqp://``, ``sqs://``...). Messages show it
with its password masked (:func:`shown_url`).
"""

from __future__ import annotations

import os
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
