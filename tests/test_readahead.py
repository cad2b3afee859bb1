"""The big CSV's dry run read (and partly checked) in a forked child: ``readahead``.

The chunks, the column checks and the results file must be exactly those of the one-process
path; an error of the reading must come out in its place; the child must never outlive
the run (an early close, an interrupt, the parent killed).
"""

from __future__ import annotations

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

from bulk_import import RunOptions, Summary, readahead, run_import
from bulk_import.cli import main
from bulk_import.errors import InputFileError, MissingColumnsError
from bulk_import.load import Table, open_table
from bulk_import.models import Chunk
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

    monkeypatch.setattr(readahead, "_alone", alone)


ALONE = """
import threading
from bulk_import import readahead
assert readahead._alone()
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
assert not readahead._alone()
stop.set()
other.join()
assert readahead._alone()
seen = []
side = threading.Thread(target=lambda: seen.append(readahead._alone()))
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


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_chunks_and_checks_are_the_one_process_ones(odd_file: Path, chunk_rows: int) -> None:
    with open_table(odd_file, chunk_rows=chunk_rows) as opened:
        expected = list(opened.chunks())
        got = list(readahead.chunks(opened))
    assert got == expected
    assert any(chunk.problems for chunk in expected)  # the wide row
    assert any("\x00" in c for chunk in expected for c in chunk.cells["trunkPassword"])
    one, two = Validator(), Validator()
    for chunk, same in zip(got, expected, strict=True):
        assert two.check_chunk(chunk) == one.check_chunk(same)
    assert _no_children()


def test_an_error_of_the_reading_is_raised_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "open-quote.csv"
    good = "+14155550100,u,p,sip.x.com\n" * 30
    path.write_text("phoneNumber,trunkUsername,trunkPassword,terminationSipURI\n" + good + '"+1')
    with open_table(path, chunk_rows=7) as opened:
        with pytest.raises(InputFileError) as expected:
            list(opened.chunks())
        seen: list[Chunk] = []

        def read_ahead() -> None:
            seen.extend(readahead.chunks(opened))

        with pytest.raises(InputFileError) as got:
            read_ahead()
    assert str(got.value) == str(expected.value)
    assert type(got.value) is type(expected.value)
    assert sum(len(c.rows) for c in seen) == 28  # the chunks before the error came through
    assert _no_children()


def test_an_error_that_does_not_pickle_comes_as_its_text(
    odd_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: Table) -> Iterator[Chunk]:
        raise MissingColumnsError(["phoneNumber"], ["phone"])  # its __init__: 2 lists

    monkeypatch.setattr(Table, "chunks", refused)
    with open_table(odd_file) as opened, pytest.raises(InputFileError) as got:
        next(readahead.chunks(opened))
    assert str(MissingColumnsError(["phoneNumber"], ["phone"])) in str(got.value)
    assert _no_children()


def test_closing_early_stops_the_child(odd_file: Path) -> None:
    with open_table(odd_file, chunk_rows=1) as opened:
        stream = readahead.chunks(opened)
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
    real = readahead.chunks

    def counted(table: Table) -> Iterator[Chunk]:
        forked.append(1)
        return real(table)

    monkeypatch.setattr(readahead, "READ_AHEAD_BYTES", 0)
    monkeypatch.setattr(readahead, "chunks", counted)
    assert dry_run(tmp_path / "two.csv") == one
    assert forked
    assert _no_children()


def test_small_files_are_read_in_this_process(odd_file: Path) -> None:
    with open_table(odd_file) as opened:
        assert not readahead.worth_it(opened)


def test_big_quoted_files_are_read_ahead_and_plain_ones_not(
    odd_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readahead, "READ_AHEAD_BYTES", 1000)
    plain = tmp_path / "plain.csv"
    plain.write_text("phoneNumber,trunkUsername\n" + "+14155550100,u\n" * 100)
    with open_table(odd_file) as opened:
        assert readahead.worth_it(opened)  # quoted cells: the stdlib reader's
    with open_table(plain) as opened:
        assert not readahead.worth_it(opened)  # pandas' (csvfast): cheap to read


CHILD_RUN = """
import sys
from bulk_import import readahead
from bulk_import.cli import main
readahead.READ_AHEAD_BYTES = 0
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
    monkeypatch.setattr(readahead, "READ_AHEAD_BYTES", 0)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    with open_table(odd_file) as opened:
        assert readahead.worth_it(opened)
        other.start()
        try:
            assert not readahead.worth_it(opened)  # a fork would copy its locks, held
        finally:
            stop.set()
            other.join()
        assert readahead.worth_it(opened)


def test_a_dry_run_from_a_thread_stays_in_one_process(
    odd_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readahead, "READ_AHEAD_BYTES", 0)
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
            next(readahead.chunks(opened))
        assert forked
        assert _no_children()  # killed and reaped
    finally:
        _kill_all(forked)


CHILD_SIGNALLED = """
import os, signal, sys
from bulk_import import readahead
from bulk_import.cli import main
readahead.READ_AHEAD_BYTES = 0
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
    """A group's signal may reach the child first: a stop signal's death is an interrupt,
    SIGKILL's (the OOM killer) an error, and SIGINT does nothing to it."""
    path = _quoted_file(tmp_path / "big.csv", 100_000)  # more than the pipe holds
    with open_table(path) as opened:
        stream = readahead.chunks(opened)
        rows = len(next(stream).rows)
        (child,) = _children_of(os.getpid())
        os.kill(child, stop)
        if stop == signal.SIGINT:
            rows += sum(len(chunk.rows) for chunk in stream)
            assert rows == 100_000
        elif stop == signal.SIGKILL:
            with pytest.raises(InputFileError, match="stopped before the end"):
                list(stream)
        else:
            with pytest.raises(KeyboardInterrupt, match=stop.name):
                list(stream)
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
