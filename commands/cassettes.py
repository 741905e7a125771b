"""``cancelkit cassettes record|check``: record every plugin's scenarios into cassettes.

The command line face of :mod:`cancelkit.core.cassettes`. The scenarios are those of
every installed plugin (``cancelkit_cassette_scenarios``), built-in or outside
package alike, optionally only those of the platforms named. Each one runs the real
client against a fresh sandbox with the plugins' emulators, and its cassette is
written with every secret masked. ``record`` writes them to ``--out``; ``check``
records to a temporary folder and compares, byte for byte, with ``--out``.

Exit codes: 0 every scenario ended as expected (and, for ``check``, every cassette
reproduced); 1 a scenario ended otherwise or raised, or a cassette differs or is
missing; 2 a platform that is unknown or has no scenarios; 4 vcrpy is not installed.
Every line printed goes through the process-wide secret scrubber, so a value a
scenario's client learnt as secret never reaches the terminal.

Imported only when a ``cassettes`` command runs (``cancelkit.cli._LAZY``).
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..cli import _CONTROL, _reports_errors
from ..errors import ConfigurationError, FieldError, InvalidRequestError

if TYPE_CHECKING:
    from ..core.registry import PluginRegistry
    from ..core.scenario import Scenario


@dataclass(frozen=True)
class Ran:
    """One scenario recorded: what it ended with, and whether that was expected."""

    scenario: Scenario
    outcome: str

    @property
    def expected(self) -> bool:
        """The scenario ended with the outcome (or cancelkit error) it declares."""
        return self.outcome == self.scenario.expected_outcome


@click.group("cassettes")
def cassettes() -> None:
    """Record cassettes from the sandbox, or check that recording reproduces them.

    Runs the scenarios of every installed plugin (built-in or an outside package),
    or only those of the platforms named. Needs vcrpy: pip install 'cancelkit[testing]'.

    \b
    Example:
      cancelkit cassettes record carriyo --out cassettes
      cancelkit cassettes check mirakl
    """


_out_option = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cassettes"),
    show_default=True,
    help="The cassettes directory (one folder per platform inside).",
)
_platforms_argument = click.argument("platforms", nargs=-1, metavar="[PLATFORM]...")


@cassettes.command("record")
@_platforms_argument
@_out_option
@_reports_errors
def record_command(platforms: tuple[str, ...], out: Path) -> None:
    """Record every scenario (or those of PLATFORM) into --out.

    Prints each cassette and the outcome its scenario ended with; exits 1 if any
    ended otherwise than it declares.

    \b
    Example:
      cancelkit cassettes record carriyo --out cassettes
    """
    ran = record_scenarios(out, platforms)
    for item in ran:
        _say(f"recorded {out / item.scenario.cassette}  {_verdict(item)}")
    sys.exit(_summary(ran, f"{len(ran)} cassettes recorded in {out}"))


@cassettes.command("check")
@_platforms_argument
@_out_option
@_reports_errors
def check_command(platforms: tuple[str, ...], out: Path) -> None:
    """Record to a temporary directory and compare with --out, byte for byte.

    Exits 1 if a cassette differs or is missing, or a scenario ended otherwise
    than it declares.

    \b
    Example:
      cancelkit cassettes check
    """
    with tempfile.TemporaryDirectory() as tmp:
        ran = record_scenarios(Path(tmp), platforms)
        same = 0
        for item in ran:
            kept, fresh = out / item.scenario.cassette, Path(tmp) / item.scenario.cassette
            if not kept.is_file():
                status = "missing  "
            elif filecmp.cmp(fresh, kept, shallow=False):
                status, same = "same     ", same + 1
            else:
                status = "differs  "
            _say(f"{status}{kept}  {_verdict(item)}")
    reproduced = f"{same} of {len(ran)} cassettes reproduced"
    code = _summary(ran, reproduced)
    sys.exit(1 if same < len(ran) else code)


def record_scenarios(
    directory: Path,
    platforms: Sequence[str] = (),
    registry_factory: Callable[[], PluginRegistry] | None = None,
) -> list[Ran]:
    """Record the scenarios of ``platforms`` (all if empty) into ``directory``.

    The plugins are every installed one, or those of the registries
    ``registry_factory`` makes (``plugin new`` records a package not installed yet).
    Unlike :func:`cancelkit.core.cassettes.record_all`, a scenario that ends
    otherwise, or raises, does not stop the others: it is reported in its :class:`Ran`.
    """
    _need_vcr()
    from ..core import cassettes as recorder
    from ..core.sandbox.server import Sandbox

    registry = registry_factory() if registry_factory else recorder.installed_plugins()
    chosen = _chosen(registry, platforms)
    done = []
    # The recorder's fixed clock: one platform records as it does among all.
    with Sandbox(registry.emulators(), clock=lambda: recorder.RECORDING_EPOCH) as box:
        for scenario in chosen:
            try:
                outcome = recorder.record(
                    scenario, directory, box, registry_factory=registry_factory
                )
            except Exception as error:  # a scenario's bug: report it, record the others
                outcome = f"raised {type(error).__name__}: {error}"
            done.append(Ran(scenario, outcome))
    return done


def _chosen(registry: PluginRegistry, platforms: Sequence[str]) -> list[Scenario]:
    """The scenarios to record; a platform unknown or without scenarios is refused (exit 2)."""
    from ..core.cassettes import scenarios

    every = scenarios(registry)
    with_scenarios = sorted({s.platform for s in every})
    known = ", ".join(with_scenarios) or "none"
    problems: list[FieldError] = []
    for name in dict.fromkeys(platforms):
        if name in with_scenarios:
            continue
        if name in registry.platforms():
            problems.append(
                FieldError(
                    "PLATFORM",
                    f"platform {name!r} has no cassette scenarios (its plugin implements no "
                    f"cancelkit_cassette_scenarios); platforms with scenarios: {known}",
                )
            )
        else:
            problems.append(
                FieldError(
                    "PLATFORM", f"unknown platform {name!r}; platforms with scenarios: {known}"
                )
            )
    if problems:
        broken = "; ".join(f"{b.name} ({b.error})" for b in registry.broken)
        if broken:  # the author's own plugin may be the one that failed to load
            problems.append(FieldError("", f"plugins that failed to load: {broken}"))
        raise InvalidRequestError(problems)
    return [s for s in every if not platforms or s.platform in platforms]


def _need_vcr() -> None:
    try:
        import vcr  # noqa: F401  (the recorder's one extra dependency)
    except ImportError:
        raise ConfigurationError(
            "cancelkit cassettes needs vcrpy: pip install 'cancelkit[testing]'"
        ) from None


def _verdict(item: Ran) -> str:
    if item.expected:
        return item.outcome
    return f"{item.outcome}  NOT EXPECTED: the scenario declares {item.scenario.expected_outcome}"


def _summary(ran: list[Ran], headline: str) -> int:
    """Print the closing line; 1 if any scenario ended otherwise than it declares."""
    wrong = sum(not item.expected for item in ran)
    if wrong:
        _say(f"{headline}; {wrong} scenario(s) did not end as they declare")
        return 1
    _say(headline)
    return 0


def _say(text: str) -> None:
    """Echo a line with every known secret masked and control characters shown."""
    from ..core.secrets import scrub_process_wide

    click.echo(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", scrub_process_wide(text)))
