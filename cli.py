"""The ``cancelkit`` command (contract: README "Command line").

Exit codes: 0 cancelled/accepted/ok, 1 rejected or partial, 2 bad input or
usage, 3 unknown outcome or transport failure, 4 configuration or authentication,
5 still pending: accepted, but not final when ``--wait-timeout`` expired,
70 internal error (a bug; EX_SOFTWARE in sysexits.h), 130 interrupted (Ctrl-C),
141 stdout closed by its reader (`| head`).
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from .core.sandbox.faultkinds import FAULT_KINDS
from .errors import CancelkitError, FieldError, InvalidRequestError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from .core.client import Client
    from .core.model import CancelResult, ResultError
    from .core.registry import PluginRegistry
    from .core.sandbox.server import Sandbox
    from .core.waiting import WaitProgress

# Heavy modules (requests, marshmallow, plugins) are imported inside the commands
# that need them, so `cancelkit --help` starts fast.

EXIT_BY_OUTCOME = {"cancelled": 0, "accepted": 0, "rejected": 1, "partial": 1, "unknown": 3}
#: ``send --wait`` gave up at ``--wait-timeout`` while the cancel was still pending: not
#: 0, which would tell a script it is done, nor 3, which means "may not have been
#: applied, check before resending"; this one is known to be accepted, and unfinished.
EXIT_PENDING = 5
#: A bug in cancelkit or a plugin. sysexits' EX_SOFTWARE: distinct from 3 (unknown
#: outcome), so a script never reads a crash as something the platform said.
EXIT_INTERNAL = 70
#: Ctrl-C: 128 + SIGINT, what shells, make and CI runners read as "interrupted".
EXIT_INTERRUPTED = 130
#: stdout was closed by its reader (`| head`): 128 + SIGPIPE, as a shell reports it.
EXIT_BROKEN_PIPE = 141

F = TypeVar("F", bound=Callable[..., Any])


def _reports_errors(command: F) -> F:
    """Turn errors into a message on stderr and the documented exit code.

    Under the command's ``--json``, the message is one JSON error object instead
    (:func:`_fail`), so a script reads errors the way it reads results.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return command(*args, **kwargs)
        except CancelkitError as error:
            errors = error.errors if isinstance(error, InvalidRequestError) else []
            _fail(
                type(error).__name__,
                error.exit_code,
                str(error),
                as_json,
                errors=errors,
                text=[f"error: {line}" for line in _error_lines(error)],
            )
        except KeyboardInterrupt:
            _fail("Interrupted", EXIT_INTERRUPTED, "interrupted (Ctrl-C)", as_json)
        except BrokenPipeError:
            # The reader went away (`| head -n 1`): not a bug. What is still buffered
            # goes nowhere, and the exit is the shell's for a closed pipe (128 + SIGPIPE).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as error:
            if os.environ.get("CANCELKIT_DEBUG"):
                raise
            _internal_error(error, as_json)

    return cast(F, wrapper)


def _error_lines(error: CancelkitError) -> list[str]:
    if isinstance(error, InvalidRequestError):
        return [str(e) for e in error.errors]
    return [str(error)]


def _fail(
    kind: str,
    exit_code: int,
    message: str,
    as_json: bool,
    *,
    errors: list[FieldError] | tuple[FieldError, ...] = (),
    text: list[str] | None = None,
    **extra: Any,
) -> NoReturn:
    """Report a failure on stderr and exit with ``exit_code``.

    As text: the ``text`` lines (default ``message``). Under ``--json``: one line,
    ``{"error": {"kind", "exit_code", "message", "errors": [{"field", "message"}],
    ...extra}}``; ``kind`` is the exception's class name (``InvalidRequestError``,
    ``ConfigurationError``...), or ``Interrupted``, ``WaitTimeout``, ``InternalError``.
    """
    if as_json:
        from .core import jsonutil

        body = {
            "kind": kind,
            "exit_code": exit_code,
            "message": message,
            "errors": [{"field": e.path, "message": e.message} for e in errors],
            **extra,
        }
        click.echo(jsonutil.dumps({"error": body}), err=True)
    else:
        for line in text if text is not None else [message]:
            click.echo(line, err=True)
    sys.exit(exit_code)


def _internal_error(error: Exception, as_json: bool) -> NoReturn:
    """A bug: say so, where it was raised, how to see the traceback and where to report."""
    where = _raised_in(error)
    report = (
        "this is a bug in cancelkit or a plugin, not a problem with your input: run the "
        "command again with CANCELKIT_DEBUG=1 to see the traceback, and report it with "
        f"the command you ran to {_report_to(where)}"
    )
    lines = [f"internal error: {type(error).__name__}: {error} (raised in {where})", report]
    info = click.get_current_context(silent=True)
    if info is not None and info.info_name == "send":  # never lose a cancel: say what to do
        lines.append(
            "note: if the cancellation had already gone out, it was NOT resent; check its "
            "outcome (cancelkit status, or on the platform) before sending it again"
        )
    _fail(
        "InternalError",
        EXIT_INTERNAL,
        f"{type(error).__name__}: {error}",
        as_json,
        text=lines,
        exception=type(error).__name__,
        module=where,
        report=" ".join(lines[1:]),
    )


def _finite(param: click.Parameter, value: float) -> float:
    """Refuse nan (FloatRange lets it through: every comparison with nan is false)."""
    if value != value:
        raise click.BadParameter("must be a number of seconds, not nan", param=param)
    return value


def _raised_in(error: BaseException) -> str:
    """The module to blame for ``error``: the innermost frame of cancelkit or a plugin.

    The very innermost frame is usually the standard library's, which is not where
    the bug is; a frame of a module outside the standard library and site-packages'
    dependencies (a plugin) or of cancelkit itself is.
    """
    innermost, ours = "?", None
    trace = error.__traceback__
    while trace is not None:
        module = str(trace.tb_frame.f_globals.get("__name__", "?"))
        innermost = module
        if module.partition(".")[0] not in _NOT_TO_BLAME:
            ours = module
        trace = trace.tb_next
    return ours or innermost


#: Modules whose frames are never the one to report: the interpreter's and the
#: libraries cancelkit calls into.
_NOT_TO_BLAME = frozenset(
    {*sys.stdlib_module_names, "click", "requests", "urllib3", "pluggy", "marshmallow",
     "simplejson", "jsonschema", "filelock", "__main__", "?"}
)  # fmt: skip


def _report_to(module: str) -> str:
    """Who to report a bug raised in ``module`` to (the package's issue tracker if known)."""
    if module.split(".")[0] != "cancelkit":
        return f"the authors of the package that provides {module}"
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("cancelkit").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = str(entry).partition(",")
        if label.strip().lower() in ("issues", "bug tracker", "bugs", "tracker"):
            return url.strip()
    return "the cancelkit maintainers"


class _State:
    def __init__(self, config_path: Path | None, profile: str | None):
        self.config_path = config_path
        self.profile = profile
        self._registry: PluginRegistry | None = None

    @property
    def registry(self) -> PluginRegistry:
        from .core.registry import PluginRegistry

        if self._registry is None:
            self._registry = PluginRegistry()
        return self._registry

    def client(
        self,
        config: dict[str, dict[str, str]] | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> Client:
        from .core.client import Client

        return Client(
            registry=self.registry,
            config=config,
            config_path=self.config_path,
            profile=self.profile,
            sleep=sleep or _sleep_now,
            clock=_clock_now,
        )


pass_state = click.make_pass_decorator(_State)


def _complete_platforms(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Installed platform names for shell completion, each with its title.

    Runs only when the shell asks (``_CANCELKIT_COMPLETE``), so the plugins load
    then and never for ``cancelkit --help``. Completion must not break the shell:
    a failure completes nothing.
    """
    from click.shell_completion import CompletionItem

    from .core.registry import PluginRegistry

    try:
        adapters = PluginRegistry().platforms()
    except Exception:
        return []
    return [
        CompletionItem(name, help=adapter.title)
        for name, adapter in sorted(adapters.items())
        if name.startswith(incomplete)
    ]


platform_option = click.option(
    "-p",
    "--platform",
    required=True,
    metavar="NAME",
    help="Platform plugin, e.g. mirakl.",
    shell_complete=_complete_platforms,
)
request_argument = click.argument("request_file", metavar="FILE|-", type=click.File("rb"))


def _terminal_width() -> int:
    """Help's width as click computes it, from ``os`` alone.

    click imports shutil (which loads bz2, lzma and zlib) only to call
    ``get_terminal_size``; this is the same answer: ``$COLUMNS``, else the
    terminal's, else 80, capped at 80 and kept above 50.
    """
    try:
        columns = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size(1).columns
    except (ValueError, OSError):
        columns = 80
    return max(min(columns or 80, 80) - 2, 50)


#: Built-in commands kept in modules of their own, imported only when run:
#: name -> (module, attribute, the short help ``cancelkit --help`` lists without
#: importing the module).
_LAZY: dict[str, tuple[str, str, str]] = {
    "ledger": (
        "cancelkit.commands.ledger",
        "ledger",
        "Audit the ledger: list, show and resolve sends.",
    ),
    "bulk": (
        "cancelkit.commands.bulk",
        "bulk",
        "Send many cancellations from a JSONL or CSV file; rerun to resume.",
    ),
    "cassettes": (
        "cancelkit.commands.cassettes",
        "cassettes",
        "Record cassettes from the sandbox, or check that recording reproduces them.",
    ),
    "plugin": (
        "cancelkit.commands.plugin",
        "plugin",
        "Start a platform plugin of your own, as an installable package.",
    ),
    "worker": (
        "cancelkit.commands.worker",
        "worker",
        "Run a Celery worker that sends queued cancellations (cluster mode).",
    ),
}


class _Group(click.Group):
    """The ``cancelkit`` group. Commands that plugins add load on first need.

    A command name that is not built in asks every plugin's
    ``cancelkit_register_commands`` once (loading the plugins), so built-in commands
    and ``--help`` stay as cheap as before. The built-in commands of :data:`_LAZY`
    are imported when first run; ``--help`` lists them from that table.
    """

    _plugin_commands_loaded = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_LAZY})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the lazy commands' short help taken from :data:`_LAZY`."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in _LAZY and name not in self.commands:  # a stand-in, not imported
                command: click.Command | None = click.Command(name, help=_LAZY[name][2])
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:  # fmt: skip
        extra.setdefault("terminal_width", _terminal_width())
        return super().make_context(info_name, args, parent, **extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else one a plugin registers."""
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _LAZY:
            import importlib

            module, attribute, _ = _LAZY[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        if command is None and not self._plugin_commands_loaded:
            self._plugin_commands_loaded = True
            from .core.registry import PluginRegistry

            register_plugin_commands(PluginRegistry(), self)
            command = super().get_command(ctx, cmd_name)
        return command


def register_plugin_commands(registry: PluginRegistry, group: click.Group) -> None:
    """Let each plugin add commands to ``group``; none may replace a built-in one.

    Each plugin's hook is called on its own (through pluggy, so tracing applies): one
    that raises is reported on stderr and the others still register.
    """
    builtin = dict(group.commands)
    implementations = registry.pm.hook.cancelkit_register_commands.get_hookimpls()
    for impl in implementations:
        others = [i.plugin for i in implementations if i.plugin is not impl.plugin]
        caller = registry.pm.subset_hook_caller(
            "cancelkit_register_commands", remove_plugins=others
        )
        try:
            caller(cli=group)
        except Exception as error:
            click.echo(
                f"warning: plugin {impl.plugin_name} could not add its commands: "
                f"{type(error).__name__}: {error}",
                err=True,
            )
        for name, command in builtin.items():
            if group.commands.get(name) is not command:
                click.echo(
                    f"warning: plugin {impl.plugin_name} may not replace the command {name}",
                    err=True,
                )
                group.commands[name] = command
        for name in _LAZY if isinstance(group, _Group) else ():
            if name in group.commands and name not in builtin:  # a built-in not loaded yet
                click.echo(
                    f"warning: plugin {impl.plugin_name} may not replace the command {name}",
                    err=True,
                )
                del group.commands[name]


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Plugins add commands of their own, e.g. cancelkit salesforce --help.",
)
@click.option(
    "--config",
    "config_path",
    # Not checked by click: a missing file, like a missing $CANCELKIT_CONFIG, is a
    # configuration error (exit 4) reported when settings are read.
    type=click.Path(path_type=Path),
    help="TOML config file (default $CANCELKIT_CONFIG or ~/.config/cancelkit/config.toml).",
)
@click.option(
    "--profile", help="Profile in the config file (default $CANCELKIT_PROFILE or default)."
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show the HTTP exchange on stderr, secrets masked: -v request and status lines "
    "with headers, -vv the bodies too.",
)
@click.version_option(package_name="cancelkit")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, profile: str | None, verbose: int) -> None:
    """Translate and send order-line cancellations to commerce platforms.

    \b
    Try it with no account, on the local sandbox:
      cancelkit example mirakl | cancelkit send --sandbox -p mirakl - --wait

    \b
    Shell completion (bash; zsh_source and fish_source likewise):
      eval "$(_CANCELKIT_COMPLETE=bash_source cancelkit)"
    """
    ctx.obj = _State(config_path, profile)
    if verbose:
        from .core.logs import show_on_stderr

        # Undone when the command ends, so a test runner's next command starts silent.
        ctx.call_on_close(show_on_stderr(verbose, lambda text: click.echo(text, err=True)))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
@_reports_errors
def platforms(state: _State, as_json: bool) -> None:
    """List platforms, their capabilities and packages, and plugins that failed to load.

    Each platform shows the plugin that provides it and that plugin's distribution
    and version (cancelkit for the built-ins, else the package that registered its
    cancelkit.plugins entry point); plugins that provide no platform follow.

    \b
    Example:
      cancelkit platforms --json
    """
    from .core import jsonutil  # simplejson loads only when JSON is read or written

    registry = state.registry
    adapters = registry.platforms()
    broken = [{"name": b.name, "source": b.source, "error": b.error} for b in registry.broken]
    # Like `datasette plugins`: the installed package (and version) each plugin came from.
    plugins = {p.name: registry.distribution(p.name) for p in registry.loaded}

    def origin(plugin: str | None) -> dict[str, str | None]:
        found = plugins.get(plugin or "")
        if found is None:  # registered in-process, not installed
            return {"distribution": None, "version": None}
        return {"distribution": found.name, "version": found.version}

    def package(plugin: str | None) -> str:
        found = origin(plugin)
        return " ".join(filter(None, (found["distribution"], found["version"]))) or "-"

    if as_json:
        click.echo(
            jsonutil.dumps(
                {
                    "platforms": [
                        {
                            "name": a.name,
                            "title": a.title,
                            "plugin": registry.providers.get(a.name),
                            **origin(registry.providers.get(a.name)),
                            "capabilities": a.capabilities.to_dict(),
                        }
                        for a in adapters.values()
                    ],
                    "plugins": [
                        {
                            "name": p.name,
                            "source": p.source,
                            **origin(p.name),
                            "platforms": [n for n, q in registry.providers.items() if q == p.name],
                        }
                        for p in registry.loaded
                    ],
                    "broken": broken,
                },
                indent=2,
            )
        )
        return
    rows = [("PLATFORM", "PLUGIN", "DISTRIBUTION", "MODE", "QUANTITY", "RESEND", "TITLE")]
    for adapter in adapters.values():
        caps = adapter.capabilities
        quantity = "fractional" if caps.fractional_quantity else "whole"
        rows.append(
            (
                adapter.name,
                registry.providers.get(adapter.name, "?"),
                package(registry.providers.get(adapter.name)),
                caps.mode,
                quantity,
                "safe" if caps.resend_safe else "never",
                adapter.title,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo(
            "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        )
    for plugin in registry.loaded:
        if plugin.name not in registry.providers.values():  # hooks only, no platform
            click.echo(f"PLUGIN {plugin.name} ({package(plugin.name)}): provides no platform")
    for item in broken:
        click.echo(f"BROKEN {item['name']} ({item['source']}): {item['error']}")


@main.command()
@click.option(
    "-p",
    "--platform",
    metavar="NAME",
    help="Also check this platform's needs.",
    shell_complete=_complete_platforms,
)
@request_argument
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"valid", "platform", "errors"} as JSON.'
)
@pass_state
@_reports_errors
def validate(state: _State, platform: str | None, request_file: Any, as_json: bool) -> None:
    """Check a canonical request (FILE, or - for stdin); sends nothing.

    Reports every problem at once: the schema's, then the platform's (-p) for
    whatever the schema leaves checkable. Exit 2 when there is any.

    \b
    Example:
      cancelkit example mirakl | cancelkit validate -p mirakl -
    """
    from .core.problems import request_problems

    check = None
    if platform:
        state.registry.platform(platform)  # an unknown platform is a usage error, not a problem
        client = state.client()

        def check(request: Any) -> object:
            return client.prepare(request, platform)

    try:
        problems = request_problems(_read_json(request_file), check)
    except InvalidRequestError as error:  # not JSON at all: nothing more to check
        problems = error.errors
    target = f" for {platform}" if platform else ""
    if as_json:
        from .core import jsonutil

        report = {
            "valid": not problems,
            "platform": platform,
            "errors": [{"field": p.path, "message": p.message} for p in problems],
        }
        click.echo(jsonutil.dumps(report, indent=2))
        sys.exit(InvalidRequestError.exit_code if problems else 0)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        lines = [f"error: {p}" for p in problems] + [f"invalid{target}: {count}; nothing was sent"]
        _fail("InvalidRequestError", InvalidRequestError.exit_code, "", False, text=lines)
    click.echo(f"ok: valid{target}")


@main.command()
@platform_option
@request_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "curl", "http"]),
    default="json",
    show_default=True,
    help="How to show the call.",
)
@pass_state
@_reports_errors
def translate(state: _State, platform: str, request_file: Any, fmt: str) -> None:
    """Show the exact HTTP call for a request; needs no credentials, sends nothing.

    Secrets always print as ***.

    \b
    Example:
      cancelkit example mirakl | cancelkit translate -p mirakl - --format curl
    """
    from .core.http import render

    call = state.client().translate(_read_json(request_file), platform)
    click.echo(render(call, fmt))
    adapter = state.registry.platforms().get(platform)
    steps = adapter.capabilities.calls if adapter is not None else ()
    if len(steps) > 1:  # the later calls carry ids from answers: they cannot be shown yet
        click.echo(
            f"note: {platform} cancels in {len(steps)} calls ({', '.join(steps)}); this is "
            f"the first, the others are built from the answers before them",
            err=True,
        )


@main.command()
@platform_option
@request_argument
@click.option("--sandbox", is_flag=True, help="Send to the built-in emulator (no account).")
@click.option(
    "--sandbox-fault",
    "faults",
    multiple=True,
    type=click.Choice(FAULT_KINDS),
    help="With --sandbox: inject this fault into the next call (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Validate and show the call; send nothing.")
@click.option(
    "--resend",
    is_flag=True,
    help="Send even though the ledger holds this request (only after checking on the "
    "platform that the earlier send was not applied).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Print the accepted result, then poll its status until final (progress on stderr).",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0, max=7 * 24 * 3600),
    callback=lambda ctx, param, value: _finite(param, value),
    default=600.0,
    show_default=True,
    help="Seconds; still pending then: exit 5.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the canonical result as JSON (with --wait: JSON Lines, accepted first).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr while waiting.")
@pass_state
@_reports_errors
def send(
    state: _State,
    platform: str,
    request_file: Any,
    sandbox: bool,
    faults: tuple[str, ...],
    dry_run: bool,
    resend: bool,
    wait: bool,
    wait_timeout: float,
    as_json: bool,
    quiet: bool,
) -> None:
    """Send a cancellation and print the canonical result.

    Never resent when the outcome is unknown (exit 3): the message says how to
    find out what happened. With --wait, the accepted result (and its tracking
    id) is printed before waiting; Ctrl-C then stops waiting only (exit 130) and
    says how to follow up.

    \b
    Example:
      cancelkit example mirakl | cancelkit send --sandbox -p mirakl - --wait
    """
    data = _read_json(request_file)
    if faults and not sandbox:
        raise InvalidRequestError(FieldError("--sandbox-fault", "needs --sandbox"))
    report = _WaitReport(quiet=quiet, live=_stderr_is_terminal())
    with _maybe_sandbox(state, sandbox) as config:
        client = state.client(config, sleep=report.sleep)
        if dry_run:
            from .core.http import render

            click.echo(render(client.translate(data, platform), "json"))
            return
        for kind in faults:
            assert _active_sandbox is not None
            _inject(_active_sandbox, client, kind, platform)
        try:
            result = client.send(data, platform, resend=resend)
        except KeyboardInterrupt:
            _fail(
                "Interrupted",
                EXIT_INTERRUPTED,
                f"interrupted while sending to {platform}: the cancellation may or may not "
                f"have reached it, and it was NOT resent; check the order on {platform} "
                "before sending it again",
                as_json,
            )
        if wait and result.outcome == "accepted" and result.tracking_id:
            follow_up = _status_command(state, platform, result.tracking_id, sandbox)
            result = _wait(client, result, wait_timeout, report, as_json, follow_up)
        if sandbox and result.outcome in ("rejected", "partial"):
            click.echo(_sandbox_reset_hint(), err=True)
        if result.outcome == "unknown" and (result.details.get("ledger") or {}).get("held"):
            from .commands.ledger import held_unknown_hint  # how to settle it

            hint = held_unknown_hint(state, result, sandbox)
            if hint:
                click.echo(hint, err=True)
        _finish(result, as_json, one_line=wait)


@main.command()
@platform_option
@click.argument("tracking_id")
@click.option("--sandbox", is_flag=True, help="Ask the built-in emulator.")
@click.option("--json", "as_json", is_flag=True, help="Print the canonical result as JSON.")
@pass_state
@_reports_errors
def status(state: _State, platform: str, tracking_id: str, sandbox: bool, as_json: bool) -> None:
    """Show the outcome of an asynchronous cancellation.

    \b
    Example:
      cancelkit status --sandbox -p mirakl 1ba5fc4b-c4fd-4251-880b-3052e301bbd4
    """
    with _maybe_sandbox(state, sandbox) as config:
        _finish(state.client(config).status(platform, tracking_id), as_json)


@main.command("example")
@click.argument("platform", required=False, shell_complete=_complete_platforms)
@pass_state
@_reports_errors
def example_command(state: _State, platform: str | None) -> None:
    """Print an example canonical request for PLATFORM (without one: list them).

    Each example cancels lines of the sandbox's seeded demo orders; pipe it into
    any command that reads a request (its FILE argument is then -).

    \b
    Example:
      cancelkit example mirakl | cancelkit send --sandbox -p mirakl -
      cancelkit example carriyo > request.json
    """
    from .core import jsonutil  # simplejson loads only when JSON is read or written

    registry = state.registry
    installed = registry.platforms()
    known_broken = len(registry.broken)
    examples = {name: request for name, request in registry.examples().items() if name in installed}
    for broken in registry.broken[known_broken:]:  # plugins whose examples failed
        click.echo(f"warning: plugin {broken.name} gives no examples: {broken.error}", err=True)
    if platform is None:
        for name in sorted(examples):
            click.echo(name)
        return
    registry.platform(platform)  # an unknown platform: exit 2, listing the known ones
    if platform not in examples:
        having = ", ".join(sorted(examples)) or "none"
        raise InvalidRequestError(
            FieldError("platform", f"{platform} ships no example request; examples: {having}")
        )
    click.echo(jsonutil.dumps(examples[platform], indent=2))


@main.command("sandbox")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address (only).",
)
@click.option(
    "--port",
    default=8470,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port (printed).",
)
@click.option(
    "--reset",
    is_flag=True,
    help="Restore the seeded demo orders in the state file, then exit (serves nothing).",
)
@pass_state
@_reports_errors
def sandbox_command(state: _State, host: str, port: int, reset: bool) -> None:
    """Serve the local emulator of every platform until interrupted.

    State is kept in $CANCELKIT_SANDBOX_STATE (default
    ~/.cache/cancelkit/sandbox-state.json), shared with send/status --sandbox.
    On start it prints the port it bound and the `export CANCELKIT_...` lines that
    point cancelkit in another shell at it (URLs, the sandbox's own demo
    credentials, poll intervals). --reset restores the seeded demo orders and
    exits; a running sandbox sees them at its next request.

    \b
    Control endpoints (JSON in and out):
      POST /_sandbox/reset   seeded orders back, faults cleared, clock reset
      POST /_sandbox/faults  {"kind": "429", "platform": "mirakl",
                              "count": 1, "retry_after": 1}: the next
                              matching calls fail that way
      POST /_sandbox/clock   {"advance": 60}: move the sandbox clock on,
                              so pending actions finish sooner
      GET  /_sandbox         every platform's settings, the fault kinds

    \b
    Example:
      cancelkit sandbox --port 8470
      cancelkit sandbox --reset
      curl -X POST localhost:8470/_sandbox/clock -d '{"advance": 60}'
    """
    import ipaddress

    from .core.sandbox.server import Sandbox
    from .core.sandbox.state import StateFile

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:  # its demo credentials and control endpoints stay on this machine
        raise InvalidRequestError(FieldError("--host", f"{host!r} is not a loopback address"))
    path = sandbox_state_path()
    if reset:  # never loads the file: the way out of a corrupt state file
        from .core.ledger.location import sandbox_ledger_path
        from .core.sandbox.server import clear_ledger_file

        StateFile(path).remove()
        clear_ledger_file(sandbox_ledger_path(path))  # its sends were to those orders
        click.echo(f"sandbox state reset to the seeded demo orders ({path})")
        return
    box = Sandbox(
        state.registry.emulators(),
        host=host,
        port=port,
        state_path=path,
        log=lambda line: click.echo(line),
    )
    bound = False

    def announce() -> None:
        nonlocal bound
        bound = True
        _announce_sandbox(box, state.registry, path)

    # SIGTERM stops it like Ctrl-C does, so the state is saved either way.
    import signal  # only the serving sandbox handles signals (saves --help ~1 ms)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        box.serve_forever(ready=announce)
    except KeyboardInterrupt:
        click.echo("stopped")
    except OSError as error:
        if bound:
            raise
        raise InvalidRequestError(
            FieldError("--port", f"cannot serve on {host}:{port}: {error.strerror or error}")
        ) from None


def _announce_sandbox(box: Sandbox, registry: PluginRegistry, path: Path) -> None:
    """What a person needs once the sandbox listens: where, and how to point clients at it."""
    from .core.sandbox.environment import client_environment, export_lines

    click.echo(f"cancelkit sandbox on {box.url} (state: {path}); Ctrl-C stops it")
    for platform in box.emulators:
        click.echo(f"  {platform}: {box.base_url(platform)}/")
    click.echo(
        "# To point cancelkit at it from another shell, paste these lines (the\n"
        "# credentials are the sandbox's own demo values, not real ones):"
    )
    for line in export_lines(client_environment(box, registry.platforms())):
        click.echo(line)
    click.echo(
        "# then: cancelkit example mirakl | cancelkit send -p mirakl - --wait\n"
        f"# control: POST {box.url}/_sandbox/reset | /_sandbox/faults | /_sandbox/clock"
        " (cancelkit sandbox --help)"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# -- helpers ------------------------------------------------------------------
_active_sandbox: Sandbox | None = None

# The commands' sleep and clock, looked up at each call: tests replace them
# (monkeypatch cancelkit.cli._sleep / _clock) so that waits take no real time.
_sleep: Callable[[float], None] = time.sleep
_clock: Callable[[], float] = time.monotonic


def _sleep_now(seconds: float) -> None:
    _sleep(seconds)


def _clock_now() -> float:
    return _clock()


def _stderr_is_terminal() -> bool:
    """True when stderr is a terminal that can redraw a line (not a file, pipe or dumb TERM)."""
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _status_command(state: _State, platform: str, tracking_id: str, sandbox: bool) -> str:
    """The exact ``cancelkit status`` command that follows up this cancel, shell-quoted."""
    import shlex

    words = ["cancelkit"]
    if state.config_path is not None:
        words += ["--config", str(state.config_path)]
    if state.profile:
        words += ["--profile", state.profile]
    words += ["status", "-p", platform, *(["--sandbox"] if sandbox else []), tracking_id]
    return shlex.join(words)


def _wait(
    client: Client,
    accepted: CancelResult,
    timeout: float,
    report: _WaitReport,
    as_json: bool,
    follow_up: str,
) -> CancelResult:
    """``send --wait``: show the accepted result, wait, and return the final one.

    The accepted result (with its tracking id) is out before the first pause, so
    neither Ctrl-C nor a timeout can lose it; both end the command here, saying
    that the cancel was sent and how to follow it up.
    """
    _show(accepted, as_json, one_line=True)
    sent = (
        f"the cancellation WAS sent and {accepted.platform} accepted it "
        f"(tracking id {accepted.tracking_id})"
    )
    extra: dict[str, Any] = {"tracking_id": accepted.tracking_id, "follow_up": follow_up}
    try:
        final = client.wait(accepted, timeout=timeout, on_progress=report)
    except KeyboardInterrupt:
        report.close()
        message = f"interrupted: stopped waiting, but {sent}; it may still complete"
        lines = [message, f"follow up with: {follow_up}"]
        _fail("Interrupted", EXIT_INTERRUPTED, message, as_json, text=lines, **extra)
    report.close()
    if final.outcome != "accepted":
        return final
    if as_json and final != accepted:  # the last line is always the latest state
        _show(final, as_json, one_line=True)
    polls = report.last.polls if report.last is not None else 0
    waited = report.last.elapsed if report.last is not None else 0.0
    message = (
        f"gave up waiting after {_duration(waited)} and {polls} poll{'' if polls == 1 else 's'} "
        f"(--wait-timeout {_duration(timeout)}): {sent}, but it is still pending"
    )
    lines = [message, f"follow up with: {follow_up}"]
    _fail("WaitTimeout", EXIT_PENDING, message, as_json, text=lines, **extra)


class _WaitReport:
    """Shows a wait's progress on stderr: the observer ``Client.wait`` calls.

    On a terminal, one line redrawn in place, its countdown refreshed every second
    (the client sleeps through :meth:`sleep`); elsewhere (a file, a pipe, CI), one
    line per poll. Nothing with ``--quiet``. The library itself never prints.
    """

    def __init__(self, *, quiet: bool, live: bool):
        self.quiet = quiet
        self.live = live and not quiet
        #: The last step the wait told (None before the first).
        self.last: WaitProgress | None = None
        self._told_at = 0.0  # our clock when `last` arrived
        self._pause_ends: float | None = None
        self._drawn = False

    def __call__(self, progress: WaitProgress) -> None:
        """Take one step of the wait (the ``on_progress`` observer)."""
        self.last, self._told_at = progress, _clock()
        pausing = progress.step in ("sleeping", "held_back")
        self._pause_ends = self._told_at + progress.seconds if pausing else None
        if self.quiet or progress.step in ("gave_up", "polled"):
            return  # a pause follows a poll at once; giving up is the caller's to say
        if self.live:
            self._draw()
        elif pausing:  # one line per poll: each pause follows a poll (or the send)
            click.echo(_progress_line(progress, progress.seconds, progress.elapsed), err=True)

    def sleep(self, seconds: float) -> None:
        """The client's sleep; on a terminal, in steps of a second that redraw the line."""
        if not self.live or self._pause_ends is None:
            _sleep(seconds)
            return
        end = _clock() + seconds
        while (left := end - _clock()) > 0:
            _sleep(min(left, 1.0))
            self._draw()

    def close(self) -> None:
        """Replace the live line by a summary, so what follows starts on its own line."""
        if self._drawn and self.last is not None:
            polls = self.last.polls
            waited = self.last.elapsed + _clock() - self._told_at
            summary = f"waited {_duration(waited)} ({polls} poll{'' if polls == 1 else 's'})"
            click.echo(f"\r\x1b[K{summary}", err=True)
        self._drawn = False

    def _draw(self) -> None:
        if self.last is None:
            return
        now = _clock()
        left = max((self._pause_ends or now) - now, 0.0)
        elapsed = self.last.elapsed + now - self._told_at
        line = _progress_line(self.last, left, elapsed, compact=True)
        width = _stderr_columns() - 1  # a wrapped line cannot be redrawn in place
        click.echo(f"\r\x1b[K{line[:width]}", err=True, nl=False)
        self._drawn = True


def _stderr_columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def _progress_line(
    progress: WaitProgress, next_in: float, elapsed: float, *, compact: bool = False
) -> str:
    """What the wait waits for, what it last heard, when it polls next, how long so far.

    ``compact`` fits a terminal's live line: the tracking id shortened (the accepted
    result above shows it whole), shorter words, no timeout.
    """
    tracking = progress.tracking_id
    if compact and len(tracking) > 12:
        tracking = tracking[:8] + "..."
    what = (
        f"waiting: {progress.platform} {tracking}"
        if compact
        else (f"waiting for {progress.platform} to finish {progress.tracking_id}")
    )
    so_far = f"{_duration(elapsed)} so far"
    if not compact:
        so_far += f", gives up at {_duration(progress.timeout)}"
    if progress.step == "held_back":
        held = f"{progress.platform} holds the next call back (Retry-After or its rate limit)"
        return f"{what}: {held}, {_duration(next_in)} left; {so_far}"
    polls = progress.polls
    counted = f"{polls} poll{'' if polls == 1 else 's'}"
    if polls == 0:
        state = "accepted"
    elif progress.result.outcome == "accepted":
        state = f"pending ({counted})" if compact else f"still pending after {counted}"
    else:  # a poll the platform rate limited: the wait goes on after Retry-After
        state = "rate limited" if compact else "the last status poll was rate limited"
    after = " (Retry-After)" if progress.why == "Retry-After" else ""
    which = "first" if polls == 0 else "next"
    return f"{what}: {state}; {which} poll in {_duration(next_in)}{after}; {so_far}"


def _duration(seconds: float) -> str:
    """``2.5 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min" + (f" {whole % 60:02d} s" if whole % 60 else "")
    return f"{whole // 3600} h" + (f" {whole % 3600 // 60:02d} min" if whole % 3600 >= 60 else "")


def sandbox_state_path() -> Path:
    """Where ``--sandbox`` keeps emulator state between commands."""
    if os.environ.get("CANCELKIT_SANDBOX_STATE"):
        return Path(os.environ["CANCELKIT_SANDBOX_STATE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cancelkit" / "sandbox-state.json"


@contextmanager
def _maybe_sandbox(state: _State, enabled: bool) -> Iterator[dict[str, dict[str, str]] | None]:
    global _active_sandbox
    if not enabled:
        yield None
        return
    from .core.sandbox.server import Sandbox

    box = Sandbox(state.registry.emulators(), state_path=sandbox_state_path())
    with box:
        _active_sandbox = box
        try:
            yield box.client_config()
        finally:
            _active_sandbox = None


def _inject(box: Sandbox, client: Client, kind: str, platform: str) -> None:
    """Queue ``--sandbox-fault KIND``; one that cannot apply is bad usage (exit 2)."""
    # A slow answer must outlast the read timeout in effect, or it proves nothing.
    params = {"delay": client.read_timeout(platform) + 1.0} if kind == "slow" else {}
    try:
        box.inject(kind, platform, **params)
    except ValueError as error:
        raise InvalidRequestError(FieldError("--sandbox-fault", str(error))) from None


def _sandbox_reset_hint() -> str:
    return (
        f"note: the sandbox keeps its demo orders between runs (in {sandbox_state_path()}); "
        "if their stock is used up, start again from the seeded orders with "
        "`cancelkit sandbox --reset` or by deleting that file."
    )


def _read_json(stream: Any) -> Any:
    from .core import jsonutil  # simplejson loads only when JSON is read or written

    name = getattr(stream, "name", "-")
    raw = stream.read()
    try:
        return jsonutil.loads(raw)
    except jsonutil.NestingError as error:  # too deep to parse: still name where
        raise InvalidRequestError(FieldError(error.path, error.reason)) from None
    except ValueError as error:
        raise InvalidRequestError(FieldError("", f"{name}: not valid JSON: {error}")) from None


def _print_result(result: CancelResult) -> None:
    """The result for people: outcome, each line with its own errors, then the rest.

    Every text here may come from the platform, so it goes through :func:`_say`.
    """
    tracking = f"  tracking id {result.tracking_id}" if result.tracking_id else ""
    http = f"  (HTTP {result.http_status})" if result.http_status else ""
    _say(f"{result.outcome}  {result.platform}{tracking}{http}")
    shown = set()
    for line in result.lines:
        _say(f"  line {line.line_id}  quantity {line.quantity}  {line.status}")
        for error in line.errors:
            _say(f"    {_error_text(error)}")
            shown.add(error)
    for error in result.errors:
        if error not in shown:  # platforms may list a line's errors at the top as well
            _say(f"  {_error_text(error)}")
    for warning in result.warnings:
        _say(f"  warning: {warning}")
    if result.message:
        _say(result.message)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _say(text: str) -> None:
    """Echo a line for people, its control characters shown, not obeyed.

    A platform's error text could otherwise move the cursor, clear the screen or
    retitle the terminal (ESC sequences, a bare CR) and make ``rejected`` look
    ``cancelled``; ``\x1b`` is printed as the four characters instead.
    """
    click.echo(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def _error_text(error: ResultError) -> str:
    code = f" {error.code}" if error.code else ""
    where = f" [{error.field}]" if error.field else ""
    again = " (nothing was applied; the same cancel may succeed later)" if error.retryable else ""
    return f"error{code}{where}: {error.message}{again}"


def _finish(result: CancelResult, as_json: bool, *, one_line: bool = False) -> NoReturn:
    """Print the result (``one_line``: one JSON line, as ``--wait`` streams) and exit."""
    _show(result, as_json, one_line=one_line)
    sys.exit(EXIT_BY_OUTCOME[result.outcome])


def _show(result: CancelResult, as_json: bool, *, one_line: bool = False) -> None:
    from .core import jsonutil  # simplejson loads only when JSON is read or written
    from .core.schemas import dump_result

    if as_json:
        click.echo(jsonutil.dumps(dump_result(result), indent=None if one_line else 2))
    else:
        _print_result(result)


if __name__ == "__main__":  # pragma: no cover
    main()
