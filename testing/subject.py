"""What a conformance class tests, resolved from its attributes once per class.

A class names the plugin (``plugin``) or the adapter and its emulator (``adapter``,
``emulator``); everything else - examples, scenarios, a registry holding only
that plugin, clients wired to a sandbox or to a recording proxy - is derived here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cancelkit.core.hookspecs import hookimpl

from .clock import ControlledClock

if TYPE_CHECKING:
    from cancelkit.core.adapter import PlatformAdapter
    from cancelkit.core.client import Client
    from cancelkit.core.config import Settings
    from cancelkit.core.model import CancelRequest
    from cancelkit.core.registry import PluginRegistry
    from cancelkit.core.sandbox.emulator import Emulator
    from cancelkit.core.scenario import Scenario


class Provides:
    """A plugin made of one adapter and (optionally) its emulator."""

    def __init__(
        self, adapter: PlatformAdapter, emulator: Callable[[], Emulator] | None = None
    ) -> None:
        self.adapter = adapter
        self.emulator = emulator

    @hookimpl
    def cancelkit_platforms(self) -> list[PlatformAdapter]:
        """The adapter under test."""
        return [self.adapter]

    @hookimpl
    def cancelkit_sandbox_emulators(self) -> list[Emulator]:
        """A fresh emulator, if one was given."""
        return [self.emulator()] if self.emulator else []


@dataclass
class Subject:
    """The platform under test and how to reach it."""

    platform: str
    plugin: object
    adapter: PlatformAdapter
    #: A registry shared by clients that register nothing of their own.
    registry: PluginRegistry
    emulator: Callable[[], Emulator]
    examples: list[Mapping[str, Any]]
    scenarios: list[Scenario]

    def fresh_registry(self) -> PluginRegistry:
        """A registry holding only the plugin under test (and core's own hooks)."""
        return registry_of(self.plugin)

    def example(self, index: int = 0) -> dict[str, Any]:
        """A deep copy of example ``index``."""
        return copy.deepcopy(dict(self.examples[index]))

    def settings_name(self) -> str:
        """The key of this platform's settings in a client config (the emulator's platform)."""
        return self.emulator().platform

    def client(
        self,
        config: Mapping[str, Mapping[str, str]],
        clock: ControlledClock | None = None,
        registry: PluginRegistry | None = None,
    ) -> Client:
        """A sandbox-mode client: ``config`` is all it reads, loopback is all it reaches."""
        from cancelkit.core.client import Client

        clock = clock or ControlledClock()
        return Client(
            registry=registry or self.registry,
            config=config,
            env={},
            sleep=clock.sleep,
            clock=clock,
            sandbox=True,
            ledger=False,
        )

    def config_at(self, base: str, **changes: str) -> dict[str, dict[str, str]]:
        """The emulator's client settings for a sandbox at ``base``, with ``changes``."""
        emulator = self.emulator()
        settings = emulator.client_settings(f"{base.rstrip('/')}/{emulator.platform}")
        return {emulator.platform: {**settings, **changes}}

    def offline_client(self, **changes: str) -> Client:
        """A client for translate and prepare only (its URLs lead nowhere)."""
        return self.client(self.config_at("http://127.0.0.1:9", **changes))

    def prepared(self, client: Client) -> list[CancelRequest]:
        """Every example, loaded and validated for this platform."""
        return [client.prepare(self.example(i), self.platform) for i in range(len(self.examples))]

    def settings_of(self, client: Client) -> Settings:
        """The platform's resolved settings in ``client``."""
        return client.settings(self.platform)


def registry_of(plugin: object) -> PluginRegistry:
    """A registry with ``plugin`` only; a plugin that fails to register is an error."""
    from cancelkit.core.registry import PluginRegistry

    registry = PluginRegistry(entry_points_to_load=(), builtin_plugins=())
    registry.register(plugin, f"conformance-{id(plugin):x}")
    registry.platforms()
    if registry.broken:
        problems = "; ".join(f"{b.name}: {b.error}" for b in registry.broken)
        raise TypeError(f"the plugin under test does not load: {problems}")
    return registry


def resolve(cls: type) -> Subject:
    """The :class:`Subject` of conformance class ``cls`` (see PlatformConformance)."""
    given_plugin: object | None = vars_of(cls, "plugin")
    adapter: PlatformAdapter | None = vars_of(cls, "adapter")
    emulator: Callable[[], Emulator] | None = vars_of(cls, "emulator")
    if given_plugin is None and adapter is None:
        raise TypeError(f"{cls.__name__}: set `plugin` (with `platform`) or `adapter`")
    if given_plugin is not None:
        plugin = given_plugin
    else:
        assert adapter is not None
        plugin = Provides(adapter, emulator)
    platform: str = vars_of(cls, "platform") or (adapter.name if adapter else "")
    if not platform:
        raise TypeError(f"{cls.__name__}: set `platform`, the name of the adapter under test")
    try:
        return subject_for(
            plugin,
            platform,
            emulator=emulator,
            examples=vars_of(cls, "examples"),
            scenarios=vars_of(cls, "scenarios"),
        )
    except TypeError as error:
        raise TypeError(f"{cls.__name__}: {error}") from None


def subject_for(
    plugin: object,
    platform: str,
    *,
    emulator: Callable[[], Emulator] | None = None,
    examples: Sequence[Mapping[str, Any]] | None = None,
    scenarios: Sequence[Scenario] | None = None,
) -> Subject:
    """``platform`` of ``plugin``; what is not given comes from the plugin's hooks."""
    from cancelkit.core.cassettes import scenarios as registered_scenarios

    registry = registry_of(plugin)
    found = registry.platform(platform)
    if emulator is None:
        if not any(platform in e.platforms() for e in registry.emulators()):
            raise TypeError(f"no emulator of the plugin serves {platform!r}; set `emulator`")
        emulator = _emulator_of(plugin, platform)
    if examples is None:
        shipped = registry.examples().get(platform)
        examples = [shipped] if shipped is not None else []
    if not examples:
        raise TypeError(f"the plugin ships no example for {platform!r}; set `examples`")
    if scenarios is None:
        scenarios = [s for s in registered_scenarios(registry) if s.platform == platform]
    return Subject(platform, plugin, found, registry, emulator, list(examples), list(scenarios))


def _emulator_of(plugin: object, platform: str) -> Callable[[], Emulator]:
    """Makes a fresh emulator serving ``platform`` from the plugin's hook."""

    def make() -> Emulator:
        fresh = registry_of(plugin).emulators()
        return next(e for e in fresh if platform in e.platforms())

    return make


def vars_of(cls: type, name: str) -> Any:
    """Class attribute ``name`` as set, never bound as a method (a function stays a function)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            return value.__func__ if isinstance(value, staticmethod) else value
    return None
