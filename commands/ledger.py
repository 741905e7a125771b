"""``cancelkit ledger``: list, show and resolve what the ledger holds.

Every real send is claimed in the ledger before it leaves and answered when it
comes back (:mod:`cancelkit.core.ledger`). These commands let a person audit it,
follow up what is still open, and settle by hand an entry whose outcome is
unknown, having checked the order on the platform.

Imported only when a ``ledger`` command runs (``cancelkit.cli._LAZY``); the ledger
itself (SQLAlchemy) loads only when one is opened, so ``--help`` stays cheap.
Every text that came from outside (keys, tracking ids, notes, results) is printed
through the command line's control-character escaping.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

import click

from ..cli import (
    _CONTROL,
    EXIT_INTERRUPTED,
    _fail,
    _finish,
    _maybe_sandbox,
    _reports_errors,
    _sandbox_reset_hint,
    _say,
    _State,
    _status_command,
    pass_state,
    sandbox_state_path,
)
from ..errors import CancelkitError, ConfigurationError, FieldError, InvalidRequestError

if TYPE_CHECKING:
    from ..core.ledger.store import Ledger, LedgerEntry
    from ..core.model import CancelResult

#: Every outcome an entry can have (``unknown``: claimed with no answer, or an
#: answer that could not tell; ``not_sent``: released before anything left).
OUTCOMES = ("cancelled", "accepted", "rejected", "partial", "unknown", "not_sent")
#: Outcomes ``resolve --as`` may settle: the others are the platform's own answer.
SETTLEABLE = ("unknown", "accepted", "not_sent")
#: Outcomes ``resolve --resend`` refuses: the platform applied (some of) the cancel.
APPLIED = ("cancelled", "partial")
#: Outcomes ``list`` gives a follow-up for: not final yet, or not known.
OPEN = ("unknown", "accepted")
#: Characters of a key shown by ``list`` (after any ``sha256:`` prefix).
SHORT_KEY = 12

_sandbox_option = click.option(
    "--sandbox", is_flag=True, help="The sandbox's own ledger (its sends, never real ones)."
)


@click.group("ledger")
def ledger() -> None:
    """Audit the ledger: list, show and resolve sends.

    Every send is claimed in the ledger before it leaves and answered when it
    comes back, so the same request is never sent twice. The ledger is
    $CANCELKIT_LEDGER_URL, else the config file's ledger_url, else ledger.sqlite3
    in your user data directory; --sandbox reads the sandbox's own ledger.

    \b
    Example:
      cancelkit ledger list --unknown
      cancelkit ledger show sha256:7bcf65c6cadc
      cancelkit ledger resolve sha256:7bcf65c6cadc --as cancelled
    """


@ledger.command("list")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    type=click.Choice(OUTCOMES),
    help="Only entries with this outcome (repeatable).",
)
@click.option("-p", "--platform", metavar="NAME", help="Only this platform's entries.")
@click.option(
    "--unknown",
    is_flag=True,
    help="Entries whose outcome is unknown (claimed with no answer, or an answer that "
    "could not tell): the ones to check. Same as --outcome unknown.",
)
@click.option("--job", metavar="JOB", help="Only the requests of this bulk job (its id or start).")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="At most this many entries (0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one entry per line.")
@_sandbox_option
@pass_state
@_reports_errors
def list_entries(
    state: _State,
    outcomes: tuple[str, ...],
    platform: str | None,
    unknown: bool,
    job: str | None,
    limit: int,
    as_json: bool,
    sandbox: bool,
) -> None:
    """List the ledger's entries, newest first, and how to follow up open ones.

    After the table, each unknown or accepted entry gets its follow-up: the
    `cancelkit status` command that asks for its outcome, or what to check and
    how to resolve it. --json prints JSON Lines (one entry per line, streamed).

    \b
    Example:
      cancelkit ledger list --unknown
      cancelkit ledger list -p mirakl --outcome accepted --limit 10
      cancelkit ledger list --limit 0 --json > ledger.jsonl
    """
    from ..core import jsonutil

    wanted = tuple(dict.fromkeys((*outcomes, *(("unknown",) if unknown else ()))))
    with opened_ledger(state, sandbox) as book:
        job_id = str(book.job(job)["id"]) if job else None
        found = book.entries(outcomes=wanted, platform=platform, job=job_id, limit=limit or None)
        if as_json:
            for entry in found:
                click.echo(jsonutil.dumps(entry.to_dict()))
            return
        shown, follow_ups = 0, []
        has_status: dict[str, bool] = {}
        for entry in found:
            if shown == 0:
                _say(_row("KEY", "PLATFORM", "OUTCOME", "TRACKING ID", "CLAIMED (UTC)", ""))
            shown += 1
            attempt = f"attempt {entry.attempt}" if entry.attempt > 1 else ""
            _say(
                _row(
                    short_key(entry.key),
                    entry.platform,
                    entry.outcome,
                    entry.tracking_id or "-",
                    _utc(entry.claimed_at),
                    attempt,
                )
            )
            if entry.outcome in OPEN:
                step = follow_up(state, entry, sandbox, has_status)
                follow_ups.append(f"  {_cell(short_key(entry.key))}  {_cell(step)}")
        if follow_ups:
            _say("follow up:")
            for line in follow_ups:
                _say(line)
        more = " (--limit reached; --limit 0 lists all)" if limit and shown == limit else ""
        _say(f"{shown} shown{more}; ledger at {book.display_url}")


@ledger.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="The entry as one JSON object.")
@_sandbox_option
@pass_state
@_reports_errors
def show(state: _State, key: str, as_json: bool, sandbox: bool) -> None:
    """Show one entry: what was sent, how, and what came back.

    KEY may be the start of a key, as `ledger list` shows it, if only one key
    starts so (exit 2 when none or several do). The call is shown as it was
    translated, secrets masked.

    \b
    Example:
      cancelkit ledger show sha256:7bcf65c6cadc
      cancelkit ledger show my-idempotency-key --json
    """
    from ..core import jsonutil

    with opened_ledger(state, sandbox) as book:
        entry = _find(book, key)
    if as_json:
        click.echo(jsonutil.dumps(entry.to_dict(), indent=2))
        return
    answered = (
        f"{_utc(entry.answered_at)} UTC"
        if entry.answered_at
        else ("no answer recorded" if entry.in_flight else "-")
    )
    if entry.never_left:
        shown_outcome = f"{entry.outcome} (claimed, never sent: a new send of it sends it)"
    elif entry.in_flight:
        shown_outcome = f"{entry.outcome} (claimed, sent at {_utc(entry.left_at)} UTC, no answer)"
    else:
        shown_outcome = entry.outcome
    fields = [
        ("key", entry.key),
        ("platform", entry.platform),
        ("outcome", shown_outcome),
        ("attempt", str(entry.attempt)),
        ("claimed", f"{_utc(entry.claimed_at)} UTC by {entry.claimed_by}"),
        ("answered", answered),
        ("tracking id", entry.tracking_id or "-"),
        ("note", entry.note or "-"),
    ]
    for label, value in fields:
        _say(f"{label:<12} {_cell(value)}")
    blocks = [
        ("request", entry.request),
        ("call (as translated, secrets masked)", entry.call),
        ("result of the send", entry.result),
        ("latest status", entry.latest),
    ]
    for label, data in blocks:
        _say(f"{label}:" + ("" if data is not None else " none"))
        if data is not None:
            _say(jsonutil.dumps(data, indent=2))
    if entry.outcome in OPEN:
        _say(f"follow up: {follow_up(state, entry, sandbox, {})}")


@ledger.command("resolve")
@click.argument("key")
@click.option(
    "--as",
    "settle",
    type=click.Choice(["cancelled", "rejected"]),
    help="Settle it by hand, having checked the order on the platform (rejected: nothing "
    "was applied). It is not sent again.",
)
@click.option(
    "--resend",
    is_flag=True,
    help="Send the recorded request again (only after checking on the platform that the "
    "earlier send was not applied); prints the result as send does.",
)
@click.option("--note", metavar="TEXT", help='Why, with --as (default "resolved by hand as X").')
@_sandbox_option
@click.option("--json", "as_json", is_flag=True, help="Print the entry (or result) as JSON.")
@pass_state
@_reports_errors
def resolve(
    state: _State,
    key: str,
    settle: Literal["cancelled", "rejected"] | None,
    resend: bool,
    note: str | None,
    sandbox: bool,
    as_json: bool,
) -> None:
    """Settle an entry whose outcome is unknown: by hand (--as), or by sending again.

    Check the order on the platform first. --as cancelled or --as rejected records
    what you found (only for unknown, accepted and not_sent entries); a later send
    of the same request is then held and answers that. --resend sends the
    recorded request again and exits as send does.

    \b
    Example:
      cancelkit ledger resolve sha256:7bcf65c6cadc --as cancelled
      cancelkit ledger resolve sha256:7bcf65c6cadc --as rejected --note "not on the order"
      cancelkit ledger resolve sha256:7bcf65c6cadc --resend
    """
    if (settle is None) == (not resend):
        raise InvalidRequestError(
            FieldError("--as", "give either --as cancelled|rejected or --resend (one of them)")
        )
    if resend:
        if note is not None:
            raise InvalidRequestError(FieldError("--note", "goes with --as, not --resend"))
        _resend(state, key, sandbox, as_json)
        return
    assert settle is not None
    from ..core import jsonutil

    with opened_ledger(state, sandbox) as book:
        entry = _find(book, key)
        if entry.outcome not in SETTLEABLE:
            raise InvalidRequestError(
                FieldError(
                    "key",
                    f"{_escaped(entry.key)} is {entry.outcome} already: its outcome is known, "
                    "there is nothing to resolve",
                )
            )
        if entry.in_flight:
            _warn(
                f"note: {entry.key} was claimed at {_utc(entry.claimed_at)} UTC by "
                f"{entry.claimed_by} with no answer recorded; if that send is still running, "
                "its answer will NOT be recorded: this resolution holds"
            )
        resolved = book.resolve(entry.key, settle, note or f"resolved by hand as {settle}")
    if as_json:
        click.echo(jsonutil.dumps(resolved.to_dict(), indent=2))
        return
    _say(f"resolved {_cell(resolved.key)} as {resolved.outcome}: {_cell(resolved.note or '')}")
    _say("a send of the same request is now held and answers this; --resend sends it anyway")


def _resend(state: _State, key: str, sandbox: bool, as_json: bool) -> None:
    """``resolve --resend``: the recorded request, sent again through the ledger."""
    with _maybe_sandbox(state, sandbox) as config, state.client(config) as client:
        book = client.ledger
        if book is None:  # pragma: no cover - a CLI client always has one
            raise ConfigurationError("this client records no ledger")
        entry = _find(book, key)
        if entry.outcome in APPLIED:
            raise InvalidRequestError(
                FieldError(
                    "key",
                    f"{_escaped(entry.key)} is {entry.outcome}: {entry.platform} applied it, "
                    "so it is not sent again",
                )
            )
        try:
            result = client.send(entry.request, entry.platform, resend=True)
        except KeyboardInterrupt:
            _fail(
                "Interrupted",
                EXIT_INTERRUPTED,
                f"interrupted while sending to {entry.platform}: the cancellation may or may "
                f"not have reached it, and it was NOT resent; check the order on "
                f"{entry.platform} before sending it again",
                as_json,
            )
        sent_under = (result.details.get("ledger") or {}).get("key")
        if sent_under is not None and sent_under != entry.key:
            _warn(
                f"warning: the request went out under another ledger key ({sent_under}): its "
                f"translation changed since (another host, or a plugin); {entry.key} is "
                "unchanged, settle it with --as"
            )
        if sandbox and result.outcome in ("rejected", "partial"):
            click.echo(_sandbox_reset_hint(), err=True)
        _finish(result, as_json)


# -- helpers ------------------------------------------------------------------
@contextmanager
def opened_ledger(state: _State, sandbox: bool) -> Iterator[Ledger]:
    """The ledger to read: the sandbox's own with ``--sandbox``, else the configured one."""
    from ..core.ledger.location import ledger_url, sandbox_ledger_path, sqlite_url
    from ..core.ledger.store import Ledger

    url = (
        sqlite_url(sandbox_ledger_path(sandbox_state_path()))
        if sandbox
        else ledger_url(config_path=state.config_path, profile=state.profile)
    )
    with Ledger(url) as book:
        yield book


def _find(book: Ledger, key: str) -> LedgerEntry:
    """The entry of ``key`` or of the one key starting with it; exit 2 otherwise."""
    if not key.strip():
        raise InvalidRequestError(FieldError("key", "must not be empty"))
    return book.find(key)


def short_key(key: str) -> str:
    """``sha256:`` and the first 12 hex digits of a derived key; a user's key's first 12."""
    from ..core.ledger.keys import DERIVED_PREFIX

    prefix = DERIVED_PREFIX if key.startswith(DERIVED_PREFIX) else ""
    return prefix + key[len(prefix) :][:SHORT_KEY]


def follow_up(state: _State, entry: LedgerEntry, sandbox: bool, has_status: dict[str, bool]) -> str:
    """How to learn an open entry's outcome: a status command, else what to check by hand.

    ``has_status`` caches which platforms answer ``status`` (filled as it goes).
    """
    platform = entry.platform
    if platform not in has_status:
        try:
            has_status[platform] = state.registry.platform(platform).capabilities.has_status
        except CancelkitError:  # its plugin is gone: no status to ask
            has_status[platform] = False
    if entry.tracking_id and has_status[platform]:
        return _status_command(state, platform, entry.tracking_id, sandbox)
    if entry.never_left:  # its sender stopped before the call left (or is still waiting)
        return "never sent: sending the same request again (or rerunning its job) sends it"
    return f"check the order on {platform}, then: {resolve_command(state, entry.key, sandbox)}"


def resolve_command(state: _State, key: str, sandbox: bool) -> str:
    """``cancelkit ledger resolve KEY --as cancelled|rejected (or --resend)``, shell-quoted."""
    words = ["cancelkit"]
    if state.config_path is not None:
        words += ["--config", str(state.config_path)]
    if state.profile:
        words += ["--profile", state.profile]
    words += ["ledger", "resolve", *(["--sandbox"] if sandbox else [])]
    if key.startswith("-"):  # not an option: it goes after --, the options before
        return f"{shlex.join(words)} --as cancelled|rejected (or --resend) -- {shlex.quote(key)}"
    return f"{shlex.join([*words, key])} --as cancelled|rejected (or --resend)"


def held_unknown_hint(state: _State, result: CancelResult, sandbox: bool) -> str | None:
    """What ``send`` adds on stderr when the ledger held a request whose outcome is unknown:
    how to settle it (None when the result's message says so already)."""
    key = str((result.details.get("ledger") or {}).get("key") or "")
    if not key or "ledger resolve" in (result.message or ""):
        return None
    return _escaped(
        f"note: the ledger holds this request with its outcome unknown; check the order on "
        f"{result.platform}, then: {resolve_command(state, key, sandbox)}"
    )


def _row(key: str, platform: str, outcome: str, tracking: str, claimed: str, extra: str) -> str:
    cells = [
        _cell(key).ljust(19),
        _cell(platform).ljust(15),
        outcome.ljust(9),
        _cell(tracking).ljust(36),
        claimed.ljust(19),
        extra,
    ]
    return "  ".join(cells).rstrip()


def _cell(text: str) -> str:
    """One line of outside text: its line breaks and tabs shown, not obeyed (then
    :func:`_say` shows the other control characters)."""
    return text.replace("\n", "\\x0a").replace("\t", "\\x09")


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _escaped(text: str) -> str:
    """Outside text for a message that is not printed by :func:`_say` (an error's)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", _cell(text))


def _warn(text: str) -> None:
    """A line for people on stderr, its control characters shown, not obeyed."""
    click.echo(_escaped(text), err=True)


__all__ = ["ledger"]
