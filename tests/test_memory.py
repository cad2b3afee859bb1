"""What a sending run keeps per row: numbers for duplicates (compact), nothing else.

The benchmark ``memory`` (benchmarks/README.md) measures the whole process; these pin the
two structures that used to grow with the rows: ``Validator``'s index of numbers (now a
``FirstRows`` in a sending run) and the count of requests per row (now only rows in flight).
"""

from __future__ import annotations

import asyncio
import csv
import math
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from bulk_import import runner
from bulk_import.firstrows import FirstRows
from bulk_import.ledger import Journal
from bulk_import.load import Table, open_table
from bulk_import.models import Job, RawRow, RowResult, Status
from bulk_import.progress import Progress
from bulk_import.ratelimit import RateLimiter, _Times
from bulk_import.record import ResultsWriter, RunLog
from bulk_import.runner import CUT, RunOptions, run_import
from bulk_import.sandbox import SandboxServer
from bulk_import.validate import Validator

from support import HEADER, PASSWORD, number, read_results

# -- FirstRows ---------------------------------------------------------------------------

ODD_TEXTS = ["", "+", "abc", "+0123", "+123", "+1" + "2" * 19, "+1٢٣٤٥٦٧٨", "1415555"]


@pytest.mark.parametrize("buffer", [1, 2, 3, 7, 4096])
def test_first_rows_answers_as_a_dict_does(buffer: int) -> None:
    rng = random.Random(buffer)
    pool = [number(rng.randrange(10**6)) for _ in range(400)] + ODD_TEXTS
    index, reference = FirstRows(buffer=buffer), dict[str, int]()
    for row in range(2, 3000):
        text = rng.choice(pool)
        assert index.setdefault(text, row) == reference.setdefault(text, row), (text, row)
    assert len(index) == len(reference)
    for text, first in reference.items():  # every number, wherever it is kept, is found
        assert index.setdefault(text, -1) == first


def test_first_rows_keeps_numbers_apart_that_read_alike() -> None:
    index = FirstRows(buffer=1)
    texts = ["+123", "+0123", "123", "+00123", "+1230", "+12"]
    for row, text in enumerate(texts, start=2):
        assert index.setdefault(text, row) == row  # each is new
    for row, text in enumerate(texts, start=2):
        assert index.setdefault(text, 99) == row
    assert len(index) == len(texts)


def test_first_rows_holds_a_number_in_a_few_bytes() -> None:
    numbers = [number(i * 7919 % 10**7) for i in range(20_000)]  # strings made beforehand
    rows = list(range(2, len(numbers) + 2))
    tracemalloc.start()
    try:
        index = FirstRows()
        for text, row in zip(numbers, rows, strict=True):
            index.setdefault(text, row)
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == len(numbers)
    # 16 bytes a number in the sorted runs, plus the buffer of recent ones (a dict[str, int]
    # took about 130 bytes a number).
    assert held / len(numbers) < 40, held


# -- the validator with it -----------------------------------------------------------------


def test_a_validator_finds_the_same_duplicates_with_first_rows() -> None:
    rng = random.Random(5)
    good = {
        "trunkUsername": "alice",
        "trunkPassword": PASSWORD,
        "terminationSipURI": "sip.telnyx.com",
    }
    raws = []
    for row in range(2, 1500):
        values = {
            **good,
            "phoneNumber": rng.choice([number(rng.randrange(300)), "+1 415 555 0001"]),
        }
        if row % 97 == 0:
            del values["terminationSipURI"]  # a bad row still claims its number
        raws.append(RawRow(row, values))
    plain, compact = Validator(), Validator(seen=FirstRows(buffer=3))
    for raw in raws:
        expected, got = plain.check(raw), compact.check(raw)
        assert type(got) is type(expected)
        if isinstance(expected, RowResult):
            assert got == expected
    assert any("duplicate of row" in str(getattr(plain.check(r), "error", "")) for r in raws)


def test_a_sending_run_reports_duplicates_far_apart(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[FirstRows] = []

    def small() -> FirstRows:  # a tiny buffer: the numbers are merged into runs many times
        made.append(FirstRows(buffer=2))
        return made[-1]

    monkeypatch.setattr(runner, "FirstRows", small)
    path = tmp_path / "numbers.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(40):
            writer.writerow([number(i), "u", PASSWORD, "sip.telnyx.com", "", ""])
        writer.writerow([number(3), "u", PASSWORD, "sip.telnyx.com", "", ""])  # row 42
        writer.writerow(["+1 (415) 500-0037", "u", PASSWORD, "sip.telnyx.com", "", ""])  # 43
    key = sandbox.config.api_key
    summary = run_import(RunOptions(file=path, api_key=key, base_url=sandbox.url, concurrency=4))
    assert len(made) == 1
    assert len(made[0]) == 40
    rows = {r["row"]: r for r in read_results(tmp_path / "numbers.results.csv")}
    assert rows["42"]["error"] == "phoneNumber: duplicate of row 5"
    assert rows["43"]["error"] == "phoneNumber: duplicate of row 39"
    assert summary.counts["imported"] == 40
    assert summary.counts["invalid"] == 2


def test_a_dry_run_keeps_a_plain_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> FirstRows:
        raise AssertionError("a dry run's column-wise checks use a dict")

    monkeypatch.setattr(runner, "FirstRows", refuse)
    path = tmp_path / "numbers.csv"
    path.write_text(
        ",".join(HEADER) + "\n" + f"{number(1)},u,{PASSWORD},sip.telnyx.com,,\n", "utf-8"
    )
    assert run_import(RunOptions(file=path, dry_run=True)).counts["valid"] == 1


# -- requests per row, for a row cut in flight -----------------------------------------------


def test_the_requests_of_a_row_are_forgotten_once_it_is_done(tmp_path: Path) -> None:
    results = tmp_path / "out.csv"
    opts = RunOptions(file=tmp_path / "in.csv", output=results)
    with (
        Journal(tmp_path / "out.csv.journal", resume=False) as journal,
        ResultsWriter(results) as writer,
        RunLog(None) as log,
        Progress(None, enabled=False) as progress,
    ):
        run = runner._Run(opts, journal, writer, log, progress, say=lambda _t: None)
        done, cut = Job(2, number=number(2)), Job(3, number=number(3))
        jobs = run.jobs([done, cut])
        assert next(jobs) is done
        assert next(jobs) is cut
        for job in (done, cut, cut):
            run.sending(job)
        run.on_result(RowResult(2, number(2), Status.IMPORTED, http_status=201, attempts=1))
        assert dict(run.sent) == {3: 2}  # only the row still in flight
        run.not_attempted(jobs, "not sent")
        assert not run.sent
        got = {r.row: r for r in journal.results_in_order()}
    assert got[3].status is Status.FAILED
    assert got[3].error == CUT
    assert got[3].attempts == 2


# -- the rate limiter ----------------------------------------------------------------------


def test_the_limiter_keeps_a_grant_time_in_a_few_bytes() -> None:
    # A fast run's grants of the last MAX_PAUSE seconds are every request it sent: each
    # is kept as a C double, not a float object in a deque (about 32 bytes a grant).
    now = [0.0]

    def clock() -> float:
        now[0] += 1 / 3000  # a new float each call, as time.monotonic gives
        return now[0]

    async def never(_seconds: float) -> None:
        raise AssertionError("an unlimited limiter does not sleep")

    lim = RateLimiter(None, clock=clock, sleep=never)
    n = 50_000

    async def go() -> None:
        for _ in range(n):
            await lim.acquire()

    tracemalloc.start()
    try:
        asyncio.run(go())
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / n < 16, held


def test_grant_times_are_dropped_and_counted_from_the_newest() -> None:
    times = _Times()
    for i in range(10_000):
        times.append(float(i))
        times.drop_before(i - 99.5)  # keeps the last 100 (compacting now and then)
    assert len(times) == 100
    assert list(reversed(times)) == [float(i) for i in range(9_999, 9_899, -1)]
    times.drop_before(math.inf)
    assert len(times) == 0
    assert list(reversed(times)) == []


# -- the chunk a sending run reads -----------------------------------------------------------


def test_a_sending_run_reads_smaller_chunks_than_the_dry_run(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    opened = open_table

    def spy(*args: Any, **kwargs: Any) -> Table:
        table = opened(*args, **kwargs)
        asked.append(table.chunk_rows)
        return table

    monkeypatch.setattr(runner, "open_table", spy)
    monkeypatch.setattr(runner, "SEND_CHUNK_ROWS", 3)  # a duplicate three chunks apart
    path = tmp_path / "numbers.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(10):
            writer.writerow([number(i), "u", PASSWORD, "sip.telnyx.com", "", ""])
        writer.writerow([number(1), "u", PASSWORD, "sip.telnyx.com", "", ""])  # row 12
    key = sandbox.config.api_key
    summary = run_import(RunOptions(file=path, api_key=key, base_url=sandbox.url, concurrency=4))
    assert asked == [3]
    assert summary.counts["imported"] == 10
    rows = {r["row"]: r for r in read_results(tmp_path / "numbers.results.csv")}
    assert rows["12"]["error"] == "phoneNumber: duplicate of row 3"
    assert [int(r) for r in rows] == list(range(2, 13))
    run_import(RunOptions(file=path, dry_run=True, output=tmp_path / "dry.csv"))
    assert asked == [3, Table.chunk_rows]
