"""The streaming input readers of ``cancelkit bulk FILE``: JSON Lines and CSV.

Each reader turns a text stream into canonical request JSON, one
:class:`BulkItem` per request, or an :class:`InputProblem` where the input
cannot become one. Only what belongs to the file format is judged here (JSON
syntax, the ``platform`` field, the CSV header and cell counts); the request
itself is judged later by :func:`cancelkit.core.schemas.load_request`, exactly as
a request given any other way.

Memory stays flat whatever the size of the input: nothing is read ahead, and an
item is yielded as soon as it is complete.

JSON Lines
    One canonical request object per line, with one more field, ``platform``
    (the platform it goes to); the item's request is the object without it.
    Blank lines are skipped. A line longer than :data:`MAX_LINE_CHARS`
    characters is a problem, and is never held in memory whole: it is read in
    bounded pieces and skipped to its end.

CSV
    A header row naming the columns (any order; ``platform``, ``line_id`` and
    ``quantity`` are required, the others in :data:`CSV_COLUMNS` optional), then
    one row per order line. Rows with the same platform, order, fulfillment
    order, reason, currency, platform reason and idempotency key form one
    request, whose ``lines`` are those rows in row order. Only *consecutive*
    rows are grouped, so at most one request is held at a time: an exported
    file is sorted by order, and a row whose key differs from the one before
    starts a new request (the same key further down the file is another
    request). Blank cells are left out of the request, never sent as ``""``;
    quantities and amounts stay the strings read (the schema reads them as
    ``Decimal``, never through ``float``). Rows where every cell is blank are
    skipped and do not end a request. A group of more than
    :data:`~cancelkit.core.model.MAX_LINES` rows is a problem and its rows are
    not kept, and a single row (quoted newlines included) longer than
    :data:`MAX_LINE_CHARS` characters stops the reading, so memory stays
    bounded for CSV too.

Either format may start with a UTF-8 byte order mark. Open files with
``encoding="utf-8-sig", newline=""`` (``newline=""`` keeps newlines inside
quoted CSV cells intact); a mark left in the text is skipped as well.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from . import jsonutil
from .model import MAX_LINES

Format = Literal["jsonl", "csv"]

#: The formats :func:`read_items` reads.
FORMATS: tuple[Format, ...] = ("jsonl", "csv")

#: A JSON line, or a CSV row, longer than this many characters is refused (1 MiB).
MAX_LINE_CHARS = 1_048_576

#: The columns of a request: rows that agree on all of them form one request.
CSV_KEY_COLUMNS: tuple[str, ...] = (
    "platform",
    "order_id",
    "fulfillment_order_id",
    "reason",
    "currency",
    "platform_reason",
    "idempotency_key",
)
#: The columns of one order line (one row).
CSV_LINE_COLUMNS: tuple[str, ...] = ("line_id", "quantity", "product_id", "price", "shipping_price")
#: Every column a CSV file may have.
CSV_COLUMNS: tuple[str, ...] = CSV_KEY_COLUMNS + CSV_LINE_COLUMNS
#: The columns a CSV header must name.
CSV_REQUIRED_COLUMNS: tuple[str, ...] = ("platform", "line_id", "quantity")

_BOM = "\ufeff"
#: How much of an over-long JSON line is read at a time while skipping it.
_SKIP_CHUNK = 65_536


@dataclass(frozen=True)
class BulkItem:
    """One request read from the input, ready for ``load_request``."""

    #: 1-based position of the request in the input (problems count too).
    number: int
    #: Where it was read: ``"line 7"`` (JSON Lines) or ``"rows 2-4"`` / ``"row 2"``
    #: (CSV, where row 1 is the header).
    where: str
    #: The platform it goes to.
    platform: str
    #: The canonical request JSON, without ``platform``.
    request: dict[str, Any]


@dataclass(frozen=True)
class InputProblem:
    """Why part of the input cannot become a request (or, number 0, why none can)."""

    #: The item number it would have had, or 0 for a problem with the CSV header.
    number: int
    #: Where it is, as in :attr:`BulkItem.where`.
    where: str
    #: What is wrong: ``"json"``, ``"platform"``, ``"header"``, ``"row"`` or ``"lines"``.
    field: str
    #: Why, e.g. ``"must be a string naming a platform"``.
    reason: str


def detect_format(name: str, explicit: Format | None = None) -> Format:
    """The format of the input called ``name`` (a path, or ``"-"`` for stdin).

    ``explicit`` wins when given. Otherwise a name ending in ``.csv`` (any case)
    is CSV and everything else (``.jsonl``, ``.ndjson``, ``.json``, ``-``, any
    other name) is JSON Lines. Raises ``ValueError`` only for an ``explicit``
    value that is not a format.
    """
    if explicit is not None:
        if explicit not in FORMATS:
            raise ValueError(f"unknown input format {explicit!r}; known: {', '.join(FORMATS)}")
        return explicit
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def read_items(stream: TextIO, fmt: Format) -> Iterator[BulkItem | InputProblem]:
    """Yield each request (or the problem that stops it being one), in input order.

    Reads ``stream`` lazily with ``readline(limit)``; nothing is read before it is
    needed. See the module docstring for both formats.
    """
    if fmt == "jsonl":
        return _read_jsonl(stream)
    if fmt == "csv":
        return _read_csv(stream)
    raise ValueError(f"unknown input format {fmt!r}; known: {', '.join(FORMATS)}")


# --- JSON Lines ---------------------------------------------------------------


def _read_jsonl(stream: TextIO) -> Iterator[BulkItem | InputProblem]:
    number = 0
    line_number = 0
    while True:
        # One more than the limit plus "\r\n": a longer line comes back cut short.
        line = stream.readline(MAX_LINE_CHARS + 2)
        if not line:
            return
        line_number += 1
        ended = line.endswith("\n")
        text = _without_newline(line)
        if line_number == 1:
            text = text.removeprefix(_BOM)
        if len(text) > MAX_LINE_CHARS:
            if not ended:
                _skip_rest_of_line(stream)
            number += 1
            yield InputProblem(number, f"line {line_number}", "json", "longer than 1 MiB")
            continue
        if not text.strip():
            continue
        number += 1
        yield _jsonl_item(text, number, f"line {line_number}")


def _without_newline(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def _skip_rest_of_line(stream: TextIO) -> None:
    while True:
        piece = stream.readline(_SKIP_CHUNK)
        if not piece or piece.endswith("\n"):
            return


def _jsonl_item(text: str, number: int, where: str) -> BulkItem | InputProblem:
    try:
        value = jsonutil.loads(text)
    except ValueError as error:
        return InputProblem(number, where, "json", _json_error(error))
    if not isinstance(value, dict):
        return InputProblem(number, where, "json", "must be a JSON object")
    if "platform" not in value:
        return InputProblem(number, where, "platform", "missing: each line needs a platform")
    platform = value["platform"]
    if not isinstance(platform, str) or not platform.strip():
        return InputProblem(number, where, "platform", "must be a string naming a platform")
    request = {key: item for key, item in value.items() if key != "platform"}
    return BulkItem(number, where, platform, request)


def _json_error(error: ValueError) -> str:
    if isinstance(error, jsonutil.NestingError):  # its path can be long: keep the reason
        return f"not valid JSON: {error.reason}"
    message = getattr(error, "msg", None)  # simplejson.JSONDecodeError
    column = getattr(error, "colno", None)
    if isinstance(message, str) and isinstance(column, int):
        return f"not valid JSON: {message} (column {column})"
    return f"not valid JSON: {error}"


# --- CSV ----------------------------------------------------------------------


class _RowTooLong(Exception):
    """A CSV row runs past :data:`MAX_LINE_CHARS` characters."""


class _BoundedLines:
    """The lines of ``stream`` for ``csv.reader``, refusing a row longer than the limit.

    ``csv.reader`` takes one line at a time and stops at the end of a row, so the
    characters fed since :meth:`new_row` are those of the row being read.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._first = True
        self._used = 0

    def new_row(self) -> None:
        self._used = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        # The row's own "\r\n" does not count against the limit.
        limit = MAX_LINE_CHARS + 2
        line = self._stream.readline(limit - self._used + 1)
        if not line:
            raise StopIteration
        if self._first:
            self._first = False
            line = line.removeprefix(_BOM)
        self._used += len(line)
        if self._used > limit:
            raise _RowTooLong
        return line


@dataclass
class _Group:
    """The request being gathered from consecutive rows with the same key."""

    key: tuple[str, ...]
    first_row: int
    last_row: int
    lines: list[dict[str, str]] = field(default_factory=list)
    rows: int = 0

    def add(self, row_number: int, line: dict[str, str]) -> None:
        self.last_row = row_number
        self.rows += 1
        if self.rows <= MAX_LINES:  # past the limit the request is refused: keep nothing
            self.lines.append(line)


def _rows(first: int, last: int) -> str:
    return f"row {first}" if first == last else f"rows {first}-{last}"


def _header_problem(names: list[str]) -> str | None:
    known = ", ".join(CSV_COLUMNS)
    if not any(names):
        return f"row 1 must name the columns: {known}"
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            return f"column {position} has no name; known columns: {known}"
        if name not in CSV_COLUMNS:
            return f"unknown column {name!r}; known columns: {known}"
        if name in seen:
            return f"column {name!r} appears twice"
        seen.add(name)
    missing = [name for name in CSV_REQUIRED_COLUMNS if name not in seen]
    if missing:
        return f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    return None


def _read_csv(stream: TextIO) -> Iterator[BulkItem | InputProblem]:
    lines = _BoundedLines(stream)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except _RowTooLong:
        yield InputProblem(0, "row 1", "header", "longer than 1 MiB")
        return
    except csv.Error as error:
        yield InputProblem(0, "row 1", "header", f"not valid CSV: {error}")
        return
    if header is None:
        yield InputProblem(0, "row 1", "header", "the file is empty; row 1 must name the columns")
        return
    names = [name.strip() for name in header]
    problem = _header_problem(names)
    if problem is not None:
        yield InputProblem(0, "row 1", "header", problem)
        return
    column = {name: position for position, name in enumerate(names)}
    key_columns = [(name, column.get(name)) for name in CSV_KEY_COLUMNS]
    line_columns = [(name, column.get(name)) for name in CSV_LINE_COLUMNS]

    number = 0
    row_number = 1
    group: _Group | None = None
    while True:
        lines.new_row()
        try:
            row = next(reader, None)
        except (csv.Error, _RowTooLong) as error:
            # Row boundaries can no longer be trusted: the file is broken, so stop.
            if group is not None:
                number += 1
                yield _finish(group, number)
            number += 1
            reason = (
                "longer than 1 MiB; the file looks broken"
                if isinstance(error, _RowTooLong)
                else f"not valid CSV ({error}); the file looks broken"
            )
            yield InputProblem(number, f"row {row_number + 1}", "row", reason)
            return
        if row is None:
            break
        row_number += 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            if group is not None:
                number += 1
                yield _finish(group, number)
                group = None
            number += 1
            yield InputProblem(
                number,
                f"row {row_number}",
                "row",
                f"has {len(row)} cells; the header has {len(names)}",
            )
            continue
        key = tuple(_cell(row, position) for _, position in key_columns)
        line = {
            name: row[position]
            for name, position in line_columns
            if position is not None and row[position].strip()
        }
        if group is not None and group.key != key:
            number += 1
            yield _finish(group, number)
            group = None
        if group is None:
            group = _Group(key, row_number, row_number)
        group.add(row_number, line)
    if group is not None:
        number += 1
        yield _finish(group, number)


def _cell(row: list[str], position: int | None) -> str:
    """The cell's text, or ``""`` for a blank cell or a column the file lacks."""
    if position is None or not row[position].strip():
        return ""
    return row[position]


def _finish(group: _Group, number: int) -> BulkItem | InputProblem:
    where = _rows(group.first_row, group.last_row)
    if group.rows > MAX_LINES:
        return InputProblem(
            number,
            where,
            "lines",
            f"{group.rows} rows make one request; at most {MAX_LINES} lines per request",
        )
    values = dict(zip(CSV_KEY_COLUMNS, group.key, strict=True))
    platform = values.pop("platform")
    if not platform:
        return InputProblem(number, where, "platform", "blank; every row needs a platform")
    request: dict[str, Any] = {name: value for name, value in values.items() if value}
    request["lines"] = group.lines
    return BulkItem(number, where, platform, request)
