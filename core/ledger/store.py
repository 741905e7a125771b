"""The ledger itself: claim a key, record its answer, list and resolve what it holds.

Every write is one short transaction. The claim is an INSERT that the primary key
makes atomic across processes and machines (never a read-then-write); a key that
may be sent again (see ``may_reclaim`` of :meth:`Ledger.claim`) is re-claimed by a
compare-and-set on its ``attempt`` number, so of two processes only one wins. An
answer is recorded only by the attempt that claimed it.

SQLite runs in WAL mode. A claim commits with ``synchronous=FULL``: it is on disk
before the call leaves, so neither a killed process nor a power cut can forget one.
Every other write (an answer, a release, a resolution) commits with ``NORMAL``: safe
against a killed process, and a power cut can at worst lose it, which leaves its
claim ``unknown`` - never resent, only asked about. Half the fsyncs of all-FULL.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa

from ...errors import ConfigurationError, InvalidRequestError, ServiceUnavailableError
from ...errors import FieldError as _FieldError
from .. import jsonutil
from ..model import CancelResult
from .location import engine_url, shown_url
from .tables import entries, job_lines, jobs, migrate

#: SQLite waits this long (seconds) for another writer before giving up.
SQLITE_BUSY_TIMEOUT = 60.0
#: Rows inserted per statement when a bulk job lists its requests.
BATCH = 1000


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger holds for one key."""

    key: str
    fingerprint: str
    platform: str
    #: cancelled | accepted | rejected | partial | unknown | not_sent
    outcome: str
    answered: bool
    attempt: int
    request: dict[str, Any]
    call: dict[str, Any] | None
    result: dict[str, Any] | None
    latest: dict[str, Any] | None
    tracking_id: str | None
    note: str | None
    claimed_by: str
    claimed_at: datetime
    answered_at: datetime | None
    updated_at: datetime
    #: When the claim's cancel call was about to leave; None: it never left.
    left_at: datetime | None = None

    @property
    def in_flight(self) -> bool:
        """Claimed with no answer: being sent now, or the sender died (outcome unknown)."""
        return not self.answered and self.outcome == "unknown"

    @property
    def never_left(self) -> bool:
        """Claimed, and its cancel call never left: waiting for its turn, or its sender
        died before sending (another sender may send it: see :meth:`Ledger.leave`)."""
        return self.in_flight and self.left_at is None

    def canonical_result(self) -> CancelResult | None:
        """The latest known result (a status answer over the send's), or None."""
        data = self.latest or self.result
        if data is None:
            return None
        from ..schemas import CancelResultSchema

        loaded: CancelResult = CancelResultSchema().load(data)
        return loaded

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain data (``cancelkit ledger show --json``)."""
        return {
            "key": self.key,
            "platform": self.platform,
            "outcome": self.outcome,
            "answered": self.answered,
            "attempt": self.attempt,
            "tracking_id": self.tracking_id,
            "claimed_at": self.claimed_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "left_at": self.left_at.isoformat() if self.left_at else None,
            "updated_at": self.updated_at.isoformat(),
            "claimed_by": self.claimed_by,
            "note": self.note,
            "fingerprint": self.fingerprint,
            "request": self.request,
            "call": self.call,
            "result": self.result,
            "latest": self.latest,
        }


@dataclass(frozen=True)
class Claimed:
    """The key is ours: send the call, then :meth:`Ledger.record` the answer."""

    key: str
    attempt: int
    #: What the ledger held before this claim (a re-claim), or None (a new key).
    previous: LedgerEntry | None = None


@dataclass(frozen=True)
class Held:
    """The key is already in the ledger and may not be sent again: do not send."""

    entry: LedgerEntry


JobLine = tuple[int, str, str, "str | None", "str | None"]


F = TypeVar("F", bound=Callable[..., Any])


def _database_errors(method: F) -> F:
    """A database failure as a ConfigurationError (exit 4) naming the ledger and the
    reason in one line: never SQLAlchemy's text, which quotes the SQL and its values."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as error:
            raise _unusable(self.url, error) from None

    return cast(F, wrapper)


class Ledger:
    """A ledger at one SQLAlchemy URL (SQLite file or PostgreSQL); safe to share by threads."""

    def __init__(self, url: str, *, migrate_schema: bool = True):
        self.url = engine_url(url)
        self.engine = _engine(self.url)
        if migrate_schema:
            try:
                migrate(self.engine)
            except sa.exc.SQLAlchemyError as error:
                self.engine.dispose()
                raise _unusable(self.url, error) from None
            except BaseException:  # a newer schema refused, say: close what was opened
                self.engine.dispose()
                raise
        self._me = f"{socket.gethostname()}:{os.getpid()}"
        #: Claims commit durably (SQLite ``synchronous=FULL``); see the module docstring.
        self._claiming = self.engine.execution_options(cancelkit_sync="FULL")

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection."""
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        """The URL with any password masked."""
        return shown_url(sa.make_url(self.url))

    # -- claim and record ---------------------------------------------------------
    @_database_errors
    def claim(
        self,
        key: str,
        *,
        fingerprint: str,
        platform: str,
        request: dict[str, Any],
        call: dict[str, Any] | None = None,
        may_reclaim: Callable[[LedgerEntry], bool] = lambda entry: False,
        leaving: bool = False,
    ) -> Claimed | Held:
        """Claim ``key`` before sending; :class:`Held` when it may not be sent.

        ``leaving``: the claim counts as leaving from now (its call goes at once, unless
        :meth:`hold` says it waits first); False: claimed only, :meth:`leave` before
        sending. A key used before for a different request (another fingerprint) is
        refused: InvalidRequestError on ``idempotency_key``.
        """
        now = _now()
        row = {
            "key": key,
            "fingerprint": fingerprint,
            "platform": platform,
            "outcome": "unknown",
            "answered": False,
            "attempt": 1,
            "request": jsonutil.dumps(request),
            "call": jsonutil.dumps(call) if call is not None else None,
            "claimed_by": self._me,
            "claimed_at": now,
            "updated_at": now,
            "left_at": now if leaving else None,
        }
        while True:
            try:
                with self._claiming.begin() as connection:
                    connection.execute(entries.insert().values(**row))
                return Claimed(key, 1)
            except sa.exc.IntegrityError:
                pass
            existing = self.get(key)
            if existing is None:  # removed meanwhile (never by us): claim afresh
                continue
            if existing.fingerprint != fingerprint:
                raise InvalidRequestError(
                    _FieldError(
                        "idempotency_key",
                        f"{key!r} was already used for a different request or host "
                        f"(to {existing.platform}, {existing.claimed_at:%Y-%m-%d %H:%M:%S} UTC)",
                    )
                )
            if not may_reclaim(existing):
                return Held(existing)
            values = {
                **row,
                "attempt": existing.attempt + 1,
                "result": None,
                "latest": None,
                "tracking_id": None,
                "answered_at": None,
                "note": f"attempt {existing.attempt + 1}; before: {_summary(existing)}",
            }
            del values["key"]
            unchanged = [entries.c.key == key, entries.c.attempt == existing.attempt]
            if existing.never_left:  # and still so: a call that left since is not taken over
                unchanged.append(entries.c.left_at.is_(None))
            with self._claiming.begin() as connection:
                won = connection.execute(
                    entries.update().where(*unchanged).values(**values)
                ).rowcount
            if won == 1:
                return Claimed(key, existing.attempt + 1, existing)
            # Another process re-claimed it first: look again.

    @_database_errors
    def record(
        self,
        claimed: Claimed,
        result: CancelResult,
        *,
        call: dict[str, Any] | None = None,
    ) -> bool:
        """Record the answer of ``claimed``'s send; False if a later claim took the key."""
        values: dict[str, Any] = {
            "outcome": result.outcome,
            "answered": True,
            "result": jsonutil.dumps(result.to_dict()),
            "tracking_id": result.tracking_id,
            "answered_at": _now(),
            "updated_at": _now(),
        }
        if call is not None:
            values["call"] = jsonutil.dumps(call)
        return self._update_own(claimed, values)

    @_database_errors
    def hold(self, claimed: Claimed) -> bool:
        """Mark ``claimed``'s call as held back (waiting for the rate limiter) and not
        left; False: the claim is no longer this sender's (resolved meanwhile).

        While held back, another sender may take the claim over (its sender may have
        died waiting); :meth:`leave` must then succeed before the call goes.
        """
        values = {"left_at": None, "updated_at": _now()}
        return self._update_own(claimed, values, entries.c.answered.is_(False))

    @_database_errors
    def leave(self, claimed: Claimed) -> bool:
        """Mark ``claimed``'s cancel call as leaving now; False: do not send it.

        Called just before the call's bytes go, when the claim was made without
        ``leaving`` or was :meth:`hold`-ed since (after the rate limiter's wait).
        False when the claim is no longer this sender's: another sender took the key
        over while this one waited (it found the claim never left, and its sender dead
        or slow), or it was resolved meanwhile. A compare-and-set on the attempt, and
        the take-over one on ``left_at`` (:meth:`claim`): of the two, exactly one sends.
        Committed durably, as a claim is.
        """
        return self._update_own(
            claimed,
            {"left_at": _now()},
            entries.c.answered.is_(False),
            entries.c.left_at.is_(None),
            durable=True,
        )

    @_database_errors
    def release(self, claimed: Claimed, why: str) -> bool:
        """Nothing was sent after all (it failed before leaving): the key may be claimed again."""
        values = {"outcome": "not_sent", "answered": True, "note": why, "updated_at": _now()}
        return self._update_own(claimed, values)

    @_database_errors
    def annotate(self, claimed: Claimed, note: str) -> bool:
        """Add why a claim's outcome stays unknown (an error after the call may have left)."""
        return self._update_own(claimed, {"note": note, "updated_at": _now()})

    @_database_errors
    def record_status(self, platform: str, tracking_id: str, result: CancelResult) -> int:
        """Record a status answer for the entry that tracking id belongs to; rows changed."""
        with self.engine.begin() as connection:
            return connection.execute(
                entries.update()
                .where(
                    entries.c.platform == platform,
                    entries.c.tracking_id == tracking_id,
                    entries.c.answered.is_(True),  # never a claim still in flight
                )
                .values(
                    outcome=result.outcome,
                    latest=jsonutil.dumps(result.to_dict()),
                    updated_at=_now(),
                )
            ).rowcount

    @_database_errors
    def resolve(
        self, key: str, outcome: Literal["cancelled", "rejected"], note: str
    ) -> LedgerEntry:
        """Settle an entry by hand (a person checked the platform): it will not be sent again
        as an unknown; ``rejected`` means nothing was applied."""
        entry = self.find(key)
        now = _now()
        with self.engine.begin() as connection:
            # A new attempt number: an answer still coming for the old claim (a sender
            # that was not dead after all) can no longer replace the resolution.
            changed = connection.execute(
                entries.update()
                .where(entries.c.key == entry.key, entries.c.attempt == entry.attempt)
                .values(
                    outcome=outcome,
                    answered=True,
                    attempt=entry.attempt + 1,
                    note=note,
                    answered_at=now,
                    updated_at=now,
                )
            ).rowcount
        if changed != 1:
            raise InvalidRequestError(
                _FieldError("key", f"{entry.key!r} changed while being resolved; look again")
            )
        resolved = self.get(entry.key)
        assert resolved is not None
        return resolved

    @_database_errors
    def clear(self) -> None:
        """Forget every entry and job (the sandbox's ledger, when its orders are reset)."""
        with self.engine.begin() as connection:
            connection.execute(job_lines.delete())
            connection.execute(jobs.delete())
            connection.execute(entries.delete())

    def _update_own(
        self,
        claimed: Claimed,
        values: dict[str, Any],
        *also: sa.ColumnElement[bool],
        durable: bool = False,
    ) -> bool:
        """Write ``values`` to ``claimed``'s row if it is still this attempt's (and
        ``also`` holds); ``durable``: committed as a claim is (SQLite FULL)."""
        engine = self._claiming if durable else self.engine
        with engine.begin() as connection:
            changed = connection.execute(
                entries.update()
                .where(entries.c.key == claimed.key, entries.c.attempt == claimed.attempt, *also)
                .values(**values)
            ).rowcount
        return bool(changed == 1)

    # -- reading ------------------------------------------------------------------
    @_database_errors
    def get(self, key: str) -> LedgerEntry | None:
        """The entry of exactly ``key``, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(entries).where(entries.c.key == key)).first()
        return _entry(row) if row is not None else None

    @_database_errors
    def find(self, key: str) -> LedgerEntry:
        """The entry of ``key``, or of the one key that starts with it (as git finds commits).

        InvalidRequestError naming ``key`` when none or several match.
        """
        if not key:
            raise InvalidRequestError(_FieldError("key", "must not be empty"))
        exact = self.get(key)
        if exact is not None:
            return exact
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(entries).where(_starts_with(entries.c.key, key)).limit(2)
            ).all()
        if len(rows) == 1:
            return _entry(rows[0])
        why = "matches several entries; give more of it" if rows else "is not in the ledger"
        raise InvalidRequestError(_FieldError("key", f"{key!r} {why}"))

    def entries(
        self,
        *,
        outcomes: Iterable[str] = (),
        platform: str | None = None,
        job: str | None = None,
        limit: int | None = None,
    ) -> Iterator[LedgerEntry]:
        """Entries, newest claim first, streamed (memory flat in the ledger's size)."""
        query = sa.select(entries).order_by(entries.c.claimed_at.desc(), entries.c.key)
        wanted = tuple(outcomes)
        if wanted:
            query = query.where(entries.c.outcome.in_(wanted))
        if platform:
            query = query.where(entries.c.platform == platform)
        if job:
            keys = sa.select(job_lines.c.key).where(job_lines.c.job_id == job)
            query = query.where(entries.c.key.in_(keys))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=500).execute(query):
                yield _entry(row)

    @_database_errors
    def counts(self, *, job: str | None = None) -> dict[str, int]:
        """How many entries have each outcome (of one job's, when given)."""
        query = sa.select(entries.c.outcome, sa.func.count()).group_by(entries.c.outcome)
        if job:
            keys = sa.select(job_lines.c.key).where(job_lines.c.job_id == job)
            query = query.where(entries.c.key.in_(keys))
        with self.engine.connect() as connection:
            return {outcome: int(n) for outcome, n in connection.execute(query)}

    # -- bulk jobs ------------------------------------------------------------------
    @_database_errors
    def start_job(self, job_id: str, *, source: str, fmt: str, total: int) -> bool:
        """Record a bulk job; False when it is already recorded (a rerun: resume it)."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    jobs.insert().values(
                        id=job_id, source=source, format=fmt, total=total, created_at=_now()
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    @_database_errors
    def drop_job(self, job_id: str) -> None:
        """Forget a job and its list (its input was refused: nothing was sent)."""
        with self.engine.begin() as connection:
            connection.execute(job_lines.delete().where(job_lines.c.job_id == job_id))
            connection.execute(jobs.delete().where(jobs.c.id == job_id))

    @_database_errors
    def set_job_total(self, job_id: str, total: int) -> None:
        """Record how many requests a job has, once its input is checked."""
        with self.engine.begin() as connection:
            connection.execute(jobs.update().where(jobs.c.id == job_id).values(total=total))

    @_database_errors
    def add_job_lines(self, job_id: str, lines: Iterable[JobLine]) -> None:
        """List a job's requests: ``(number, location, platform, key, problem)`` each."""
        batch: list[dict[str, Any]] = []
        for number, location, platform, key, problem in lines:
            batch.append(
                {
                    "job_id": job_id,
                    "number": number,
                    "location": location,
                    "platform": platform,
                    "key": key,
                    "problem": problem,
                }
            )
            if len(batch) >= BATCH:
                self._insert_lines(batch)
                batch = []
        if batch:
            self._insert_lines(batch)

    def _insert_lines(self, batch: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            connection.execute(job_lines.insert(), batch)

    @_database_errors
    def find_job(self, job_id: str) -> dict[str, Any] | None:
        """The record of exactly ``job_id``, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return dict(row._mapping) if row is not None else None

    @_database_errors
    def repeated_keys(self, job_id: str, limit: int) -> list[tuple[str, str, str]]:
        """Requests of a job whose key an earlier one has: ``(key, where, where first)``."""
        first = (
            sa.select(job_lines.c.key, sa.func.min(job_lines.c.number).label("first"))
            .where(job_lines.c.job_id == job_id, job_lines.c.key.is_not(None))
            .group_by(job_lines.c.key)
            .having(sa.func.count() > 1)
            .subquery()
        )
        earlier = job_lines.alias("earlier")
        query = (
            sa.select(job_lines.c.key, job_lines.c.location, earlier.c.location)
            .join(first, job_lines.c.key == first.c.key)
            .join(earlier, sa.and_(earlier.c.job_id == job_id, earlier.c.number == first.c.first))
            .where(job_lines.c.job_id == job_id, job_lines.c.number > first.c.first)
            .order_by(job_lines.c.number)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [(k, where, earliest) for k, where, earliest in connection.execute(query)]

    @_database_errors
    def job(self, job_id: str) -> dict[str, Any]:
        """A job's record (id, source, format, total, created_at); InvalidRequestError if none.

        ``job_id`` may be the start of one job's id.
        """
        if not job_id:
            raise InvalidRequestError(_FieldError("job", "must not be empty"))
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(jobs).where(_starts_with(jobs.c.id, job_id)).order_by(jobs.c.id).limit(2)
            ).all()
        if len(rows) != 1:
            why = "matches several jobs; give more of it" if rows else "is not a bulk job here"
            raise InvalidRequestError(_FieldError("job", f"{job_id!r} {why}"))
        return dict(rows[0]._mapping)

    def job_report(self, job_id: str) -> Iterator[tuple[dict[str, Any], LedgerEntry | None]]:
        """Each request of a job in input order, with its ledger entry (None: not sent)."""
        query = (
            sa.select(job_lines, entries)
            .select_from(job_lines.outerjoin(entries, job_lines.c.key == entries.c.key))
            .where(job_lines.c.job_id == job_id)
            .order_by(job_lines.c.number)
        )
        with self.engine.connect() as connection:
            width = len(_LINE_COLUMNS)
            for row in connection.execution_options(yield_per=500).execute(query):
                line = dict(zip(_LINE_COLUMNS, row[:width], strict=True))
                found = row[width:]
                yield line, (_entry(found) if found[0] is not None else None)


_LINE_COLUMNS = tuple(job_lines.c.keys())


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """``column`` starts with ``prefix``, exactly (case and wildcards alike) on every database:
    LIKE ignores case on SQLite and treats ``%`` and ``_`` as wildcards."""
    return sa.func.substr(column, 1, len(prefix)) == prefix


def _engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL, full sync and a long busy wait."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        # Not echoed: a mistyped URL may still hold a password.
        scheme = url.split(":", 1)[0][:30] if ":" in url else "(none)"
        raise ConfigurationError(
            f"ledger URL (scheme {scheme!r}) is not a database URL such as "
            "sqlite:///path/ledger.sqlite3 or postgresql://user@host/db"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"ledger URL {shown_url(parsed)}: "
            "cancelkit's ledger runs on sqlite:/// or postgresql://"
        )
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ConfigurationError(
                "ledger URL: an in-memory SQLite ledger forgets everything at exit; "
                "name a file (sqlite:///path/ledger.sqlite3)"
            )
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise ConfigurationError(
                f"ledger {database}: cannot create its folder {folder}: {error.strerror or error}"
            ) from None
        try:
            engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as error:
            raise ConfigurationError(
                f"ledger URL {shown_url(parsed)}: its driver is not installed ({error})"
            ) from None
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as error:
        name = getattr(error, "name", None) or "its"
        raise ConfigurationError(
            f"ledger URL {shown_url(parsed)} needs the "
            f"{name} driver: pip install 'cancelkit[postgres]'"
        ) from None


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    # pysqlite's own transaction handling is off: SQLAlchemy's "begin" event says BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    record.info["cancelkit_sync"] = "FULL"


def _sqlite_begin(connection: sa.Connection) -> None:
    options = connection.get_execution_options()
    # Set between transactions (SQLite refuses to change it inside one).
    sync = options.get("cancelkit_sync", "NORMAL")
    if connection.info.get("cancelkit_sync") != sync:
        connection.exec_driver_sql(f"PRAGMA synchronous={sync}")
        connection.info["cancelkit_sync"] = sync
    connection.exec_driver_sql(f"BEGIN {options.get('cancelkit_begin', 'DEFERRED')}")


def _unusable(url: str, error: sa.exc.SQLAlchemyError) -> ConfigurationError:
    shown = shown_url(sa.make_url(url))
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:300]
    kind = ServiceUnavailableError if _is_outage(error) else ConfigurationError
    return kind(f"ledger {shown} cannot be used: {reason}")


#: SQLSTATE classes of a database that is down or overloaded, not misconfigured:
#: connection exceptions, operator intervention (shutting down), insufficient resources.
_OUTAGE_SQLSTATES = ("08", "57", "53")
#: What PostgreSQL's FATAL refusals of a connection say when they are passing (the
#: driver gives no SQLSTATE for a refused connection; a FATAL otherwise names a
#: mistake: no such database, a wrong password).
_PASSING_REFUSALS = ("too many clients", "starting up", "shutting down", "recovery mode")


def _is_outage(error: sa.exc.SQLAlchemyError) -> bool:
    """Whether ``error`` says the database did not answer (a later try may work), rather
    than that the ledger is set up wrong (a bad password, a missing database)."""
    if not isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return False
    state = getattr(error.orig, "sqlstate", None)
    if state is not None:
        return str(state)[:2] in _OUTAGE_SQLSTATES
    text = str(error.orig)
    if "FATAL" in text:  # the server answered, and refused the connection
        return any(passing in text for passing in _PASSING_REFUSALS)
    return True  # never reached (refused, timed out, closed), or SQLite's busy file


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """In UTC: SQLite keeps no zone (we wrote UTC); PostgreSQL answers in the session's."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _json(text: str | None) -> Any:
    return jsonutil.loads(text) if text is not None else None


#: The entry table's columns in order: rows are read by position (a lookup by column
#: object per field cost ~100 us an entry, 10 s to list 100,000).
_ENTRY_COLUMNS = tuple(entries.c.keys())


def _entry(values: Sequence[Any]) -> LedgerEntry:
    """An entry from the entry table's values, in table order."""
    fields = dict(zip(_ENTRY_COLUMNS, values, strict=True))
    claimed_at, updated_at = _aware(fields["claimed_at"]), _aware(fields["updated_at"])
    assert claimed_at is not None and updated_at is not None
    return LedgerEntry(
        key=fields["key"],
        fingerprint=fields["fingerprint"],
        platform=fields["platform"],
        outcome=fields["outcome"],
        answered=bool(fields["answered"]),
        attempt=int(fields["attempt"]),
        request=_json(fields["request"]),
        call=_json(fields["call"]),
        result=_json(fields["result"]),
        latest=_json(fields["latest"]),
        tracking_id=fields["tracking_id"],
        note=fields["note"],
        claimed_by=fields["claimed_by"],
        claimed_at=claimed_at,
        answered_at=_aware(fields["answered_at"]),
        updated_at=updated_at,
        left_at=_aware(fields["left_at"]),
    )


def _summary(entry: LedgerEntry) -> str:
    if entry.never_left:
        return "claimed, never sent"
    if entry.in_flight:
        return "claimed with no answer (outcome unknown)"
    result = entry.result or {}
    codes = ", ".join(str(e.get("code")) for e in result.get("errors", ()) if e.get("code"))
    return entry.outcome + (f" ({codes})" if codes else "")
