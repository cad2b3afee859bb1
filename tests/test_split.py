"""The big CSV's dry run in two parts, the second read, checked and written by a forked
child: ``split``.

The results lines must be exactly those of the one-process path, whatever the cut (inside
a quoted cell, after a multi-line cell, with a duplicate across it); an error must come
out in its place; the child must never outlive the run (an early close, an interrupt, the
parent killed), and a child killed alone costs only its part's speed.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_dry_run import NAMES, varied_rows

from bulk_import import RunOptions, Summary, run_import, split
from bulk_import.cli import main
from bulk_import.errors import InputFileError
from bulk_import.load import Table, open_table
from bulk_import.models import ResultColumns, ResultLines
from bulk_import.record import _csv_lines
from bulk_import.runner import _interrupting
from bulk_import.validate import Validator


def _no_children() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture(autouse=True)
def _earlier_threads_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The threads this process ran before the test (the suite's servers) count as none:
    the check still sees a thread the test starts, and a run from a thread that is not
    the main one.  The check itself, in a process of its own: ``test_alone_in_a_new_process``."""
    before = set(threading.enumerate())

    def alone() -> bool:
        main = threading.current_thread() is threading.main_thread()
        return main and set(threading.enumerate()) <= before

    monkeypatch.setattr(split, "_alone", alone)


ALONE = """
import threading
from bulk_import import split
assert split._alone()
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
assert not split._alone()
stop.set()
other.join()
assert split._alone()
seen = []
side = threading.Thread(target=lambda: seen.append(split._alone()))
side.start()
side.join()
assert seen == [False]
print("ok")
"""


def test_alone_in_a_new_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ALONE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


@pytest.fixture
def odd_file(tmp_path: Path) -> Path:
    """The varied rows, with blank rows, quoted newlines, NUL bytes (the pipe's separator)
    and a row wider than the header among them."""
    path = tmp_path / "odd.csv"
    rows = varied_rows()
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(NAMES)
        for i, row in enumerate(rows):
            writer.writerow(row)
            if i % 11 == 5:
                writer.writerow([""] * len(NAMES))
            if i % 13 == 3:
                writer.writerow([f"+1212555{i:04d}", "u\nser", "p\x00w", "sip.x.com", "a\x00b"])
            if i == 20:
                writer.writerow([f"+1212556{i:04d}", "u", "p", "sip.x.com", "", "", "", "", "more"])
    return path


def _split(table: Table, validator: Validator | None = None) -> tuple[str, bool]:
    """The results lines ``split.checked`` gives, and whether the child's were taken."""
    parts = list(split.checked(table, validator or Validator()))
    taken = any(isinstance(part, ResultLines) for part in parts)
    return "".join(p.text if isinstance(p, ResultLines) else _csv_lines(p) for p in parts), taken


def _one_process(path: Path, chunk_rows: int = 10_000) -> str:
    validator = Validator()
    with open_table(path, chunk_rows=chunk_rows) as opened:
        return "".join(_csv_lines(validator.check_chunk(c)) for c in opened.chunks())


def _cut_at(monkeypatch: pytest.MonkeyPatch, path: Path, at: int) -> None:
    """Cut ``path`` at the first line that starts after byte ``at``."""
    monkeypatch.setattr(split, "SHARE", (at + 0.5) / path.stat().st_size)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text(",".join(NAMES) + "\n" + "".join(lines), encoding="utf-8")
    return path


def _line(i: int, phone: str | None = None) -> str:
    return f'{phone or f"+1415{i:07d}"},user,"pa,ss",sip.telnyx.com,friend {i},,,+1650{i:07d}\n'


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_the_results_are_the_one_process_ones(odd_file: Path, chunk_rows: int) -> None:
    expected = _one_process(odd_file, chunk_rows)
    with open_table(odd_file, chunk_rows=chunk_rows) as opened:
        got, _taken = _split(opened)
    assert got == expected
    assert "has 9 cells" in expected  # the wide row
    assert _no_children()


def test_the_childs_lines_are_taken_on_a_plain_split(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.csv", [_line(i) for i in range(3000)])
    with open_table(path, chunk_rows=100) as opened:
        got, taken = _split(opened)
    assert taken
    assert got == _one_process(path)
    assert got.count("\n") == 3000
    assert _no_children()


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_duplicate_across_the_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """First in the first part, then twice in the second: both name the first part's row
    (the child's own first row for it is a duplicate too).  A duplicate within the
    second part alone names the second part's row, and the child's lines stay."""
    lines = [_line(i) for i in range(400)]
    if where == "before":
        lines[310] = lines[350] = _line(310, "+14150000007")  # row 9's number (i = 7)
    else:
        lines[310] = lines[350] = _line(310, "+14150000300")  # row 302's (i = 300)
    path = _write(tmp_path / "dup.csv", lines)
    _cut_at(monkeypatch, path, len(",".join(NAMES)) + 1 + sum(map(len, lines[:200])))
    with open_table(path, chunk_rows=50) as opened:
        got, taken = _split(opened)
    assert got == _one_process(path)
    first = 9 if where == "before" else 302
    assert got.count(f"duplicate of row {first}") == 2
    assert taken is (where == "after")
    assert _no_children()


def test_a_cut_inside_a_quoted_cell_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cut lands on the line a quoted cell's newline starts: the reader there is inside
    the cell, so the child's lines (read from outside it) are not taken."""
    lines = [_line(i) for i in range(400)]
    lines[200] = '+14159990000,user,"pa\nss",sip.telnyx.com,two lines,,,\n'
    path = _write(tmp_path / "quoted.csv", lines)
    header = len(",".join(NAMES)) + 1
    inside = header + sum(map(len, lines[:200])) + lines[200].index("\n")
    _cut_at(monkeypatch, path, inside - 1)
    fd = os.open(path, os.O_RDONLY)
    try:
        where = split.cut(fd, path.stat().st_size)
    finally:
        os.close(fd)
    assert where is not None
    assert where.start == inside + 1  # the line after the cell's newline
    with open_table(path, chunk_rows=64) as opened:
        got, taken = _split(opened)
    assert not taken
    assert got == _one_process(path)
    assert "202,+14159990000,valid" in got
    assert _no_children()


def test_a_multi_line_cell_before_the_cut_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child numbers its rows from the lines before the cut: a record of two lines
    there makes its row numbers one too many, so its lines are not taken."""
    lines = [_line(i) for i in range(400)]
    lines[20] = '+14159990000,user,"pa\nss",sip.telnyx.com,two lines,,,\n'
    path = _write(tmp_path / "early.csv", lines)
    _cut_at(monkeypatch, path, len(",".join(NAMES)) + 1 + sum(map(len, lines[:200])))
    with open_table(path, chunk_rows=64) as opened:
        got, taken = _split(opened)
    assert not taken
    assert got == _one_process(path)
    assert got.splitlines()[-1].startswith("401,")
    assert _no_children()


def test_windows_line_ends_and_lone_carriage_returns_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [_line(i).replace("\n", "\r\n" if i % 3 else "\r") for i in range(400)]
    path = _write(tmp_path / "crlf.csv", lines)
    _cut_at(monkeypatch, path, len(",".join(NAMES)) + 1 + sum(map(len, lines[:200])) + 3)
    with open_table(path, chunk_rows=64) as opened:
        got, taken = _split(opened)
    assert taken
    assert got == _one_process(path)
    assert got.count("\n") == 400


def test_an_error_in_the_childs_part_is_raised_in_its_place(tmp_path: Path) -> None:
    path = _write(tmp_path / "open-quote.csv", [_line(i) for i in range(300)] + ['"+1'])
    with open_table(path, chunk_rows=7) as opened, pytest.raises(InputFileError) as expected:
        list(opened.chunks())
    with open_table(path, chunk_rows=7) as opened:
        parts: list[object] = []
        with pytest.raises(InputFileError) as got:
            parts.extend(split.checked(opened, Validator()))
    assert str(got.value) == str(expected.value)
    assert type(got.value) is type(expected.value)
    assert _no_children()


def test_a_row_problem_in_the_childs_part(tmp_path: Path) -> None:
    lines = [_line(i) for i in range(300)]
    lines[250] = "+14159990000,u,p,sip.x.com,,,,,more\n"  # wider than the header
    path = _write(tmp_path / "wide.csv", lines)
    with open_table(path, chunk_rows=7) as opened:
        got, taken = _split(opened)
    assert taken
    assert got == _one_process(path)
    assert '252,+14159990000,invalid,,,0,"has 9 cells' in got


def test_records_the_csv_reader_refuses_on_both_sides(tmp_path: Path) -> None:
    """A record the csv reader refuses takes its line (on either side of the cut), so the
    split holds and each is its row's problem."""
    lines = [_line(i) for i in range(300)]
    lines[40] = lines[250] = '"+14159990000"x,u,p,sip.x.com,,,,\n'
    path = _write(tmp_path / "stray.csv", lines)
    with open_table(path, chunk_rows=7) as opened:
        got, taken = _split(opened)
    assert taken
    assert got == _one_process(path)
    assert got.count("text after its closing quote") == 2


@pytest.mark.parametrize("kind", ["bom", "cp1252", "bad-byte", "title-rows"])
def test_encodings_and_header_rows(tmp_path: Path, kind: str) -> None:
    """UTF-8 with a BOM (read as UTF-8 past the cut), Windows-1252, UTF-8 with a stray
    byte (its rows invalid, on both sides of the cut), a header below title rows."""
    lines = [_line(i).replace("friend", "Café") for i in range(400)]
    header = ",".join(NAMES) + "\n"
    if kind == "title-rows":
        header = "Numbers for March\n\n" + header
    data = (header + "".join(lines)).encode("cp1252" if kind == "cp1252" else "utf-8")
    if kind == "bom":
        data = codecs.BOM_UTF8 + data
    if kind == "bad-byte":
        data = data.replace(b"Caf\xc3\xa9 30,", b"Caf\xe9 30,").replace(
            b"Caf\xc3\xa9 300,", b"Caf\xe9 300,"
        )
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(data)
    with open_table(path, chunk_rows=64) as opened:
        got, taken = _split(opened)
    assert taken
    assert got == _one_process(path)
    assert got.count("\n") == 400
    if kind == "bad-byte":
        assert got.count("not UTF-8") == 2
    if kind == "title-rows":
        assert got.startswith("4,+14150000000,valid")


def test_closing_early_stops_the_child(odd_file: Path) -> None:
    with open_table(odd_file, chunk_rows=1) as opened:
        stream = split.checked(opened, Validator())
        next(stream)
        stream.close()
    assert _no_children()


def test_cli_results_are_the_one_process_ones(
    odd_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dry_run(out: Path) -> bytes:
        args = ["run", str(odd_file), "--dry-run", "--no-progress", "--output", str(out)]
        assert main(args) == 1
        return out.read_bytes()

    one = dry_run(tmp_path / "one.csv")
    forked: list[int] = []
    real = split.checked

    def counted(table: Table, validator: Validator) -> Iterator[ResultColumns | ResultLines]:
        forked.append(1)
        return real(table, validator)

    monkeypatch.setattr(split, "SPLIT_BYTES", 0)
    monkeypatch.setattr(split, "checked", counted)
    assert dry_run(tmp_path / "two.csv") == one
    assert forked
    assert _no_children()


def test_the_size_threshold(odd_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = odd_file.stat().st_size
    with open_table(odd_file) as opened:
        monkeypatch.setattr(split, "SPLIT_BYTES", size + 1)  # just under: one process
        assert not split.worth_it(opened)
        monkeypatch.setattr(split, "SPLIT_BYTES", size)  # at it (and over): split
        assert split.worth_it(opened)


def test_big_quoted_files_are_split_and_plain_ones_not(
    odd_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split, "SPLIT_BYTES", 1000)
    plain = tmp_path / "plain.csv"
    plain.write_text("phoneNumber,trunkUsername\n" + "+14155550100,u\n" * 100)
    with open_table(odd_file) as opened:
        assert split.worth_it(opened)  # quoted cells: the stdlib reader's
    with open_table(plain) as opened:
        assert not split.worth_it(opened)  # pandas' (csvfast): cheap to read
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(odd_file.read_text(encoding="utf-8"), encoding="utf-16")
    with open_table(utf16) as opened:
        assert not split.worth_it(opened)  # "\n" is not a byte of its own


CHILD_RUN = """
import sys
from bulk_import import split
from bulk_import.cli import main
split.SPLIT_BYTES = 0
sys.exit(main(["run", sys.argv[1], "--dry-run", "--no-progress", "--output", sys.argv[2]]))
"""


def _children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _forked_children(run: subprocess.Popen[Any]) -> list[int]:
    """The children of ``run`` once it has forked its reader (within 20 s)."""
    deadline = time.monotonic() + 20
    children: list[int] = []
    while not children and time.monotonic() < deadline and run.poll() is None:
        children = _children_of(run.pid)
        time.sleep(0.01)
    assert children, "the dry run never forked its reader"
    return children


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # a zombie does no more: its parent (init) reaps it


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_stopped_dry_run_leaves_no_child(tmp_path: Path, stop: signal.Signals) -> None:
    path = tmp_path / "big.csv"
    line = '+1415{:07d},user,"pa,ss",sip.telnyx.com,friend,,,+1650{:07d}\n'  # quoted: forks
    with path.open("w") as f:
        f.write(",".join(NAMES) + "\n")
        f.writelines(line.format(i, i) for i in range(600_000))
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as err:
        run = subprocess.Popen(
            [sys.executable, "-c", CHILD_RUN, str(path), str(tmp_path / "out.csv")],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    children = _forked_children(run)
    run.send_signal(stop)
    run.wait(timeout=20)
    deadline = time.monotonic() + 10
    while not all(map(_gone, children)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(map(_gone, children))
    assert not (tmp_path / "out.csv").exists()  # no half-written results file
    if stop != signal.SIGKILL:
        assert run.returncode == 130
        assert "Traceback" not in errors.read_text()


def test_not_with_another_thread_running(odd_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split, "SPLIT_BYTES", 0)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    with open_table(odd_file) as opened:
        assert split.worth_it(opened)
        other.start()
        try:
            assert not split.worth_it(opened)  # a fork would copy its locks, held
        finally:
            stop.set()
            other.join()
        assert split.worth_it(opened)


def test_a_dry_run_from_a_thread_stays_in_one_process(
    odd_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split, "SPLIT_BYTES", 0)
    forks: list[int] = []
    real = os.fork

    def fork() -> int:
        forks.append(1)
        return real()

    monkeypatch.setattr(os, "fork", fork)
    opts = RunOptions(file=odd_file, dry_run=True, output=tmp_path / "thread.csv")
    summaries: list[Summary] = []
    thread = threading.Thread(target=lambda: summaries.append(run_import(opts)))
    thread.start()
    thread.join()
    assert summaries
    assert summaries[0].rows
    assert not forks
    one = tmp_path / "one.csv"
    assert main(["run", str(odd_file), "--dry-run", "--no-progress", "--output", str(one)]) == 1
    assert forks  # the main thread alone: forked
    assert (tmp_path / "thread.csv").read_bytes() == one.read_bytes()


def _kill_all(pids: list[int]) -> None:
    """A test that failed may leave a child: stop it (only ours, by pid)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)


@pytest.mark.parametrize("how", ["delivered", "tripped"])
def test_a_signal_just_after_the_fork_stops_the_child(
    odd_file: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A stop signal as ``os.fork`` returns in this process, before its pid is kept:
    sent to this thread ("delivered": held by the blocked mask until the pid is kept), or
    a handler already due ("tripped": another thread took the signal; ``held`` waits)."""
    forked: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            forked.append(pid)
            if how == "delivered":
                signal.raise_signal(signal.SIGTERM)
            else:
                handler = signal.getsignal(signal.SIGTERM)
                assert callable(handler)
                handler(signal.SIGTERM, None)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    try:
        with (
            _interrupting(True),
            open_table(odd_file) as opened,
            pytest.raises(KeyboardInterrupt, match="SIGTERM"),
        ):
            next(split.checked(opened, Validator()))
        assert forked
        assert _no_children()  # killed and reaped
    finally:
        _kill_all(forked)


CHILD_SIGNALLED = """
import os, signal, sys
from bulk_import import split
from bulk_import.cli import main
split.SPLIT_BYTES = 0
fork = os.fork

def signalled_fork():
    pid = fork()
    if pid == 0:  # the child, before it has its own handlers
        os.kill(os.getpid(), signal.SIGTERM)
    return pid

os.fork = signalled_fork
sys.exit(main(["run", sys.argv[1], "--dry-run", "--no-progress", "--output", sys.argv[2]]))
"""


def test_a_signal_to_the_child_before_its_handlers_are_set_is_an_interrupt(
    odd_file: Path, tmp_path: Path
) -> None:
    """Never this process's handler run in the child (it would unwind this process's
    stack there: remove its temporary file, print "interrupted", exit 130 itself)."""
    out = tmp_path / "out.csv"
    out.write_text("the earlier results\n")
    done = subprocess.run(
        [sys.executable, "-c", CHILD_SIGNALLED, str(odd_file), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.count("interrupted") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_text() == "the earlier results\n"
    assert not list(tmp_path.glob(".out.csv*"))


def _quoted_file(path: Path, rows: int) -> Path:
    line = '+1415{:07d},user,"pa,ss",sip.telnyx.com,friend,,,+1650{:07d}\n'  # quoted: forks
    with path.open("w") as f:
        f.write(",".join(NAMES) + "\n")
        f.writelines(line.format(i, i) for i in range(rows))
    return path


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL, signal.SIGINT])
def test_a_child_stopped_alone(tmp_path: Path, stop: signal.Signals) -> None:
    """A group's signal may reach the child first: a stop signal's death is an interrupt;
    after SIGKILL's (the OOM killer) this process reads the second part itself, and
    SIGINT does nothing to the child."""
    path = _quoted_file(tmp_path / "big.csv", 20_000)
    expected = _one_process(path, 1000)
    with open_table(path, chunk_rows=1000) as opened:
        stream = split.checked(opened, Validator())
        parts: list[ResultColumns | ResultLines] = [next(stream)]
        (child,) = _children_of(os.getpid())
        os.kill(child, stop)
        if stop in (signal.SIGTERM, signal.SIGHUP):
            with pytest.raises(KeyboardInterrupt, match=stop.name):
                list(stream)
        else:
            parts.extend(stream)
            got = "".join(p.text if isinstance(p, ResultLines) else _csv_lines(p) for p in parts)
            assert got == expected
            taken = any(isinstance(part, ResultLines) for part in parts)
            assert taken is (stop == signal.SIGINT)
    assert _no_children()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_whole_group_is_an_interrupt(tmp_path: Path, stop: signal.Signals) -> None:
    path = _quoted_file(tmp_path / "big.csv", 600_000)
    out = tmp_path / "out.csv"
    out.write_text("the earlier results\n")
    run = subprocess.Popen(
        [sys.executable, "-c", CHILD_RUN, str(path), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a terminal's or a service's
    )
    children = _forked_children(run)
    os.killpg(run.pid, stop)
    _out, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert out.read_text() == "the earlier results\n"
    assert not list(tmp_path.glob(".out.csv*"))
    assert all(map(_gone, children))
