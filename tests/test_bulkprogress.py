"""The progress display of ``cancelkit bulk``: plain lines, live bar, counts, ETA."""

from __future__ import annotations

import io
import subprocess
import sys
import threading

import pytest

from cancelkit.core.bulkprogress import OUTCOMES, BulkProgress, escape_control, format_eta


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def plain(total: int | None, every: float = 10.0) -> tuple[BulkProgress, io.StringIO, FakeClock]:
    stream = io.StringIO()
    clock = FakeClock()
    progress = BulkProgress(total, stream=stream, live=False, every=every, clock=clock)
    return progress, stream, clock


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_plain_lines_only_every_interval_and_once_at_close() -> None:
    progress, stream, clock = plain(100)
    for _ in range(5):
        progress.done("cancelled")
        clock.advance(1.0)
    assert stream.getvalue() == ""  # 5 s in: nothing yet
    clock.advance(5.0)  # 10 s since the start
    progress.done("cancelled")
    assert len(lines(stream)) == 1
    for _ in range(9):  # 9 more seconds: still the one line
        clock.advance(1.0)
        progress.done("cancelled")
    assert len(lines(stream)) == 1
    clock.advance(1.0)  # 10 s since that line
    progress.done("rejected")
    assert len(lines(stream)) == 2
    progress.close()
    assert len(lines(stream)) == 3
    assert lines(stream)[-1].startswith("bulk: 16/100 (16%) cancelled 15, rejected 1; ")
    progress.close()  # idempotent: no second final line
    progress.done("cancelled")  # after close: counted, not shown
    assert len(lines(stream)) == 3
    assert progress.counts == {"cancelled": 16, "rejected": 1}


def test_line_is_not_written_without_done_calls() -> None:
    progress, stream, clock = plain(10)
    clock.advance(60.0)
    assert stream.getvalue() == ""
    progress.done("accepted")
    assert lines(stream) == ["bulk: 1/10 (10%) accepted 1; 0.0/s, ETA 9m00s"]


def test_outcomes_shown_in_fixed_order_only_once_seen() -> None:
    progress, _, _ = plain(5000)
    assert progress.summary() == "bulk: 0/5000 (0%)"
    progress.done("already", 10)
    progress.done("rejected", 40)
    progress.done("cancelled", 1100)
    progress.done("unknown", 0)  # seen, at 0
    progress.done("accepted", 50)
    assert progress.counts == {
        "cancelled": 1100,
        "accepted": 50,
        "rejected": 40,
        "unknown": 0,
        "already": 10,
    }
    assert list(progress.counts) == [o for o in OUTCOMES if o in progress.counts]
    assert progress.summary() == (
        "bulk: 1200/5000 (24%) cancelled 1100, accepted 50, rejected 40, unknown 0, already sent 10"
    )
    progress.done("partial")
    progress.done("invalid", 2)
    assert progress.summary().endswith(
        "rejected 40, partial 1, unknown 0, already sent 10, invalid 2"
    )


def test_counts_is_a_copy() -> None:
    progress, _, _ = plain(3)
    progress.done("cancelled")
    progress.counts["cancelled"] = 99
    assert progress.counts == {"cancelled": 1}


def test_unknown_outcome_is_refused() -> None:
    progress, _, _ = plain(3)
    with pytest.raises(ValueError, match="unknown outcome 'done'"):
        progress.done("done")
    assert progress.counts == {}
    assert progress.summary() == "bulk: 0/3 (0%)"


def test_percentage_rate_and_eta() -> None:
    progress, _, clock = plain(200)
    clock.advance(10.0)
    assert progress.summary() == "bulk: 0/200 (0%); 0.0/s"  # no ETA before one is done
    progress.done("cancelled", 50)
    assert progress.summary() == "bulk: 50/200 (25%) cancelled 50; 5.0/s, ETA 30s"
    progress.done("cancelled", 149)  # 99.5% shows as 99%, not 100%
    # 0.05 s left shows as 1s: "ETA 0s" would read as finished.
    assert progress.summary() == "bulk: 199/200 (99%) cancelled 199; 19.9/s, ETA 1s"
    progress.done("rejected")
    # All done: no ETA.
    assert progress.summary() == "bulk: 200/200 (100%) cancelled 199, rejected 1; 20.0/s"


def test_eta_of_the_brief_example() -> None:
    progress, _, clock = plain(5000)
    progress.done("cancelled", 1100)
    progress.done("accepted", 50)
    progress.done("rejected", 40)
    progress.done("already", 10)
    clock.advance(1200 / 41.2)
    assert progress.summary() == (
        "bulk: 1200/5000 (24%) cancelled 1100, accepted 50, rejected 40, already sent 10; "
        "41.2/s, ETA 1m32s"
    )


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (45, "45s"),
        (59.6, "1m00s"),
        (92, "1m32s"),
        (65, "1m05s"),
        (3599, "59m59s"),
        (2 * 3600 + 3 * 60 + 20, "2h03m"),
        (100 * 3600, "100h00m"),
    ],
)
def test_format_eta(seconds: float, shown: str) -> None:
    assert format_eta(seconds) == shown


def test_unknown_total_has_no_percentage_and_no_eta() -> None:
    progress, stream, clock = plain(None)
    clock.advance(4.0)
    progress.done("cancelled", 30)
    progress.done("invalid", 2)
    assert progress.summary() == "bulk: 32/? cancelled 30, invalid 2; 8.0/s"
    progress.close()
    assert lines(stream) == ["bulk: 32/? cancelled 30, invalid 2; 8.0/s"]


def test_zero_total() -> None:
    progress, stream, _ = plain(0)
    progress.close()
    assert lines(stream) == ["bulk: 0/0 (100%)"]


@pytest.mark.parametrize("live", [False, True])
def test_quiet_prints_nothing(live: bool) -> None:
    stream = io.StringIO()
    clock = FakeClock()
    with BulkProgress(10, stream=stream, live=live, quiet=True, every=0, clock=clock) as progress:
        for _ in range(10):
            clock.advance(5.0)
            progress.done("cancelled")
        progress.note("hello")
    assert stream.getvalue() == ""
    assert not progress.live
    assert progress.counts == {"cancelled": 10}  # still counted for the caller
    assert progress.summary().startswith("bulk: 10/10 (100%) cancelled 10; ")


def test_note_is_its_own_line_with_control_characters_escaped() -> None:
    progress, stream, _ = plain(10)
    progress.note("platform says: \x1b[2J\x1b[Hgone\r\nnext\ttab\x7f\x9b6n ok ü")
    assert lines(stream) == [
        "platform says: \\x1b[2J\\x1b[Hgone\\x0d\\x0anext\\x09tab\\x7f\\x9b6n ok ü"
    ]
    assert "\x1b" not in stream.getvalue()


def test_escape_control_leaves_printable_text() -> None:
    text = "order 42 / line 7: «refused» (€15.00) \\x1b"
    assert escape_control(text) == text
    assert escape_control("".join(map(chr, range(0x20)))) == "".join(
        f"\\x{code:02x}" for code in range(0x20)
    )


def test_done_from_many_threads_counts_exactly() -> None:
    progress, stream, _ = plain(80_000, every=0.0)  # a line on every call: most contention
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        outcome = OUTCOMES[index % 2]
        start.wait()
        for _ in range(10_000):
            progress.done(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert progress.counts == {"cancelled": 40_000, "accepted": 40_000}
    assert progress.summary().startswith("bulk: 80000/80000 (100%) cancelled 40000, accepted 40000")
    # Each line was written whole (output is under the same lock as the counts).
    assert len(lines(stream)) == 80_000
    assert all(line.startswith("bulk: ") for line in lines(stream))


def test_live_bar_writes_to_the_stream_and_close_is_idempotent() -> None:
    stream = io.StringIO()
    clock = FakeClock()
    progress = BulkProgress(50, stream=stream, live=True, clock=clock)
    assert progress.live
    for index in range(50):
        clock.advance(0.05)
        progress.done("rejected" if index % 10 == 0 else "cancelled")
    progress.note("a note \x1b[1A")
    progress.close()
    out = stream.getvalue()
    final = out.split("\r")[-1]
    assert "50/50" in final
    assert "cancelled 45, rejected 5" in final
    assert "req" in final
    assert "a note \\x1b[1A\n" in out
    assert "\x1b[1A" not in out.replace("\\x1b[1A", "")  # only tqdm's own cursor moves
    assert out.endswith("\n")  # the bar is left in place, ended by a newline
    progress.close()
    assert stream.getvalue() == out
    assert progress.counts == {"cancelled": 45, "rejected": 5}
    assert progress.summary() == "bulk: 50/50 (100%) cancelled 45, rejected 5; 20.0/s"


def test_live_defaults_to_whether_the_stream_is_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    assert not BulkProgress(1, stream=io.StringIO()).live
    with BulkProgress(1, stream=Terminal()) as progress:
        assert progress.live
    monkeypatch.setenv("TERM", "dumb")
    assert not BulkProgress(1, stream=Terminal()).live


def test_stream_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with BulkProgress(2, live=False) as progress:
        progress.done("cancelled", 2)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("bulk: 2/2 (100%) cancelled 2")


def test_importing_the_module_does_not_import_tqdm() -> None:
    code = (
        "import cancelkit.core.bulkprogress as b, io, sys\n"
        "p = b.BulkProgress(3, stream=io.StringIO(), live=False)\n"
        "p.done('cancelled'); p.note('x'); p.close()\n"
        "print('tqdm' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
