"""Where the ledger lives: one URL, chosen once per client.

Strongest first: ``CANCELKIT_LEDGER_URL``, the config file's profile-level
``ledger_url`` (``[default] ledger_url = "postgresql://..."``), else an SQLite file
in the user's data directory (platformdirs: ``~/.local/share/cancelkit/ledger.sqlite3``
on Linux, ``~/Library/Application Support/cancelkit`` on macOS, ``%LOCALAPPDATA%`` on
Windows). A sandbox keeps its own ledger beside its state file, never this one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ConfigurationError
from ..configfile import profile_setting

if TYPE_CHECKING:
    import sqlalchemy as sa

ENV_VARIABLE = "CANCELKIT_LEDGER_URL"
FILE_NAME = "ledger.sqlite3"


def default_ledger_path() -> Path:
    """The SQLite ledger file used when no URL is configured."""
    import platformdirs

    return Path(platformdirs.user_data_dir("cancelkit", appauthor=False)) / FILE_NAME


def sandbox_ledger_path(state_path: Path) -> Path:
    """The sandbox ledger, beside its state file: ``state.json`` -> ``state.ledger.sqlite3``."""
    return state_path.with_name(state_path.stem + ".ledger.sqlite3")


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of an SQLite file."""
    return f"sqlite:///{path}"


def ledger_url(
    *,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
) -> str:
    """The configured ledger URL (environment, then config file), else the default file's."""
    if env.get(ENV_VARIABLE):
        return env[ENV_VARIABLE]
    found = profile_setting("ledger_url", env=env, config_path=config_path, profile=profile)
    if found is not None:
        if not found[0].strip():
            raise ConfigurationError(f"{found[1]}: must not be empty")
        return found[0]
    return sqlite_url(default_ledger_path())


def engine_url(url: str) -> str:
    """``url`` with the driver cancelkit installs: ``postgresql://`` means psycopg 3.

    SQLAlchemy's own default for a bare ``postgresql://`` is psycopg2, which we do not
    depend on; a URL naming a driver (``postgresql+pg8000://``) is kept as given.
    """
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def shown_url(url: sa.URL) -> str:
    """``url`` as messages show it: the password masked, in the user part and in the
    query alike (libpq also reads ``?password=`` and ``?sslpassword=``)."""
    query = {
        name: ("***" if "password" in name.lower() else value) for name, value in url.query.items()
    }
    shown = url.set(query=query).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # the query's mask, as the user part's reads
