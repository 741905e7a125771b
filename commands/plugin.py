"""``cancelkit plugin new NAME``: write an installable platform plugin package.

The package (``cancelkit-NAME/``, from the templates in :mod:`cancelkit.scaffold`)
holds a small but real plugin for a fictional platform - adapter, emulator,
scenarios, contract placeholder, example request, tests on the conformance suite,
README - and its cassettes, recorded here from the sandbox as ``cancelkit cassettes
record`` would. So ``pip install -e ./cancelkit-NAME && pytest ./cancelkit-NAME``
passes at once, and the author changes a green package into theirs.

The folder is written under a temporary name beside the target and renamed into
place at the end: an error leaves nothing half-written, and an existing folder is
never touched. Imported only when a ``plugin`` command runs (``cancelkit.cli._LAZY``).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import click

from ..cli import _reports_errors
from ..errors import FieldError, InvalidRequestError

#: Lowercase words joined by single underscores: a platform name (``-p NAME``), and,
#: prefixed, a Python package (``cancelkit_NAME``) and an environment variable prefix.
NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_NAME = 24
#: A title goes into Python, TOML and JSON strings as it is: no quotes or backslashes.
TITLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .,&()'+-]*")
MAX_TITLE = 40


@click.group("plugin")
def plugin() -> None:
    """Start a platform plugin of your own, as an installable package.

    \b
    Example:
      cancelkit plugin new toyshop --dir ~/src
    """


def _valid_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if len(value) > MAX_NAME or not NAME.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a platform name: lowercase letters and digits, words joined "
            f"by single underscores, starting with a letter, at most {MAX_NAME} characters "
            "(e.g. toyshop, toy_shop)",
            ctx,
            param,
        )
    return value


def _valid_title(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (len(value) > MAX_TITLE or not TITLE.fullmatch(value)):
        raise click.BadParameter(
            f"{value!r}: letters, digits, spaces and . , & ( ) ' + - only, at most "
            f"{MAX_TITLE} characters",
            ctx,
            param,
        )
    return value


@plugin.command("new")
@click.argument("name", callback=_valid_name)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write the cancelkit-NAME folder.",
)
@click.option(
    "--title",
    callback=_valid_title,
    help="The platform's name for people (default: NAME, capitalised).",
)
@_reports_errors
def new(name: str, directory: Path, title: str | None) -> None:
    """Write the package cancelkit-NAME: a plugin for platform NAME that passes its tests.

    The adapter, emulator and contract are a small working example for a fictional
    platform (a token, then POST /orders/{order_id}/cancel): replace them step by
    step with your platform's documented API (the package's README says how).

    \b
    Example:
      cancelkit plugin new toyshop
      pip install -e './cancelkit-toyshop[test]' && pytest ./cancelkit-toyshop
    """
    from .. import scaffold

    started = time.monotonic()
    _refuse_taken(name)
    values = scaffold.placeholders(name, title or name.replace("_", " ").title(), _version())
    target = directory / values["dist"]
    if target.exists() or target.is_symlink():
        raise InvalidRequestError(
            FieldError(
                "--dir",
                f"{target} already exists; nothing was written (choose another NAME or --dir)",
            )
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=directory))
    except OSError as error:  # below a file, read-only, ...: the user's to change
        why = f"cannot write into {directory}: {error.strerror or type(error).__name__}"
        raise InvalidRequestError(FieldError("--dir", why)) from None
    try:
        try:
            written = scaffold.render(work, values)
        except ValueError as error:
            raise InvalidRequestError(FieldError("NAME", str(error))) from None
        recorded = _record(work, values["module"], name)
        # mkdtemp made it private (0700): the package gets what the umask gives a folder.
        os.chmod(work, 0o777 & ~_umask())
        os.rename(work, target)  # no half-written package, ever, under the real name
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # the temporary folder this run made
        raise
    elapsed = time.monotonic() - started
    click.echo(f"wrote {target}/ ({len(written)} files, {elapsed:.1f} s):")
    for path in sorted(written):
        click.echo(f"  {path.relative_to(work)}")
    if recorded is None:
        click.echo(
            "cassettes not recorded: vcrpy is missing. Install cancelkit[testing], then run "
            f"cancelkit cassettes record {name} --out {target / 'cassettes'}"
        )
    else:
        click.echo(f"recorded {recorded} cassettes from the sandbox into {target / 'cassettes'}")
    shown = target if target.is_absolute() else f"./{target}"  # pip: a path, not a name
    click.echo("next:")
    click.echo(f"  pip install -e '{shown}[test]'")
    click.echo(f"  pytest {shown}")


def _refuse_taken(name: str) -> None:
    """A platform of that name is installed already: the two could not be used together."""
    from ..core.registry import PluginRegistry

    registry = PluginRegistry()
    if name in registry.platforms():
        found = registry.distribution(registry.providers[name])
        where = f"{found.name} {found.version or ''}".strip() if found else "a plugin"
        why = f"platform {name!r} is already provided by {where}; choose another name"
        raise InvalidRequestError(FieldError("NAME", why))


def _umask() -> int:
    """The process's umask (reading it means setting it: put straight back)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def _version() -> str:
    """The installed cancelkit's version (the generated package depends on at least it)."""
    from .. import __version__

    return __version__


def _record(folder: Path, module: str, platform: str) -> int | None:
    """Record the new package's scenarios into ``folder/cassettes``; how many (None: no vcrpy).

    The package is not installed yet: its plugin module is imported from ``folder``
    for the recording only, and registered alone.
    """
    try:
        import vcr  # noqa: F401  (cancelkit[testing]; without it, the author records later)
    except ImportError:
        return None
    from ..core.registry import PluginRegistry
    from .cassettes import record_scenarios

    with _imported(folder, f"{module}.plugin") as plugin_module:

        def registry() -> PluginRegistry:
            fresh = PluginRegistry(entry_points_to_load=(), builtin_plugins=())
            fresh.register(plugin_module, platform)
            return fresh

        ran = record_scenarios(folder / "cassettes", [platform], registry)
    wrong = [f"{r.scenario.cassette}: {r.outcome}" for r in ran if not r.expected]
    if wrong:  # a template bug: the generated package would not pass its own tests
        raise RuntimeError(f"the new package's scenarios ended otherwise: {'; '.join(wrong)}")
    return len(ran)


@contextmanager
def _imported(folder: Path, name: str) -> Iterator[ModuleType]:
    """Module ``name`` imported from ``folder``, forgotten again afterwards."""
    top = name.split(".")[0]
    stale = {key: sys.modules.pop(key) for key in list(sys.modules) if key.split(".")[0] == top}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(name)
        if not Path(str(module.__file__)).resolve().is_relative_to(folder.resolve()):
            raise RuntimeError(f"{name} was imported from {module.__file__}, not {folder}")
        yield module
    finally:
        sys.path.remove(str(folder))
        for key in [key for key in sys.modules if key.split(".")[0] == top]:
            del sys.modules[key]
        sys.modules.update(stale)
