"""Settings and credentials per platform (contract: README "Credentials").

Sources, strongest first: values passed explicitly (library ``config=`` or the
sandbox), environment variables ``CANCELKIT_<PLATFORM>_<FIELD>``, then the TOML
config file's profile table ``[<profile>.<platform>]`` with lower-case field
names. The file is ``$CANCELKIT_CONFIG`` or ``~/.config/cancelkit/config.toml``;
the profile is ``$CANCELKIT_PROFILE`` or ``default``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Setting:
    """One setting a platform reads; ``secret`` ones are never shown anywhere."""

    name: str
    description: str
    default: str | None = None
    secret: bool = False


def default_config_path(env: Mapping[str, str] = os.environ) -> Path:
    """Where the TOML config file is looked for."""
    if env.get("CANCELKIT_CONFIG"):
        return Path(env["CANCELKIT_CONFIG"])
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "cancelkit" / "config.toml"


def env_prefix(platform: str) -> str:
    """``salesforce-flow`` -> ``CANCELKIT_SALESFORCE_FLOW_``."""
    return "CANCELKIT_" + platform.upper().replace("-", "_") + "_"


class Settings(Mapping[str, str]):
    """Resolved settings of one platform: a read-only mapping with helpers."""

    def __init__(self, platform: str, values: Mapping[str, str], declared: tuple[Setting, ...]):
        self.platform = platform
        self._values = dict(values)
        self._declared = {s.name: s for s in declared}

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def require(self, *names: str) -> str:
        """The first of ``names`` that is set, or a ConfigurationError naming them."""
        for name in names:
            if self._values.get(name):
                return self._values[name]
        wanted = " or ".join(env_prefix(self.platform) + n.upper() for n in names)
        raise ConfigurationError(f"{self.platform}: missing setting {wanted}")

    def secret_values(self) -> list[str]:
        """Values of secret settings, so callers can scrub them from any text."""
        return [v for k, v in self._values.items() if v and self._declared.get(k, _PUBLIC).secret]

    def __repr__(self) -> str:
        shown = {
            k: ("***" if self._declared.get(k, _PUBLIC).secret else v)
            for k, v in self._values.items()
        }
        return f"Settings({self.platform!r}, {shown})"


_PUBLIC = Setting("", "")


def load_settings(
    platform: str,
    declared: tuple[Setting, ...],
    *,
    explicit: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    profile: str | None = None,
) -> Settings:
    """Resolve ``platform``'s settings from explicit values, environment and file."""
    names = {s.name for s in declared}
    values: dict[str, str] = {s.name: s.default for s in declared if s.default is not None}
    values.update(_from_file(platform, names, env, config_path, profile))
    prefix = env_prefix(platform)
    for name in names:
        if env.get(prefix + name.upper()):
            values[name] = env[prefix + name.upper()]
    for key, value in (explicit or {}).items():
        if key not in names:
            raise ConfigurationError(_unknown(platform, key, names))
        if value is not None:
            values[key] = str(value)
    return Settings(platform, values, declared)


def _from_file(
    platform: str,
    names: set[str],
    env: Mapping[str, str],
    config_path: Path | None,
    profile: str | None,
) -> dict[str, str]:
    path = config_path or default_config_path(env)
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"config file {path}: {error}") from None
    profile = profile or env.get("CANCELKIT_PROFILE") or "default"
    table = document.get(profile, {}).get(platform, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"config file {path}: [{profile}.{platform}] must be a table")
    for key in table:
        if key not in names:
            raise ConfigurationError(f"config file {path}: {_unknown(platform, key, names)}")
    return {k: str(v) for k, v in table.items()}


def _unknown(platform: str, key: str, names: set[str]) -> str:
    return f"{platform}: unknown setting {key!r}; known: {', '.join(sorted(names))}"
