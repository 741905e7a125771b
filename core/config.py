"""Settings and credentials per platform (contract: README "Credentials").

Sources, strongest first: values passed explicitly (library ``config=`` or the
sandbox), environment variables ``CANCELKIT_<PLATFORM>_<FIELD>``, then the TOML
config file's profile table ``[<profile>.<platform>]`` with lower-case field
names (:mod:`cancelkit.core.configfile`). Every value is checked against its
setting's ``kind`` when the settings load (:mod:`cancelkit.core.settingkinds`),
so a bad value is a ConfigurationError naming the setting before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .configfile import default_config_path as default_config_path
from .configfile import platform_table
from .settingkinds import KINDS, SettingKind, problem

#: Settings core itself reads, checked as this kind whatever a plugin declares.
CORE_KINDS: dict[str, SettingKind] = {"timeout": "seconds", "poll_interval": "seconds"}


@dataclass(frozen=True)
class Setting:
    """One setting a platform reads; ``secret`` ones are never shown anywhere.

    ``kind`` says what it holds: ``text`` (anything), ``url`` (http or https with a
    host) or ``seconds`` (a number > 0). Secrets of any kind must also fit in an
    HTTP header (no control characters, Latin-1, no surrounding whitespace).
    """

    name: str
    description: str
    default: str | None = None
    secret: bool = False
    kind: SettingKind = "text"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name!r}: kind must be one of {KINDS}")


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
    use_file: bool = True,
) -> Settings:
    """Resolve ``platform``'s settings from explicit values, environment and file.

    ``use_file=False`` ignores the config file and its profiles (sandbox clients:
    their settings come from the sandbox alone).

    Raises ConfigurationError for a missing named config file or profile, a
    malformed file, an unknown setting, or a value its setting's kind refuses.
    """
    names = {s.name for s in declared}
    values: dict[str, str] = {}
    where: dict[str, str] = {}  # how a message names the source of each value
    for setting in declared:
        if setting.default is not None:
            values[setting.name] = setting.default
            where[setting.name] = f"the default of setting {setting.name!r}"
    table = (
        platform_table(platform, env=env, config_path=config_path, profile=profile)
        if use_file
        else None
    )
    if table is not None:
        for key, value in table.values.items():
            if key not in names:
                unknown = _unknown(platform, key, names)
                raise ConfigurationError(f"config file {table.path}: {unknown}")
            values[key], where[key] = value, table.where(key)
    prefix = env_prefix(platform)
    for name in names:
        if env.get(prefix + name.upper()):
            values[name], where[name] = env[prefix + name.upper()], prefix + name.upper()
    for key, value in (explicit or {}).items():
        if key not in names:
            raise ConfigurationError(_unknown(platform, key, names))
        if value is not None:
            values[key], where[key] = str(value), f"setting {key!r} (passed in config=)"
    for setting in declared:
        kind = CORE_KINDS.get(setting.name, setting.kind)
        found = problem(kind, setting.secret, values.get(setting.name, ""))
        if found:
            # A secret may have been pasted into another setting: never print one.
            for secret in _secret_values(declared, values):
                found = found.replace(secret, "***")
            raise ConfigurationError(f"{platform}: {where[setting.name]} {found}")
    return Settings(platform, values, declared)


def _secret_values(declared: tuple[Setting, ...], values: Mapping[str, str]) -> list[str]:
    secret = {s.name for s in declared if s.secret}
    return sorted((v for k, v in values.items() if k in secret and v), key=len, reverse=True)


def _unknown(platform: str, key: str, names: set[str]) -> str:
    return f"{platform}: unknown setting {key!r}; known: {', '.join(sorted(names))}"
