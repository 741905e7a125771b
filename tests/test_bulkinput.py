"""The bulk input readers: JSON Lines and CSV into canonical requests, streaming."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import cancelkit
from cancelkit.core.bulkinput import (
    CSV_COLUMNS,
    MAX_LINE_CHARS,
    BulkItem,
    InputProblem,
    detect_format,
    read_items,
)
from cancelkit.core.model import MAX_LINES
from cancelkit.core.schemas import load_request
from cancelkit.errors import InvalidRequestError

HEADER = (
    "platform,order_id,fulfillment_order_id,line_id,quantity,reason,currency,"
    "price,shipping_price,product_id"
)


def jsonl(*lines: str) -> list[BulkItem | InputProblem]:
    return list(read_items(io.StringIO("".join(line + "\n" for line in lines)), "jsonl"))


def csv_items(*rows: str) -> list[BulkItem | InputProblem]:
    return list(read_items(io.StringIO("".join(row + "\r\n" for row in rows)), "csv"))


def only_items(found: list[BulkItem | InputProblem]) -> list[BulkItem]:
    assert all(isinstance(entry, BulkItem) for entry in found), found
    return [entry for entry in found if isinstance(entry, BulkItem)]


# --- detect_format --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders.csv", "csv"),
        ("ORDERS.CSV", "csv"),
        ("orders.jsonl", "jsonl"),
        ("orders.ndjson", "jsonl"),
        ("orders.json", "jsonl"),
        ("-", "jsonl"),
        ("orders.txt", "jsonl"),
        ("orders", "jsonl"),
    ],
)
def test_format_from_the_name(name: str, expected: str) -> None:
    assert detect_format(name) == expected


def test_explicit_format_wins() -> None:
    assert detect_format("orders.csv", "jsonl") == "jsonl"
    assert detect_format("-", "csv") == "csv"


def test_unknown_explicit_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown input format 'xml'"):
        detect_format("orders.xml", "xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown input format"):
        read_items(io.StringIO(""), "xml")  # type: ignore[arg-type]


# --- JSON Lines -----------------------------------------------------------------


def test_jsonl_requests_for_two_platforms() -> None:
    mirakl = {
        "platform": "mirakl",
        "order_id": "O1",
        "currency": "USD",
        "lines": [{"line_id": "L1", "quantity": 1, "price": "15.00"}],
    }
    carriyo = {
        "platform": "carriyo",
        "fulfillment_order_id": "F9",
        "lines": [{"line_id": "L2", "quantity": 2}],
    }
    first, second = only_items(jsonl(json.dumps(mirakl), json.dumps(carriyo)))
    assert first == BulkItem(
        1,
        "line 1",
        "mirakl",
        {
            "order_id": "O1",
            "currency": "USD",
            "lines": [{"line_id": "L1", "quantity": 1, "price": "15.00"}],
        },
    )
    assert second.number == 2
    assert second.where == "line 2"
    assert second.platform == "carriyo"
    assert "platform" not in second.request
    assert second.request["fulfillment_order_id"] == "F9"


def test_jsonl_money_is_read_as_decimal_not_float() -> None:
    (item,) = only_items(
        jsonl('{"platform": "mirakl", "lines": [{"line_id": "L1", "quantity": 1, "price": 0.10}]}')
    )
    price = item.request["lines"][0]["price"]
    assert isinstance(price, Decimal)
    assert str(price) == "0.10"


def test_jsonl_blank_lines_are_skipped_and_count_only_as_lines() -> None:
    found = only_items(
        jsonl(
            "", '{"platform": "a", "lines": []}', "   ", "\t", '{"platform": "b", "lines": []}', ""
        )
    )
    assert [(item.number, item.where, item.platform) for item in found] == [
        (1, "line 2", "a"),
        (2, "line 5", "b"),
    ]


def test_jsonl_crlf_and_missing_final_newline() -> None:
    stream = io.StringIO('{"platform": "a"}\r\n\r\n{"platform": "b"}')
    found = only_items(list(read_items(stream, "jsonl")))
    assert [(item.where, item.platform, item.request) for item in found] == [
        ("line 1", "a", {}),
        ("line 3", "b", {}),
    ]


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ('{"platform": "a", ', "json", "not valid JSON: "),
        ("not json", "json", "not valid JSON: Expecting value (column 1)"),
        ('["platform", "a"]', "json", "must be a JSON object"),
        ('"mirakl"', "json", "must be a JSON object"),
        ("null", "json", "must be a JSON object"),
        ('{"order_id": "O1", "lines": []}', "platform", "missing: each line needs a platform"),
        ('{"platform": 7}', "platform", "must be a string naming a platform"),
        ('{"platform": null}', "platform", "must be a string naming a platform"),
        ('{"platform": ""}', "platform", "must be a string naming a platform"),
        ('{"platform": "  "}', "platform", "must be a string naming a platform"),
        ("[" * 100_000, "json", "not valid JSON: nested deeper than"),
    ],
)
def test_jsonl_problems(line: str, field: str, reason: str) -> None:
    found = jsonl('{"platform": "a"}', line, '{"platform": "b"}')
    assert isinstance(found[0], BulkItem)
    problem = found[1]
    assert isinstance(problem, InputProblem)
    assert (problem.number, problem.where, problem.field) == (2, "line 2", field)
    assert problem.reason.startswith(reason), problem.reason
    assert len(problem.reason) < 200
    # A problem takes a number, and reading goes on after it.
    assert isinstance(found[2], BulkItem)
    assert (found[2].number, found[2].platform) == (3, "b")


class CountingStream(io.TextIOBase):
    """A text stream handing out ``lines`` on demand, counting what it has given."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending = ""
        self.lines_given = 0
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        if not self._pending:
            self._pending = next(self._lines, "")
            if self._pending:
                self.lines_given += 1
        if size is None or size < 0:
            size = len(self._pending)
        piece, self._pending = self._pending[:size], self._pending[size:]
        self.largest_read = max(self.largest_read, len(piece))
        return piece


def test_a_line_longer_than_1_mib_is_a_problem_never_read_whole() -> None:
    huge = '{"platform": "a", "pad": "' + "x" * (3 * MAX_LINE_CHARS) + '"}\n'
    stream = CountingStream(iter(['{"platform": "first"}\n', huge, '{"platform": "after"}\n']))
    found = list(read_items(stream, "jsonl"))  # type: ignore[arg-type]
    assert found[1] == InputProblem(2, "line 2", "json", "longer than 1 MiB")
    assert isinstance(found[2], BulkItem)
    assert (found[2].number, found[2].where, found[2].platform) == (3, "line 3", "after")
    assert stream.largest_read <= MAX_LINE_CHARS + 2


def test_a_line_of_exactly_1_mib_is_read() -> None:
    prefix, suffix = '{"platform": "a", "pad": "', '"}'
    line = prefix + "x" * (MAX_LINE_CHARS - len(prefix) - len(suffix)) + suffix
    assert len(line) == MAX_LINE_CHARS
    for ending in ("\n", "\r\n", ""):
        (item,) = only_items(list(read_items(io.StringIO(line + ending), "jsonl")))
        assert item.platform == "a"
    (problem,) = list(read_items(io.StringIO(line + " \n"), "jsonl"))
    assert problem == InputProblem(1, "line 1", "json", "longer than 1 MiB")


def test_jsonl_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    (item,) = only_items(list(read_items(io.StringIO('\ufeff{"platform": "a"}\n'), "jsonl")))
    assert item.platform == "a"
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"platform": "b"}\n')
    with path.open(encoding="utf-8-sig", newline="") as stream:
        (item,) = only_items(list(read_items(stream, "jsonl")))
    assert item.platform == "b"


def test_jsonl_is_read_lazily() -> None:
    total = 200_000
    stream = CountingStream(
        f'{{"platform": "mirakl", "order_id": "O{n}", "lines": []}}\n' for n in range(total)
    )
    items = read_items(stream, "jsonl")  # type: ignore[arg-type]
    assert stream.lines_given == 0  # nothing is read before the first item is asked for
    first = next(items)
    assert isinstance(first, BulkItem)
    assert first.request["order_id"] == "O0"
    assert stream.lines_given == 1
    for _ in range(999):
        next(items)
    assert stream.lines_given == 1000
    rest = sum(1 for _ in items)
    assert rest == total - 1000
    assert stream.lines_given == total


# --- CSV ------------------------------------------------------------------------


def test_csv_consecutive_rows_form_one_request_with_lines_in_order() -> None:
    found = csv_items(
        HEADER,
        "mirakl,O1,,L1,1,CUSTOMER_REQUEST,USD,15.00,8.00,P1",
        "mirakl,O1,,L2,2,CUSTOMER_REQUEST,USD,30.00,0.00,P2",
        "mirakl,O1,,L3,1,CUSTOMER_REQUEST,USD,5.50,,P3",
        "salesforce,O2,F2,L9,0.5,OUT_OF_STOCK,EUR,,,",
    )
    first, second = only_items(found)
    assert first == BulkItem(
        1,
        "rows 2-4",
        "mirakl",
        {
            "order_id": "O1",
            "reason": "CUSTOMER_REQUEST",
            "currency": "USD",
            "lines": [
                {
                    "line_id": "L1",
                    "quantity": "1",
                    "product_id": "P1",
                    "price": "15.00",
                    "shipping_price": "8.00",
                },
                {
                    "line_id": "L2",
                    "quantity": "2",
                    "product_id": "P2",
                    "price": "30.00",
                    "shipping_price": "0.00",
                },
                {"line_id": "L3", "quantity": "1", "product_id": "P3", "price": "5.50"},
            ],
        },
    )
    assert second == BulkItem(
        2,
        "row 5",
        "salesforce",
        {
            "order_id": "O2",
            "fulfillment_order_id": "F2",
            "reason": "OUT_OF_STOCK",
            "currency": "EUR",
            "lines": [{"line_id": "L9", "quantity": "0.5"}],
        },
    )


@pytest.mark.parametrize(
    ("column", "first", "second"),
    [
        ("platform", "mirakl", "aboutyou"),
        ("order_id", "O1", "O2"),
        ("fulfillment_order_id", "F1", "F2"),
        ("reason", "CUSTOMER_REQUEST", "OUT_OF_STOCK"),
        ("currency", "USD", "EUR"),
        ("platform_reason", "21", "22"),
        ("idempotency_key", "k1", "k2"),
    ],
)
def test_csv_any_key_column_differing_starts_another_request(
    column: str, first: str, second: str
) -> None:
    names = list(dict.fromkeys(["platform", "order_id", "line_id", "quantity", column]))

    def row(line_id: str, value: str) -> str:
        cells = {"platform": "mirakl", "order_id": "O1", "line_id": line_id, "quantity": "1"}
        cells[column] = value
        return ",".join(cells[name] for name in names)

    found = only_items(
        csv_items(",".join(names), row("L1", first), row("L2", first), row("L3", second))
    )
    assert [(item.where, len(item.request["lines"])) for item in found] == [
        ("rows 2-3", 2),
        ("row 4", 1),
    ]
    values = [item.platform if column == "platform" else item.request[column] for item in found]
    assert values == [first, second]


def test_csv_same_key_not_consecutive_is_two_requests() -> None:
    found = only_items(
        csv_items(
            "platform,order_id,line_id,quantity",
            "mirakl,O1,L1,1",
            "mirakl,O2,L2,1",
            "mirakl,O1,L3,1",
        )
    )
    assert [(item.number, item.where, item.request["order_id"]) for item in found] == [
        (1, "row 2", "O1"),
        (2, "row 3", "O2"),
        (3, "row 4", "O1"),
    ]
    assert [line["line_id"] for line in found[2].request["lines"]] == ["L3"]


def test_csv_blank_cells_are_left_out_never_sent_empty() -> None:
    (item,) = only_items(csv_items(HEADER, "carriyo,, F1 ,L1,1, ,,  ,,"))
    assert item.request == {
        "fulfillment_order_id": " F1 ",  # a value that is not blank is kept as read
        "lines": [{"line_id": "L1", "quantity": "1"}],
    }


def test_csv_blank_rows_are_skipped_and_keep_the_request_together() -> None:
    found = only_items(
        csv_items(
            "platform,order_id,line_id,quantity",
            "",
            "mirakl,O1,L1,1",
            ",,,",
            "mirakl,O1,L2,1",
            "",
        )
    )
    assert [(item.where, len(item.request["lines"])) for item in found] == [("rows 3-5", 2)]


def test_csv_columns_in_another_order_and_with_spaces_in_the_header() -> None:
    (item,) = only_items(
        csv_items(
            " quantity , line_id,currency,platform ,order_id",
            "3,L1,USD,mirakl,O1",
            "1,L2,USD,mirakl,O1",
        )
    )
    assert item.platform == "mirakl"
    assert item.request == {
        "order_id": "O1",
        "currency": "USD",
        "lines": [{"line_id": "L1", "quantity": "3"}, {"line_id": "L2", "quantity": "1"}],
    }


def test_csv_quoted_cells_with_commas_and_newlines() -> None:
    (item,) = only_items(csv_items("platform,order_id,line_id,quantity", 'mirakl,"O,1","L\n1",1'))
    assert item.request["order_id"] == "O,1"
    assert item.request["lines"] == [{"line_id": "L\n1", "quantity": "1"}]


def test_csv_byte_order_mark(tmp_path: Path) -> None:
    (item,) = only_items(csv_items("\ufeffplatform,line_id,quantity", "mirakl,L1,1"))
    assert item.platform == "mirakl"
    path = tmp_path / "orders.csv"
    path.write_bytes(b"\xef\xbb\xbfplatform,line_id,quantity\r\nmirakl,L1,1\r\n")
    with path.open(encoding="utf-8-sig", newline="") as stream:
        (item,) = only_items(list(read_items(stream, "csv")))
    assert (item.where, item.platform, item.request) == (
        "row 2",
        "mirakl",
        {"lines": [{"line_id": "L1", "quantity": "1"}]},
    )


def test_csv_unknown_column_is_named_with_the_known_ones() -> None:
    found = csv_items("platform,line_id,quantity,line_reason", "mirakl,L1,1,OTHER")
    assert len(found) == 1
    problem = found[0]
    assert isinstance(problem, InputProblem)
    assert (problem.number, problem.where, problem.field) == (0, "row 1", "header")
    assert problem.reason.startswith("unknown column 'line_reason'; known columns: ")
    for name in (*CSV_COLUMNS, "platform_reason", "idempotency_key"):
        assert name in problem.reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("order_id,line_id,quantity", "missing column platform"),
        ("platform,order_id", "missing columns line_id, quantity"),
        ("platform,line_id", "missing column quantity"),
        ("platform,line_id,quantity,line_id", "column 'line_id' appears twice"),
        ("platform,line_id,quantity,", "column 4 has no name; known columns: "),
        ("", "row 1 must name the columns: "),
    ],
)
def test_csv_header_problems_stop_the_reading(header: str, reason: str) -> None:
    (problem,) = csv_items(header, "mirakl,L1,1", "mirakl,L2,1")
    assert isinstance(problem, InputProblem)
    assert (problem.number, problem.where, problem.field) == (0, "row 1", "header")
    assert problem.reason.startswith(reason), problem.reason


def test_csv_empty_file_is_a_header_problem() -> None:
    assert list(read_items(io.StringIO(""), "csv")) == [
        InputProblem(0, "row 1", "header", "the file is empty; row 1 must name the columns")
    ]


def test_csv_short_or_long_row_is_a_problem_for_that_row() -> None:
    found = csv_items(
        "platform,order_id,line_id,quantity",
        "mirakl,O1,L1,1",
        "mirakl,O1,L2",
        "mirakl,O1,L3,1,extra",
        "mirakl,O1,L4,1",
    )
    assert found == [
        BulkItem(
            1, "row 2", "mirakl", {"order_id": "O1", "lines": [{"line_id": "L1", "quantity": "1"}]}
        ),
        InputProblem(2, "row 3", "row", "has 3 cells; the header has 4"),
        InputProblem(3, "row 4", "row", "has 5 cells; the header has 4"),
        BulkItem(
            4, "row 5", "mirakl", {"order_id": "O1", "lines": [{"line_id": "L4", "quantity": "1"}]}
        ),
    ]


def test_csv_blank_platform_is_a_problem_for_its_request() -> None:
    found = csv_items(
        "platform,order_id,line_id,quantity",
        ",O1,L1,1",
        " ,O1,L2,1",
        "mirakl,O2,L3,1",
    )
    assert found[0] == InputProblem(1, "rows 2-3", "platform", "blank; every row needs a platform")
    assert isinstance(found[1], BulkItem)
    assert (found[1].number, found[1].where) == (2, "row 4")


def test_csv_blank_line_id_or_quantity_is_left_to_the_schema() -> None:
    (item,) = only_items(
        csv_items("platform,order_id,line_id,quantity", "mirakl,O1,L1,", "mirakl,O1,,2")
    )
    assert item.request["lines"] == [{"line_id": "L1"}, {"quantity": "2"}]
    with pytest.raises(InvalidRequestError) as caught:
        load_request(item.request)
    assert {str(error) for error in caught.value.errors} == {
        "lines[0].quantity: required",
        "lines[1].line_id: required",
    }


def test_csv_more_rows_than_a_request_may_have_is_a_problem() -> None:
    rows = ["platform,order_id,line_id,quantity"]
    rows += [f"mirakl,O1,L{n},1" for n in range(MAX_LINES + 1)]
    rows.append("mirakl,O2,L1,1")
    found = csv_items(*rows)
    assert found[0] == InputProblem(
        1,
        f"rows 2-{MAX_LINES + 2}",
        "lines",
        f"{MAX_LINES + 1} rows make one request; at most {MAX_LINES} lines per request",
    )
    assert isinstance(found[1], BulkItem)
    assert found[1].request["order_id"] == "O2"


def test_csv_broken_file_stops_at_the_broken_row() -> None:
    too_big = "x" * 200_000  # past csv's default field size limit
    found = csv_items(
        "platform,order_id,line_id,quantity",
        "mirakl,O1,L1,1",
        f'mirakl,O1,"{too_big}",1',
        "mirakl,O2,L1,1",
    )
    assert len(found) == 2
    assert isinstance(found[0], BulkItem)
    problem = found[1]
    assert isinstance(problem, InputProblem)
    assert (problem.number, problem.where, problem.field) == (2, "row 3", "row")
    assert problem.reason.startswith("not valid CSV (field larger than field limit")
    assert problem.reason.endswith("the file looks broken")


def test_csv_row_longer_than_1_mib_stops_without_being_read_whole() -> None:
    # Quoted cells, each short, each holding a newline: the rest of the file is one row.
    def lines() -> Iterator[str]:
        yield "platform,order_id,line_id,quantity\n"
        yield "mirakl,O1,L1,1\n"
        yield 'mirakl,O1,"L2\n'
        while True:
            yield "y" * 1000 + '","\n'

    stream = CountingStream(lines())
    found = list(read_items(stream, "csv"))  # type: ignore[arg-type]
    assert found[1] == InputProblem(2, "row 3", "row", "longer than 1 MiB; the file looks broken")
    assert len(found) == 2
    assert stream.lines_given < 2 * MAX_LINE_CHARS // 1000


def test_csv_is_read_lazily() -> None:
    def lines() -> Iterator[str]:
        yield "platform,order_id,line_id,quantity\n"
        for n in range(200_000):
            yield f"mirakl,O{n // 2},L{n},1\n"

    stream = CountingStream(lines())
    items = read_items(stream, "csv")  # type: ignore[arg-type]
    first = next(items)
    assert isinstance(first, BulkItem)
    assert first.where == "rows 2-3"
    # The header, the two rows of the request, and the row that showed it had ended.
    assert stream.lines_given == 4
    assert sum(1 for _ in items) == 99_999


def test_csv_requests_pass_the_canonical_loader_and_translate_for_mirakl() -> None:
    (item,) = only_items(
        csv_items(
            "product_id,platform,order_id,reason,currency,line_id,quantity,price,shipping_price",
            "10000,mirakl,0024_COMMERCIAL_ID-A,CUSTOMER_REQUEST,USD,0002_3202630-A-1,1,15.00,8.00",
            "10001,mirakl,0024_COMMERCIAL_ID-A,CUSTOMER_REQUEST,USD,0002_3202630-A-2,2,30.10,0",
        )
    )
    request = load_request(item.request)
    assert request.order_id == "0024_COMMERCIAL_ID-A"
    assert request.currency == "USD"
    assert request.reason == "CUSTOMER_REQUEST"
    assert [
        (line.line_id, line.quantity, line.price, line.shipping_price) for line in request.lines
    ] == [
        ("0002_3202630-A-1", Decimal("1"), Decimal("15.00"), Decimal("8.00")),
        ("0002_3202630-A-2", Decimal("2"), Decimal("30.10"), Decimal("0")),
    ]
    assert [line.product_id for line in request.lines] == ["10000", "10001"]
    # And the platform takes it: amounts reach the wire exactly as they were in the file.
    wire = cancelkit.translate(item.request, item.platform).body_bytes().decode()
    assert '"amount":15.00,"currency":"USD"' in wire
    assert '"amount":30.10,"currency":"USD"' in wire
    assert '"amount":8.00,"currency":"USD"' in wire
