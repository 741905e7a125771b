# Hook specifications are signatures with docstrings only, like pytest's hookspec.py.
# mypy: disable-error-code="empty-body"
"""Every hook a cancelkit plugin can implement (pluggy project name ``cancelkit``).

A plugin is any module or object with functions marked ``@hookimpl``, registered
through the entry-point group ``cancelkit.plugins`` - the built-in platforms
register exactly that way. Hooks are called in pluggy's order: last registered
first, ``tryfirst``/``trylast`` adjust it. Hooks marked *first result* stop at the
first implementation that returns something other than ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from .adapter import PlatformAdapter
    from .config import Settings
    from .http import HttpCall, HttpResponse
    from .model import CancelRequest, CancelResult
    from .sandbox.emulator import Emulator
    from .scenario import Scenario

PROJECT = "cancelkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cancelkit_platforms() -> Sequence[PlatformAdapter]:
    """Register platform adapters.

    Called once when the plugin manager loads, with no arguments. Return a list of
    :class:`~cancelkit.core.adapter.PlatformAdapter` instances (or an empty list).
    All results are collected; two adapters with the same ``name`` are an error
    reported by ``cancelkit platforms``, the first one loaded is kept.
    """


@hookspec
def cancelkit_sandbox_emulators() -> Sequence[Emulator]:
    """Register sandbox emulators, one per platform the plugin emulates.

    Called when a sandbox starts (``cancelkit sandbox``, ``--sandbox``). Return a
    list of :class:`~cancelkit.core.sandbox.emulator.Emulator` instances; each
    serves the URL prefix ``/<emulator.platform>/``. All results are collected.
    """


@hookspec
def cancelkit_cassette_scenarios() -> Sequence[Scenario]:
    """Register cassette scenarios: scripted sends and status calls to record.

    Called by the cassette recorder (``cancelkit cassettes record|check``) and by
    the replay tests. Return a list of :class:`~cancelkit.plugin.Scenario`;
    each is recorded against the sandbox into ``cassettes/<platform>/<name>.yaml``.
    All results are collected.
    """


@hookspec
def cancelkit_examples() -> Mapping[str, Mapping[str, Any]]:
    """Ship example canonical requests: what ``cancelkit example PLATFORM`` prints.

    Called by ``cancelkit example`` (and its shell completion), with no arguments;
    never by ``translate`` or ``send``. Return a mapping of platform name -> one
    canonical request for that platform, as a request file holds it (JSON-ready
    values, ``Decimal`` allowed), valid for that platform and, ideally, cancelling
    lines of its sandbox emulator's seeded demo orders, so that ``cancelkit example P
    | cancelkit send --sandbox -p P -`` works. The examples must ship inside the
    plugin's package: ``cancelkit.plugin.packaged_examples(__package__)`` reads every
    ``<platform>.example.json`` beside the plugin module (list them as package data).
    All results are collected; when two plugins give one platform an example, the
    one pluggy calls first (the one registered last, or ``tryfirst``) is kept, so an
    outside plugin can replace a built-in example. A plugin whose hook raises or
    returns something else is recorded in ``PluginRegistry.broken`` (``cancelkit
    example`` prints why) and the other plugins' examples still work.
    """


@hookspec
def cancelkit_register_commands(cli: click.Group) -> None:
    """Add commands to the ``cancelkit`` command line (as datasette's ``register_commands``).

    Called once per process, the first time the command line meets a command name
    that is not built in (``cancelkit salesforce ...``), so the built-in commands and
    ``cancelkit --help`` never load the plugins. Add a click command or group with
    ``cli.add_command(...)``; keep registration cheap and import what the command
    needs inside its body. A plugin cannot replace a built-in command, and one that
    raises is reported on stderr while the others still register. Return values are
    ignored.

    :param cli: the ``cancelkit`` click group.
    """


@hookspec
def cancelkit_prepare_request(
    request: CancelRequest, adapter: PlatformAdapter
) -> CancelRequest | None:
    """Validate or enrich a canonical request before it is translated.

    Called for every ``translate`` and ``send``, after the canonical schema and the
    platform's own checks passed. Raise
    :class:`~cancelkit.errors.InvalidRequestError` to refuse the request (nothing
    is sent). Return a replacement request to enrich it, or ``None`` to leave it.
    A replacement passes the same checks as the original. All implementations are
    called; when several return a replacement, the one called first wins (use
    ``tryfirst`` to be that one).

    :param request: the canonical request, already checked.
    :param adapter: the platform adapter the request is for (``adapter.name`` is
        the platform's name).
    """


@hookspec(firstresult=True)
def cancelkit_translate(
    request: CancelRequest, adapter: PlatformAdapter, settings: Settings
) -> HttpCall | None:
    """Turn the canonical request into the platform's exact HTTP call.

    Called by ``translate``, ``send`` and ``send --dry-run``. First result wins.
    The built-in implementation (``trylast``) asks ``adapter.translate(request,
    settings)``; a plugin may take over a platform's translation with ``tryfirst``.
    The returned call must hold no secrets: auth headers carry ``***``
    placeholders that are filled at send time.

    :param request: the prepared canonical request.
    :param adapter: the platform adapter.
    :param settings: the platform's resolved settings (secrets included; never
        put one in the call).
    """


@hookspec
def cancelkit_before_send(call: HttpCall, adapter: PlatformAdapter) -> Mapping[str, str] | None:
    """Observe a call just before it is sent; optionally add headers.

    Called by ``send`` and ``status`` once per HTTP attempt. Return a mapping of
    extra headers to inject (for tracing, say) or ``None``. All implementations are
    called; a raising observer aborts the send before anything leaves the machine.

    :param call: the call as translated (secrets masked).
    :param adapter: the platform adapter.
    """


@hookspec(firstresult=True)
def cancelkit_normalise(
    request: CancelRequest, response: HttpResponse, adapter: PlatformAdapter
) -> CancelResult | None:
    """Turn the platform's answer to a cancel call into the canonical result.

    Called by ``send`` only for answers core could not classify itself: a readable
    success body or the platform's own error body. Core has already dealt with
    401/403 (an authentication error), 429 and 503 with ``Retry-After`` (retried,
    then rate limited), redirects, 5xx and unreadable bodies (unknown), and an
    answer the adapter marks ``is_throttled`` (retried like a 429). For a
    cancellation of several calls (``PlatformAdapter.next_call``) it is called once,
    with the answer that ended the sequence: the last call's, or an earlier one that
    was not 2xx or that ``next_call`` did not follow.
    First result wins; the built-in implementation (``trylast``) asks
    ``adapter.normalise``. Never raise for a business refusal: return an outcome
    of ``rejected``. If an implementation raises anyway, the call was already
    sent, so the result is ``unknown`` (never resent), not an error - except
    :class:`~cancelkit.errors.ConfigurationError`, which reaches the caller (exit
    4): raise it only when the answer proves that nothing was applied and that the
    configuration must change (Salesforce: no active flow by the configured name).

    :param request: the canonical request that was sent.
    :param response: the platform's answer.
    :param adapter: the platform adapter.
    """


@hookspec(firstresult=True)
def cancelkit_normalise_status(
    tracking_id: str, response: HttpResponse, adapter: PlatformAdapter
) -> CancelResult | None:
    """Turn the platform's answer to a status call into the canonical result.

    Called by ``status`` (and each poll of ``send --wait``), for answers core
    could not classify itself (as for :func:`cancelkit_normalise`).
    First result wins; the built-in implementation (``trylast``) asks
    ``adapter.normalise_status``.

    :param tracking_id: the id the asynchronous cancel was accepted under.
    :param response: the platform's answer to the status call.
    :param adapter: the platform adapter.
    """


@hookspec
def cancelkit_after_result(result: CancelResult, call: HttpCall, adapter: PlatformAdapter) -> None:
    """Observe every canonical result (audit logs, metrics).

    Called after ``send`` or ``status`` produced a result, including ``unknown``
    and ``rejected`` ones. Return values are ignored.

    :param result: the canonical result, secrets scrubbed.
    :param call: the call as translated (secrets masked).
    :param adapter: the platform adapter.
    """


# -- the typed hook relay ----------------------------------------------------------
# What ``PluginRegistry.hook`` is, for type checkers: each hook called with keyword
# arguments; a first-result hook gives one value, the others a list of all results.
class _PlatformsCaller(Protocol):
    def __call__(self) -> list[Sequence[PlatformAdapter]]: ...


class _EmulatorsCaller(Protocol):
    def __call__(self) -> list[Sequence[Emulator]]: ...


class _ScenariosCaller(Protocol):
    def __call__(self) -> list[Sequence[Scenario]]: ...


class _ExamplesCaller(Protocol):
    def __call__(self) -> list[Mapping[str, Mapping[str, Any]]]: ...


class _RegisterCommandsCaller(Protocol):
    def __call__(self, *, cli: click.Group) -> list[None]: ...


class _PrepareCaller(Protocol):
    def __call__(
        self, *, request: CancelRequest, adapter: PlatformAdapter
    ) -> list[CancelRequest | None]: ...


class _TranslateCaller(Protocol):
    def __call__(
        self, *, request: CancelRequest, adapter: PlatformAdapter, settings: Settings
    ) -> HttpCall | None: ...


class _BeforeSendCaller(Protocol):
    def __call__(
        self, *, call: HttpCall, adapter: PlatformAdapter
    ) -> list[Mapping[str, str] | None]: ...


class _NormaliseCaller(Protocol):
    def __call__(
        self, *, request: CancelRequest, response: HttpResponse, adapter: PlatformAdapter
    ) -> CancelResult | None: ...


class _NormaliseStatusCaller(Protocol):
    def __call__(
        self, *, tracking_id: str, response: HttpResponse, adapter: PlatformAdapter
    ) -> CancelResult | None: ...


class _AfterResultCaller(Protocol):
    def __call__(
        self, *, result: CancelResult, call: HttpCall, adapter: PlatformAdapter
    ) -> list[None]: ...

    # pluggy's HookCaller: the client skips work for a hook nobody implements.
    def get_hookimpls(self) -> list[Any]: ...


class HookRelay(Protocol):
    """The typed view of pluggy's hook relay: one attribute per hook above."""

    cancelkit_platforms: _PlatformsCaller
    cancelkit_sandbox_emulators: _EmulatorsCaller
    cancelkit_cassette_scenarios: _ScenariosCaller
    cancelkit_examples: _ExamplesCaller
    cancelkit_register_commands: _RegisterCommandsCaller
    cancelkit_prepare_request: _PrepareCaller
    cancelkit_translate: _TranslateCaller
    cancelkit_before_send: _BeforeSendCaller
    cancelkit_normalise: _NormaliseCaller
    cancelkit_normalise_status: _NormaliseStatusCaller
    cancelkit_after_result: _AfterResultCaller
