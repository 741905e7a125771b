"""The ledger's tables and the ordered steps that build them (schema versions).

One row in ``cancelkit_schema`` holds the version a database is at; :func:`migrate`
applies each later step in order, in one transaction that holds the database's
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two
processes opening a new ledger at once cannot both build it. A database newer than
this cancelkit is refused, never altered. A new step is appended to :data:`STEPS`;
a published step is never edited: a step that changes a table must alter it with
explicit DDL, and the earlier step that created it keeps creating the old shape
(copy that table's old definition into the earlier step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ...errors import ConfigurationError
from .location import shown_url

metadata = sa.MetaData()

schema_version = sa.Table(
    "cancelkit_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)


def _entries_version_1() -> list[sa.Column[Any] | sa.Index]:
    """The entry table's columns and indexes as schema version 1 made them: frozen (a
    later change adds to :data:`entries` and writes its own step)."""
    return [
        # The primary key is the atomic claim: a second INSERT of a key fails.
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        # cancelled | accepted | rejected | partial | unknown (claimed, no answer yet) |
        # not_sent (released: the claim ended before anything left).
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False, default=False),
        # Bumped by every claim of the key; an answer is recorded only by its own attempt.
        sa.Column("attempt", sa.Integer, nullable=False, default=1),
        sa.Column("request", sa.Text, nullable=False),  # canonical request JSON
        sa.Column("call", sa.Text),  # translated call JSON, secrets masked
        sa.Column("result", sa.Text),  # the send's canonical result JSON
        sa.Column("latest", sa.Text),  # the latest status result JSON (asynchronous platforms)
        sa.Column("tracking_id", sa.Text),
        sa.Column("note", sa.Text),  # how it was resolved, or why the claim was released
        sa.Column("claimed_by", sa.Text, nullable=False),  # host and pid
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("cancelkit_ledger_tracking", "platform", "tracking_id"),
        sa.Index("cancelkit_ledger_outcome", "outcome"),
    ]


#: One row per key: claimed before the call leaves, answered when it comes back.
entries = sa.Table(
    "cancelkit_ledger",
    metadata,
    *_entries_version_1(),
    # Version 3: when this attempt's cancel call was about to leave (after the rate
    # limiter and the token, just before its bytes). NULL: it never left, so a claim
    # whose sender died may be sent by another sender.
    sa.Column("left_at", sa.DateTime(timezone=True)),
)

#: One row per ``cancelkit bulk`` input: its id is the hash of the input's bytes.
jobs = sa.Table(
    "cancelkit_job",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

#: One row per request of a job, in input order: where it was, and its ledger key.
job_lines = sa.Table(
    "cancelkit_job_line",
    metadata,
    sa.Column("job_id", sa.Text, sa.ForeignKey("cancelkit_job.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("key", sa.Text),  # None: the input there was refused
    sa.Column("problem", sa.Text),
)


def _step_1(connection: sa.Connection) -> None:
    """The ledger of sends (with its indexes), as version 1 built it."""
    sa.Table(entries.name, sa.MetaData(), *_entries_version_1()).create(connection)


def _step_2(connection: sa.Connection) -> None:
    """Bulk jobs and their lines."""
    jobs.create(connection)
    job_lines.create(connection)


def _step_3(connection: sa.Connection) -> None:
    """``left_at``: when the cancel call left. Every claim made before this step counts as
    having left (its call may have gone out): such a claim stays unknown, never resent."""
    kind = entries.c.left_at.type.compile(dialect=connection.dialect)
    connection.execute(sa.text(f"ALTER TABLE {entries.name} ADD COLUMN left_at {kind}"))
    connection.execute(sa.update(entries).values(left_at=entries.c.claimed_at))


#: Step n builds version n from version n - 1.
STEPS: tuple[Callable[[sa.Connection], None], ...] = (_step_1, _step_2, _step_3)
LATEST = len(STEPS)


def current_version(connection: sa.Connection) -> int:
    """The version ``connection``'s database is at (0: no ledger yet)."""
    if not sa.inspect(connection).has_table(schema_version.name):
        return 0
    return int(connection.execute(sa.select(schema_version.c.version)).scalar_one_or_none() or 0)


def migrate(engine: sa.Engine, *, target: int = LATEST) -> int:
    """Bring the database up to ``target`` (default: the latest); returns the version.

    Cheap when nothing is to do (one read). Raises ConfigurationError for a database
    written by a newer cancelkit.
    """
    with engine.connect() as connection:
        version = current_version(connection)
    _refuse_newer(engine, version)
    if version >= target:
        return version
    immediate = engine.connect().execution_options(cancelkit_begin="IMMEDIATE")
    with immediate as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(73617261)"))
        version = current_version(connection)  # another process may have been first
        _refuse_newer(engine, version)
        if version == 0:
            schema_version.create(connection)
            connection.execute(schema_version.insert().values(version=0))
        for number in range(version + 1, target + 1):
            STEPS[number - 1](connection)
            connection.execute(schema_version.update().values(version=number))
            version = number
    return version


def _refuse_newer(engine: sa.Engine, version: int) -> None:
    if version > LATEST:
        raise ConfigurationError(
            f"ledger {shown_url(engine.url)} is at schema version "
            f"{version}, newer than this cancelkit knows ({LATEST}): upgrade cancelkit"
        )
