"""A stop signal held back over the lines that make a file and keep its name: ``interrupts``.

The windows are hit on purpose: a signal is raised at this process right after
``mkstemp`` has made the temporary file (before the caller can know its name), which is
where a SIGTERM to a dry run sometimes landed and left ``.x.results.csv.*.tmp`` behind.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bulk_import import interrupts
from bulk_import.cli import main
from bulk_import.models import ResultColumns
from bulk_import.record import write_results_columns
from bulk_import.runner import _interrupting
from bulk_import.sheets import XlsxResults

from support import write_numbers


@pytest.fixture
def on_term() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, interrupts.interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_in_a_held_block_is_raised_as_it_ends(on_term: None) -> None:
    ran: list[str] = []

    def block() -> None:
        with interrupts.held():
            signal.raise_signal(signal.SIGTERM)
            ran.append("the rest of the block")

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        block()
    assert ran == ["the rest of the block"]


def test_outside_a_held_block_it_is_raised_at_once(on_term: None) -> None:
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        signal.raise_signal(signal.SIGTERM)
    with interrupts.held():  # nothing left noted from before
        pass


def test_nested_blocks_raise_at_the_outer_end(on_term: None) -> None:
    ran: list[str] = []

    def blocks() -> None:
        with interrupts.held():
            with interrupts.held():
                signal.raise_signal(signal.SIGTERM)
            ran.append("after the inner block")

    with pytest.raises(KeyboardInterrupt):
        blocks()
    assert ran == ["after the inner block"]


def test_another_thread_holds_nothing_back(on_term: None) -> None:
    depths: list[int] = []

    def inside() -> None:
        with interrupts.held():
            depths.append(interrupts._depth)

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join()
    assert depths == [0]


def _signalled_after_mkstemp(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``mkstemp`` that makes its file, then gets a SIGTERM before it returns."""
    made: list[str] = []
    real: Callable[..., tuple[int, str]] = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)
        made.append(name)
        signal.raise_signal(signal.SIGTERM)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return made


def _columns(n: int) -> ResultColumns:
    return ResultColumns(
        list(range(2, n + 2)), ["+14155550100"] * n, ["valid"] * n, [""] * n, [""] * n,
        [0] * n, [""] * n,
    )  # fmt: skip


def test_a_signal_as_the_results_file_is_made_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "x.results.csv"
    results.write_text("the earlier results\n")
    made = _signalled_after_mkstemp(monkeypatch)
    with _interrupting(True), pytest.raises(KeyboardInterrupt):
        write_results_columns(results, iter([_columns(3)]))
    assert made  # the window was hit
    assert not list(tmp_path.glob("*.tmp"))
    assert results.read_text() == "the earlier results\n"


def test_a_signal_as_the_results_workbook_is_made_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _signalled_after_mkstemp(monkeypatch)
    with _interrupting(True), pytest.raises(KeyboardInterrupt):
        XlsxResults(tmp_path / "x.results.xlsx")
    assert made
    assert not list(tmp_path.glob("*.tmp"))


def test_a_dry_run_signalled_as_its_results_file_is_made_exits_130_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "n.csv"
    write_numbers(path, 20)
    results = tmp_path / "n.results.csv"
    results.write_text("the earlier results\n")
    made = _signalled_after_mkstemp(monkeypatch)
    assert main(["run", str(path), "--dry-run", "--no-progress"]) == 130
    assert made
    assert "interrupted" in capsys.readouterr().err
    assert not list(tmp_path.glob(".n.results.csv*"))
    assert results.read_text() == "the earlier results\n"
    assert not list(tmp_path.glob("*.lock"))
