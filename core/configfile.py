"""The TOML config file: found, read, checked for shape, and one profile's table picked.

Contract: README "Credentials and settings". A file named by the caller
(``--config`` / ``config_path=`` / ``$CANCELKIT_CONFIG``) must exist; the default
``~/.config/cancelkit/config.toml`` may be absent. A profile named by the caller
(``--profile`` / ``profile=`` / ``$CANCELKIT_PROFILE``) must be in the file; the
implicit ``default`` profile may be absent. Every problem is a ConfigurationError
naming the file and the key, so the CLI exits 4 with a message, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..errors import ConfigurationError

DEFAULT_PROFILE = "default"

#: Settings of a whole profile rather than of one platform (``[default] ledger_url``).
PROFILE_SETTINGS: tuple[str, ...] = ("ledger_url", "limiter_url", "broker_url")


@dataclass(frozen=True)
class FileTable:
    """The ``[<profile>.<platform>]`` table of a config file, values as text."""

    path: Path
    profile: str
    platform: str
    values: dict[str, str]

    def where(self, key: str) -> str:
        """How a message names ``key`` of this table."""
        return f"config file {self.path}: [{self.profile}.{self.platform}] {key}"


def default_config_path(env: Mapping[str, str] = os.environ) -> Path:
    """Where the TOML config file is looked for."""
    if env.get("CANCELKIT_CONFIG"):
        return Path(env["CANCELKIT_CONFIG"])
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "cancelkit" / "config.toml"


def platform_table(
    platform: str,
    *,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
) -> FileTable | None:
    """``platform``'s table in the chosen profile, or ``None`` when the file has none."""
    path, path_named = _locate(env, config_path)
    name, profile_named = _profile(env, profile)
    try:
        exists = path.exists()
    except OSError as error:  # a name too long for the file system, say
        raise ConfigurationError(f"config file {str(path)[:200]}: {error.strerror}") from None
    if not exists:
        if path_named is not None:
            raise ConfigurationError(f"config file {path}{path_named} does not exist")
        if profile_named is not None:
            raise ConfigurationError(
                f"profile {name!r}{profile_named} asked for, but there is no config file "
                f"({path} does not exist)"
            )
        return None
    document = _read(path)
    if name not in document:
        if profile_named is not None:
            known = ", ".join(sorted(document)) or "none"
            raise ConfigurationError(
                f"config file {path}: no profile {name!r}{profile_named}; profiles there: {known}"
            )
        return None
    table = document[name].get(platform, {})
    values = {key: _text(path, f"[{name}.{platform}] {key}", v) for key, v in table.items()}
    return FileTable(path, name, platform, values)


def profile_setting(
    name: str,
    *,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
) -> tuple[str, str] | None:
    """``(value, where)`` of a profile-level setting (one of :data:`PROFILE_SETTINGS`).

    ``None`` when there is no config file, no such profile or no such key; a file or
    profile that was named but is missing raises as for platform settings.
    """
    path, path_named = _locate(env, config_path)
    chosen, profile_named = _profile(env, profile)
    if not path.exists():
        if path_named is not None:
            raise ConfigurationError(f"config file {path}{path_named} does not exist")
        return None
    document = _read(path)
    if chosen not in document:
        if profile_named is not None:
            raise ConfigurationError(f"config file {path}: no profile {chosen!r}{profile_named}")
        return None
    value = document[chosen].get(name)
    if value is None:
        return None
    return _text(path, f"[{chosen}] {name}", value), f"config file {path}: [{chosen}] {name}"


def _locate(env: Mapping[str, str], config_path: Path | None) -> tuple[Path, str | None]:
    """The file's path, and how the caller named it (``None`` for the default path)."""
    if config_path is not None:
        return config_path, ""
    if env.get("CANCELKIT_CONFIG"):
        return default_config_path(env), " (from $CANCELKIT_CONFIG)"
    return default_config_path(env), None


def _profile(env: Mapping[str, str], profile: str | None) -> tuple[str, str | None]:
    """The profile's name, and how the caller named it (``None`` for the implicit default)."""
    if profile:
        chosen, how = profile, ""
    elif env.get("CANCELKIT_PROFILE"):
        chosen, how = env["CANCELKIT_PROFILE"], " (from $CANCELKIT_PROFILE)"
    else:
        return DEFAULT_PROFILE, None
    # Naming ``default`` is the same as naming nothing: it may be absent.
    return chosen, (None if chosen == DEFAULT_PROFILE else how)


def _read(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Parse ``path`` and check its shape: profiles of platform tables."""
    if not path.is_file():
        raise ConfigurationError(f"config file {path} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"config file {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"config file {path} is not UTF-8 text "
            f"(byte 0x{raw[error.start]:02x} at offset {error.start})"
        ) from None
    # The TOML parser loads only when there is a file to read (most runs have none).
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"config file {path} is not valid TOML: {error}") from None
    for profile, platforms in document.items():
        if not isinstance(platforms, dict):
            raise ConfigurationError(
                f"config file {path}: {profile!r} must be a profile table of platform tables, "
                f"such as [{profile}.mirakl], not {_type_name(platforms)}"
            )
        for platform, table in platforms.items():
            if platform in PROFILE_SETTINGS:
                _text(path, f"[{profile}] {platform}", table)
                continue
            if not isinstance(table, dict):
                raise ConfigurationError(
                    f"config file {path}: [{profile}] {platform} must be a table "
                    f"([{profile}.{platform}]), not {_type_name(table)}"
                )
    return cast("dict[str, dict[str, dict[str, Any]]]", document)


def _text(path: Path, where: str, value: Any) -> str:
    """A setting's value as text; TOML numbers are fine, anything else is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigurationError(
        f"config file {path}: {where} must be a string or a number, not {_type_name(value)}"
    )


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "a table"})
    return names.get(type(value), f"a {type(value).__name__}")
