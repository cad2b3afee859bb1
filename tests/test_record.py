"""record: defusing, the results file, the journal (resume, in-doubt), the summary."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import pytest

from bulk_import.ledger import Journal
from bulk_import.models import DONE_STATUSES, Job, RowResult, Status
from bulk_import.payloads import ImportRequest
from bulk_import.record import (
    RESULT_COLUMNS,
    ResultsWriter,
    RunLog,
    Summary,
    defuse,
    read_results_csv,
    write_summary_json,
)


def job(row: int, phone: str) -> Job:
    return Job(
        row,
        ImportRequest.model_validate(
            {
                "phoneNumber": phone,
                "trunkUsername": "u",
                "trunkPassword": "pw-secret",
                "terminationSipURI": "sip.telnyx.com",
            }
        ),
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("@cmd", "'@cmd"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd", "'-2+3+cmd"),
        ("\t=1", "'\t=1"),
        ("+14155552671", "+14155552671"),
        ("-12.5", "-12.5"),
        ("1e5", "1e5"),
        ("plain text", "plain text"),
        ("'quoted", "''quoted"),  # so that reading it back (guard.unguard) gives it again
        ("", ""),
    ],
)
def test_defuse(cell: str, expected: str) -> None:
    assert defuse(cell) == expected


def test_results_writer_appends_then_finalizes_in_row_order(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    writer = ResultsWriter(path)
    writer.append(RowResult(5, "+14155550005", Status.IMPORTED, "+14155550005", 201, 1))
    writer.append(RowResult(2, "=1+1", Status.INVALID, error="phoneNumber: bad"))
    # Appended rows are on disk before the run ends (a killed run keeps them).
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(RESULT_COLUMNS)
    assert lines[1].startswith("5,+14155550005,imported")
    writer.finalize(
        [
            RowResult(2, "=1+1", Status.INVALID, error="phoneNumber: bad"),
            RowResult(5, "+14155550005", Status.IMPORTED, "+14155550005", 201, 1),
        ]
    )
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == ["2", "5"]
    assert rows[0]["phone_number"] == "'=1+1"
    assert rows[0]["http_status"] == ""
    assert rows[1]["http_status"] == "201"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_read_results_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        ",".join(RESULT_COLUMNS) + "\n"
        "2,+14155550002,imported,+14155550002,201,1,\n"
        "3,+14155550003,already_exists,,409,1,exists\n"
        "4,+1415555"
    )
    got = list(read_results_csv(path))
    assert [(r.row, r.status) for r in got] == [(2, Status.IMPORTED), (3, Status.ALREADY_EXISTS)]


def test_done_statuses_match_the_journal_sql() -> None:
    # The journal moves done rows with an IN (...) list built from DONE_STATUSES.
    from bulk_import.ledger import _DONE_SQL

    assert {s.value for s in DONE_STATUSES} == {
        "imported",
        "already_exists",
        "updated",
        "unchanged",
        "deleted",
        "restored",
    }
    assert sorted(_DONE_SQL.replace("'", "").split(", ")) == sorted(s.value for s in DONE_STATUSES)


def test_journal_resume_carries_done_rows_and_in_doubt_marks(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    first = Journal(path, resume=False)
    a, b, c = job(2, "+14155550002"), job(3, "+14155550003"), job(4, "+14155550004")
    for j in (a, b, c):
        first.sending(j)
    first.record(RowResult(2, a.phone_number, Status.IMPORTED, a.phone_number, 201, 1))
    first.record(RowResult(3, b.phone_number, Status.FAILED, "", 422, 1, "bad"))
    # c was sent and its answer lost: the process dies here (no close()).
    del first

    second = Journal(path, resume=True)
    assert second.in_doubt(c)  # sent, never answered
    assert not second.in_doubt(b)  # answered 422: definitive
    assert not second.in_doubt(a)
    earlier = second.done_before(a.phone_number, row=7)
    assert earlier is not None
    assert (earlier.row, earlier.status) == (7, Status.IMPORTED)
    assert second.done_before(b.phone_number, row=3) is None
    assert list(second.results_in_order()) == []  # this run starts empty
    second.close()

    fresh = Journal(path, resume=False)
    assert not fresh.in_doubt(c)
    assert fresh.done_before(a.phone_number, row=2) is None
    fresh.close()


def test_journal_doubt_marked_in_this_run_does_not_count_until_next_run(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", resume=False)
    a = job(2, "+14155550002")
    journal.sending(a)
    # A clean 409 after our own first POST must not be mistaken for our lost create.
    assert not journal.in_doubt(a)
    journal.close()


def test_journal_import_previous_from_results_csv(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", resume=True)
    journal.import_previous(
        [
            RowResult(2, "+14155550002", Status.UPDATED, "+14155550002", 200, 2),
            RowResult(3, "+14155550003", Status.FAILED, "", 500, 5, "x"),
        ]
    )
    assert journal.done_before("+14155550002", 9) is not None
    assert journal.done_before("+14155550003", 3) is None
    journal.close()


def test_journal_counts_and_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", resume=False)
    journal.record(RowResult(9, "+14155550009", Status.INVALID, error="x"), durable=False)
    journal.record(RowResult(3, "+14155550003", Status.IMPORTED, "+14155550003", 201, 1))
    assert [r.row for r in journal.results_in_order()] == [3, 9]
    assert journal.counts() == {"invalid": 1, "imported": 1}
    assert stat.S_IMODE(os.stat(tmp_path / "j").st_mode) == 0o600
    journal.close()


def test_summary_json_and_line(tmp_path: Path) -> None:
    summary = Summary(
        rows=3,
        counts={"imported": 2, "invalid": 1, "failed": 0},
        results="x.results.csv",
        exit_code=1,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        duration_seconds=1.0,
    )
    assert "2 imported, 1 invalid" in summary.line()
    assert "failed" not in summary.line()
    path = tmp_path / "s.json"
    write_summary_json(summary, path)
    data = json.loads(path.read_text())
    assert data["rows"] == 3
    assert data["counts"]["imported"] == 2
    assert data["exit_code"] == 1
    assert data["results"] == "x.results.csv"


def test_run_log_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    log = RunLog(path)
    log.line("start")
    log.row(RowResult(2, "+14155550002", Status.FAILED, "", 422, 1, "bad\nvalue"))
    log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].endswith(
        'row=2 number=+14155550002 status=failed http=422 attempts=1 error="bad\\nvalue"'
    )


def test_no_secret_in_reprs() -> None:
    from bulk_import.models import RawRow
    from bulk_import.runner import RunOptions

    raw = RawRow(2, {"phoneNumber": "+14155550002", "trunkPassword": "pw-secret"})
    opts = RunOptions(
        file=Path("x.csv"), api_key="key-secret", defaults={"trunkPassword": "pw-secret"}
    )
    request = job(2, "+14155550002")
    for text in (repr(raw), repr(opts), repr(request), str(request.request)):
        assert "pw-secret" not in text
        assert "key-secret" not in text


def test_while_sending_one_commit_a_turn_and_no_mark_leaves_uncommitted(tmp_path: Path) -> None:
    """``group_commits``: the rows and marks of one turn of the loop share one commit; a
    mark is committed (seen by another connection, as by a process that resumes after a
    kill) before ``marks_durable`` returns, and the results file's rows are held until the
    commit that holds them."""
    import asyncio
    import sqlite3
    from contextlib import closing

    path = tmp_path / "r.csv.journal"
    commits: list[str] = []
    released: list[int] = []

    def pending(phone: str) -> object:
        with closing(sqlite3.connect(path)) as other:
            hit = other.execute("SELECT pending FROM numbers WHERE phone = ?", (phone,))
            row = hit.fetchone()
        return None if row is None else row[0]

    async def go() -> None:
        journal = Journal(path, resume=False)
        journal._db.set_trace_callback(  # counts the commits
            lambda sql: commits.append(sql) if sql == "COMMIT" else None
        )
        journal.group_commits(
            asyncio.get_running_loop(), after_commit=lambda: released.append(len(commits))
        )
        commits.clear()
        jobs = [job(n, f"+1415555{n:04d}") for n in range(2, 12)]
        for j in jobs:
            journal.sending(j)
        assert pending(jobs[0].phone_number) is None  # not committed yet: nothing left
        await journal.marks_durable()
        assert commits == ["COMMIT"]  # ten marks, one commit
        assert all(pending(j.phone_number) == "import" for j in jobs)
        for j in jobs:
            journal.record(RowResult(j.row, j.phone_number, Status.IMPORTED, j.phone_number))
        assert commits == ["COMMIT"]
        assert pending(jobs[0].phone_number) == "import"
        await asyncio.sleep(0)  # the end of the turn
        await asyncio.sleep(0)
        assert commits == ["COMMIT", "COMMIT"]  # ten finished rows, one commit
        assert pending(jobs[0].phone_number) is None
        assert released[-1] == 2  # told after the commit
        journal.group_commits(None)
        journal.close()

    asyncio.run(go())
