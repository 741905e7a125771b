"""The ``cancelkit`` command (contract: README "Command line").

Exit codes: 0 cancelled/accepted/ok, 1 rejected or partial, 2 bad input or
usage, 3 unknown outcome or transport failure, 4 configuration or authentication.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from .core.sandbox.faultkinds import FAULT_KINDS
from .errors import CancelkitError, FieldError, InvalidRequestError

if TYPE_CHECKING:
    from .core.client import Client
    from .core.model import CancelResult
    from .core.registry import PluginRegistry
    from .core.sandbox.server import Sandbox

# Heavy modules (requests, marshmallow, plugins) are imported inside the commands
# that need them, so `cancelkit --help` starts fast.

EXIT_BY_OUTCOME = {"cancelled": 0, "accepted": 0, "rejected": 1, "partial": 1, "unknown": 3}

F = TypeVar("F", bound=Callable[..., Any])


def _reports_errors(command: F) -> F:
    """Turn cancelkit errors into a one-line message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CancelkitError as error:
            for line in _error_lines(error):
                click.echo(f"error: {line}", err=True)
            sys.exit(error.exit_code)
        except Exception as error:
            if os.environ.get("CANCELKIT_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(error).__name__}: {error} "
                "(set CANCELKIT_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(3)

    return cast(F, wrapper)


def _error_lines(error: CancelkitError) -> list[str]:
    if isinstance(error, InvalidRequestError):
        return [str(e) for e in error.errors]
    return [str(error)]


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

    def client(self, config: dict[str, dict[str, str]] | None = None) -> Client:
        from .core.client import Client

        return Client(
            registry=self.registry,
            config=config,
            config_path=self.config_path,
            profile=self.profile,
        )


pass_state = click.make_pass_decorator(_State)
platform_option = click.option(
    "-p", "--platform", required=True, metavar="NAME", help="Platform plugin, e.g. mirakl."
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


class _Group(click.Group):
    """The ``cancelkit`` group. Commands that plugins add load on first need.

    A command name that is not built in asks every plugin's
    ``cancelkit_register_commands`` once (loading the plugins), so built-in commands
    and ``--help`` stay as cheap as before.
    """

    _plugin_commands_loaded = False

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:  # fmt: skip
        extra.setdefault("terminal_width", _terminal_width())
        return super().make_context(info_name, args, parent, **extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else one a plugin registers."""
        command = super().get_command(ctx, cmd_name)
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
@click.version_option(package_name="cancelkit")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, profile: str | None) -> None:
    """Translate and send order-line cancellations to commerce platforms.

    \b
    Try it with no account, on the local sandbox:
      cancelkit send --sandbox -p mirakl examples/mirakl.json
    """
    ctx.obj = _State(config_path, profile)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
@_reports_errors
def platforms(state: _State, as_json: bool) -> None:
    """List platforms, their capabilities, and plugins that failed to load.

    \b
    Example:
      cancelkit platforms --json
    """
    from .core import jsonutil  # simplejson loads only when JSON is read or written

    registry = state.registry
    adapters = registry.platforms()
    broken = [{"name": b.name, "source": b.source, "error": b.error} for b in registry.broken]
    if as_json:
        click.echo(
            jsonutil.dumps(
                {
                    "platforms": [
                        {
                            "name": a.name,
                            "title": a.title,
                            "plugin": registry.providers.get(a.name),
                            "capabilities": a.capabilities.to_dict(),
                        }
                        for a in adapters.values()
                    ],
                    "broken": broken,
                },
                indent=2,
            )
        )
        return
    rows = [("PLATFORM", "PLUGIN", "MODE", "QUANTITY", "RESEND", "TITLE")]
    for adapter in adapters.values():
        caps = adapter.capabilities
        quantity = "fractional" if caps.fractional_quantity else "whole"
        rows.append(
            (
                adapter.name,
                registry.providers.get(adapter.name, "?"),
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
    for item in broken:
        click.echo(f"BROKEN {item['name']} ({item['source']}): {item['error']}")


@main.command()
@click.option("-p", "--platform", metavar="NAME", help="Also check this platform's needs.")
@request_argument
@pass_state
@_reports_errors
def validate(state: _State, platform: str | None, request_file: Any) -> None:
    """Check a canonical request (FILE, or - for stdin); sends nothing.

    \b
    Example:
      cancelkit validate -p mirakl examples/mirakl.json
    """
    from .core.schemas import load_request

    data = _read_json(request_file)
    if platform:
        state.client().prepare(data, platform)
    else:
        load_request(data)
    click.echo(f"ok: valid{' for ' + platform if platform else ''}")


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
      cancelkit translate -p mirakl examples/mirakl.json --format curl
    """
    from .core.http import render

    call = state.client().translate(_read_json(request_file), platform)
    click.echo(render(call, fmt))


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
@click.option("--wait", is_flag=True, help="Poll the status of an accepted request until final.")
@click.option("--wait-timeout", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the canonical result as JSON.")
@pass_state
@_reports_errors
def send(
    state: _State,
    platform: str,
    request_file: Any,
    sandbox: bool,
    faults: tuple[str, ...],
    dry_run: bool,
    wait: bool,
    wait_timeout: float,
    as_json: bool,
) -> None:
    """Send a cancellation and print the canonical result.

    Never resent when the outcome is unknown (exit 3): the message says how to
    find out what happened.

    \b
    Example:
      cancelkit send --sandbox -p mirakl examples/mirakl.json --wait
    """
    data = _read_json(request_file)
    if faults and not sandbox:
        raise InvalidRequestError(FieldError("--sandbox-fault", "needs --sandbox"))
    with _maybe_sandbox(state, sandbox) as config:
        client = state.client(config)
        if dry_run:
            from .core.http import render

            click.echo(render(client.translate(data, platform), "json"))
            return
        for kind in faults:
            assert _active_sandbox is not None
            _inject(_active_sandbox, client, kind, platform)
        result = client.send(data, platform)
        if wait and result.outcome == "accepted":
            if not as_json:
                _print_result(result)
            result = client.wait(result, timeout=wait_timeout)
        if sandbox and result.outcome in ("rejected", "partial"):
            click.echo(_sandbox_reset_hint(), err=True)
        _finish(result, as_json)


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


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address.")
@click.option("--port", default=8470, show_default=True, type=int, help="0 picks a free port.")
@click.option("--reset", is_flag=True, help="Start from the seeded demo orders.")
@pass_state
@_reports_errors
def sandbox_command(state: _State, host: str, port: int, reset: bool) -> None:
    """Serve the local emulator of every platform until interrupted.

    State is kept in $CANCELKIT_SANDBOX_STATE (default
    ~/.cache/cancelkit/sandbox-state.json), shared with send/status --sandbox.

    \b
    Example:
      cancelkit sandbox --port 8470
      CANCELKIT_MIRAKL_BASE_URL=http://127.0.0.1:8470/mirakl/api ...
    """
    from .core.sandbox.server import Sandbox
    from .core.sandbox.state import StateFile

    path = sandbox_state_path()
    if reset:  # before anything loads it: the way out of a corrupt state file
        StateFile(path).remove()
    box = Sandbox(
        state.registry.emulators(),
        host=host,
        port=port,
        state_path=path,
        log=lambda line: click.echo(line),
    )
    click.echo(f"cancelkit sandbox on http://{host}:{port} (state: {path}); Ctrl-C stops it")
    for platform in box.emulators:
        click.echo(f"  {platform}: http://{host}:{port}/{platform}/")
    # SIGTERM stops it like Ctrl-C does, so the state is saved either way.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        box.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@main.group("cassettes")
def cassettes_group() -> None:
    """Record cassettes from the sandbox, or check that recording reproduces them.

    Needs the test extra (vcrpy): pip install -e '.[test]'.

    \b
    Example:
      cancelkit cassettes check mirakl
    """


_out_option = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cassettes"),
    show_default=True,
    help="The cassettes directory.",
)


@cassettes_group.command("record")
@click.argument("platforms", nargs=-1, metavar="[PLATFORM]...")
@_out_option
@_reports_errors
def cassettes_record(platforms: tuple[str, ...], out: Path) -> None:
    """Record every scenario (or those of PLATFORM) into --out.

    \b
    Example:
      cancelkit cassettes record carriyo
    """
    sys.exit(_cassettes([*platforms, "--out", str(out)]))


@cassettes_group.command("check")
@click.argument("platforms", nargs=-1, metavar="[PLATFORM]...")
@_out_option
@_reports_errors
def cassettes_check(platforms: tuple[str, ...], out: Path) -> None:
    """Record to a temporary directory and compare with --out, byte for byte.

    \b
    Example:
      cancelkit cassettes check
    """
    sys.exit(_cassettes([*platforms, "--out", str(out), "--check"]))


def _cassettes(argv: list[str]) -> int:
    from .errors import ConfigurationError

    try:
        import vcr  # noqa: F401  (the recorder's one extra dependency)
    except ImportError:
        raise ConfigurationError(
            "cancelkit cassettes needs vcrpy: pip install -e '.[test]'"
        ) from None
    from .core.cassettes import main as recorder

    return recorder(argv)


# -- helpers ------------------------------------------------------------------
_active_sandbox: Sandbox | None = None


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
        "`cancelkit sandbox --reset` (then Ctrl-C) or by deleting that file."
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
    tracking = f"  tracking id {result.tracking_id}" if result.tracking_id else ""
    http = f"  (HTTP {result.http_status})" if result.http_status else ""
    click.echo(f"{result.outcome}  {result.platform}{tracking}{http}")
    for line in result.lines:
        click.echo(f"  line {line.line_id}  quantity {line.quantity}  {line.status}")
    for error in result.errors:
        where = f" [{error.field}]" if error.field else ""
        click.echo(f"  error {error.code or ''}{where}: {error.message}")
    for warning in result.warnings:
        click.echo(f"  warning: {warning}")
    if result.message:
        click.echo(result.message)


def _finish(result: CancelResult, as_json: bool) -> None:
    from .core import jsonutil  # simplejson loads only when JSON is read or written
    from .core.schemas import dump_result

    if as_json:
        click.echo(jsonutil.dumps(dump_result(result), indent=2))
    else:
        _print_result(result)
    sys.exit(EXIT_BY_OUTCOME[result.outcome])


if __name__ == "__main__":  # pragma: no cover
    main()
