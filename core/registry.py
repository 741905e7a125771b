"""The plugin manager: built-in plugins, then entry points; keeps going past broken ones.

Built-in platforms register in-process from :data:`BUILTIN_PLUGINS` (as datasette's
``DEFAULT_PLUGINS``), so no installed metadata can lose them; outside plugins come
from the ``cancelkit.plugins`` entry point group. Like ``datasette plugins``: every
plugin that failed to import or to register is remembered with the reason, so
``cancelkit platforms`` can show it, while all the others keep working.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import pluggy

from ..errors import UnknownPlatformError
from . import builtin_hooks, hookspecs
from .adapter import PlatformAdapter
from .entrypoints import entry_points

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .entrypoints import PluginEntryPoint
    from .sandbox.emulator import Emulator

ENTRY_POINT_GROUP = "cancelkit.plugins"
#: Set to 1 to trace every hook call on stderr (pluggy's tracing).
TRACE_VARIABLE = "CANCELKIT_TRACE_PLUGINS"

#: The built-in platform plugins, registered before any entry point, each under its
#: folder's name (``cancelkit.plugins.<name>.plugin``). Alphabetical, the order
#: ``cancelkit platforms`` lists them in.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "cancelkit.plugins.aboutyou.plugin",
    "cancelkit.plugins.carriyo.plugin",
    "cancelkit.plugins.mirakl.plugin",
    "cancelkit.plugins.salesforce.plugin",
)


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    name: str
    source: str
    error: str


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin that loaded, and where it came from."""

    name: str
    source: str


@dataclass(frozen=True)
class Distribution:
    """The installed package a plugin came from, as ``pip`` names it (``datasette plugins``)."""

    name: str
    version: str | None


class PluginRegistry:
    """Plugins, the platforms they provide, and the ones that failed to load."""

    def __init__(
        self,
        entry_points_to_load: Iterable[EntryPoint | PluginEntryPoint] | None = None,
        builtin_plugins: Iterable[str] | None = None,
    ):
        """Register the built-in plugins, then the outside ones.

        ``builtin_plugins`` (module names) defaults to :data:`BUILTIN_PLUGINS`;
        ``entry_points_to_load`` to the installed ``cancelkit.plugins`` entry
        points - pass ``()`` for the built-in platforms only.
        """
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if os.environ.get(TRACE_VARIABLE):  # every hook call, its arguments and results
            self.pm.trace.root.setwriter(_scrubbed_stderr)
            self.pm.enable_tracing()
        self.pm.register(builtin_hooks, name="cancelkit.core.builtin_hooks")
        self.loaded: list[LoadedPlugin] = []
        #: platform name -> the plugin (built-in or entry point name) that provides it
        self.providers: dict[str, str] = {}
        self.broken: list[BrokenPlugin] = []
        self._platforms: dict[str, PlatformAdapter] | None = None
        #: plugin name -> the entry point it was loaded from (outside plugins only)
        self._entry_points: dict[str, EntryPoint | PluginEntryPoint] = {}
        self._builtin_names: set[str] = set()
        builtin_modules = tuple(BUILTIN_PLUGINS if builtin_plugins is None else builtin_plugins)
        for module_name in builtin_modules:
            self._load_builtin(module_name)
        if entry_points_to_load is None:
            entry_points_to_load = entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in entry_points_to_load:
            # Metadata of an older install may still list the built-ins as entry
            # points: they are registered already, and must not be twice.
            if entry_point.module not in builtin_modules:
                self._load(entry_point)

    def _load_builtin(self, module_name: str) -> None:
        name = module_name.removesuffix(".plugin").rsplit(".", 1)[-1]  # plugins.<name>.plugin
        try:
            plugin = importlib.import_module(module_name)
        except Exception as error:  # a broken built-in is reported like any plugin
            self.broken.append(BrokenPlugin(name, module_name, _why(error)))
            return
        self._builtin_names.add(name)
        self.register(plugin, name, module_name)

    def _load(self, entry_point: EntryPoint | PluginEntryPoint) -> None:
        try:
            plugin = entry_point.load()
        except Exception as error:  # a broken plugin must not break the others
            self.broken.append(BrokenPlugin(entry_point.name, entry_point.value, _why(error)))
            return
        self._entry_points[entry_point.name] = entry_point
        self.register(plugin, entry_point.name, entry_point.value)

    def distribution(self, plugin_name: str) -> Distribution | None:
        """The installed distribution a loaded plugin comes from, with its version.

        A built-in plugin comes from ``cancelkit``; an outside one from the package
        whose metadata declares its ``cancelkit.plugins`` entry point. ``None`` for a
        plugin registered in-process (:meth:`register`). Reads installed metadata
        (importlib.metadata), so only the commands that show it pay for it.
        """
        from importlib import metadata
        from pathlib import Path

        if plugin_name in self._builtin_names:
            try:
                return Distribution("cancelkit", metadata.version("cancelkit"))
            except metadata.PackageNotFoundError:  # run from a source tree, not installed
                from .. import __version__

                return Distribution("cancelkit", __version__)
        entry_point = self._entry_points.get(plugin_name)
        found: Any = getattr(entry_point, "dist", None)  # importlib.metadata's EntryPoint
        path = getattr(entry_point, "metadata_path", "")  # ours (entrypoints.py)
        if found is None and path:
            found = metadata.PathDistribution(Path(path))
        if found is None:
            return None
        name = found.metadata["Name"]
        return Distribution(str(name), found.version) if name else None

    def register(self, plugin: ModuleType | object, name: str, source: str = "") -> None:
        """Register a plugin object (module or instance), as entry points do.

        A plugin implementing a ``cancelkit_*`` hook that does not exist (a typo)
        is refused and reported, as pluggy's ``check_pending`` would.
        """
        try:
            self.pm.register(plugin, name=name)
        except Exception as error:
            self.broken.append(BrokenPlugin(name, source or repr(plugin), _why(error)))
            return
        unknown = self._unknown_hooks(plugin)
        if unknown:
            self.pm.unregister(plugin)
            self.broken.append(BrokenPlugin(name, source or repr(plugin), unknown))
            return
        self.loaded.append(LoadedPlugin(name, source or repr(plugin)))
        self._platforms = None

    def _unknown_hooks(self, plugin: object) -> str:
        """Why ``plugin``'s hook implementations do not all match a hookspec ('' if they do)."""
        known = [n for n in dir(hookspecs) if n.startswith(f"{hookspecs.PROJECT}_")]
        problems = []
        for hook_name, caller in vars(self.pm.hook).items():
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            if any(impl.plugin is plugin for impl in caller.get_hookimpls()):
                import difflib  # only for a misspelled hook

                close = difflib.get_close_matches(hook_name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"unknown hook {hook_name}{hint}")
        return "; ".join(problems)

    def _call_each(self, hook_name: str) -> Iterator[tuple[str, Callable[[], list[Any]]]]:
        """(plugin name, a call of ``hook_name`` on that plugin alone), per implementation.

        Each call goes through pluggy's hook caller - so tracing and wrappers apply -
        while a raising plugin can still be told apart from the others.
        """
        caller = getattr(self.pm.hook, hook_name)
        everyone = [impl.plugin for impl in caller.get_hookimpls()]
        for impl in caller.get_hookimpls():
            others = [p for p in everyone if p is not impl.plugin]
            yield impl.plugin_name, self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    @property
    def hook(self) -> hookspecs.HookRelay:
        """The pluggy hook relay (``registry.hook.cancelkit_translate(...)``), typed."""
        return cast("hookspecs.HookRelay", self.pm.hook)

    def platforms(self) -> dict[str, PlatformAdapter]:
        """Every platform adapter, by name; plugins whose hook raises are reported."""
        if self._platforms is None:
            self._platforms = {}
            for plugin_name, call in self._call_each("cancelkit_platforms"):
                self._collect(plugin_name, call)
        return self._platforms

    def _collect(self, plugin_name: str, call: Callable[[], list[Any]]) -> None:
        assert self._platforms is not None
        try:
            adapters = [a for result in call() for a in result or ()]
            for adapter in adapters:
                if not isinstance(adapter, PlatformAdapter):
                    raise TypeError(f"{adapter!r} is not a PlatformAdapter")
        except Exception as error:
            self._drop(plugin_name, _why(error))
            return
        for adapter in adapters:
            if adapter.name in self._platforms:
                self.broken.append(
                    BrokenPlugin(
                        plugin_name, plugin_name, f"platform {adapter.name!r} is already provided"
                    )
                )
                continue
            self._platforms[adapter.name] = adapter
            self.providers[adapter.name] = plugin_name

    def _drop(self, plugin_name: str, why: str) -> None:
        self.broken.append(BrokenPlugin(plugin_name, plugin_name, why))
        self.loaded = [p for p in self.loaded if p.name != plugin_name]

    def emulators(self) -> list[Emulator]:
        """Fresh sandbox emulators from every plugin; a raising plugin is reported."""
        found: list[Emulator] = []
        for plugin_name, call in self._call_each("cancelkit_sandbox_emulators"):
            try:
                found.extend(e for result in call() for e in result or ())
            except Exception as error:
                self.broken.append(BrokenPlugin(plugin_name, plugin_name, _why(error)))
        return found

    def examples(self) -> dict[str, Mapping[str, Any]]:
        """Example requests by platform name (``cancelkit_examples``); raising plugins reported.

        When two plugins give one platform an example, the one pluggy calls first wins.
        """
        found: dict[str, Mapping[str, Any]] = {}
        # _call_each goes in registration order and pluggy calls the last one first,
        # so a later entry overwrites: the example kept is the one called first.
        for plugin_name, call in self._call_each("cancelkit_examples"):
            try:
                given: dict[str, Mapping[str, Any]] = {}
                for result in call():
                    for platform, request in (result or {}).items():
                        if not isinstance(platform, str) or not isinstance(request, Mapping):
                            raise TypeError(
                                f"cancelkit_examples must map platform names to requests, "
                                f"not {platform!r} to {type(request).__name__}"
                            )
                        given[platform] = request
            except Exception as error:
                self.broken.append(BrokenPlugin(plugin_name, plugin_name, _why(error)))
                continue
            found.update(given)
        return found

    def platform(self, name: str) -> PlatformAdapter:
        """The adapter called ``name``, or an error listing the known ones."""
        platforms = self.platforms()
        if name not in platforms:
            known = ", ".join(sorted(platforms)) or "none"
            raise UnknownPlatformError(f"platform: unknown platform {name!r}; known: {known}")
        return platforms[name]


def _scrubbed_stderr(text: str) -> None:
    """Trace output may quote answers that echo a credential: mask every known secret."""
    from .secrets import scrub_process_wide

    sys.stderr.write(scrub_process_wide(text))


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
