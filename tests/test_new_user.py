"""A new user's mistakes: each gets one line naming the fix, and the right exit code.

The command line as a person (or a cron script) types it, in a child process, against the
sandbox over loopback HTTP (docs/contract.md: the command line; "Outcome").
"""

from __future__ import annotations

import codecs
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from support import API_KEY, cli_command, cli_env, read_results, run_cli, write_numbers

HEADER = "phoneNumber,trunkUsername,trunkPassword,terminationSipURI\n"


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# -- a path that names no file ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("run", "."),
        ("run", "./"),
        ("run", "/"),
        ("run", ""),
        ("plan", "."),
        ("undo", "."),
    ],
)
def test_a_path_that_names_no_file_is_a_usage_error(tmp_path: Path, args: tuple[str, str]) -> None:
    done = run_cli(*args, "--sandbox")
    assert done.code == 2, done.stderr
    line = one_line(done.stderr)
    assert "internal error" not in line
    assert line.startswith("bulk-import")
    assert " error: " in line
    assert "FILE" in line or "RESULTS" in line


# -- template never overwrites a filled spreadsheet ----------------------------------------------


def test_template_refuses_a_file_with_rows_unless_forced(tmp_path: Path) -> None:
    sheet = tmp_path / "numbers.csv"
    write_numbers(sheet, 6)
    before = sheet.read_bytes()
    done = run_cli("template", str(sheet))
    assert done.code == 2
    assert "--force" in one_line(done.stderr)
    assert sheet.read_bytes() == before
    forced = run_cli("template", str(sheet), "--force")
    assert forced.code == 0, forced.stderr
    assert sheet.read_text(encoding="utf-8").count("\n") == 1


def test_template_writes_a_new_or_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert run_cli("template", str(empty)).code == 0
    assert run_cli("template", str(tmp_path / "new.xlsx")).code == 0


# -- Ctrl-C: what to run next ----------------------------------------------------------------


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(*args),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_requests(api: Any, n: int) -> None:
    deadline = time.monotonic() + 30
    while api.state.requests < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_an_interrupt_says_to_resume_and_a_plain_rerun_says_it_replaced(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=100)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 60)
    proc = _start("run", str(path), "--base-url", api.url, "--concurrency", "2", "--no-progress")
    _wait_requests(api, 4)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "(exit 130)" in last
    assert "--resume" in last, last

    again = run_cli("run", str(path), "--base-url", api.url, "--no-progress")
    assert again.code == 0, again.stderr
    summary = again.stderr.strip().splitlines()[-1]
    assert "left 4" not in summary  # what it counts: rows not finished, not requests
    assert "unfinished: this is a new batch" in summary, summary
    assert "earlier" in summary
    assert "--resume" in summary

    # A plain re-run after a complete run replaces nothing unfinished: no such words.
    third = run_cli("run", str(path), "--base-url", api.url, "--no-progress")
    assert third.code == 0, third.stderr
    assert "unfinished" not in third.stderr


def test_a_second_interrupt_also_says_to_resume(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=2000)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 12)
    proc = _start("run", str(path), "--base-url", api.url, "--concurrency", "4")
    _wait_requests(api, 4)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "--resume" in err.strip().splitlines()[-1], err


def test_an_interrupt_outside_the_sending_says_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C the run's own handler does not catch (before the run starts, while the
    file is opened) ends in one line that says what to do next."""
    from bulk_import import cli

    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    code = cli.main(["run", str(tmp_path / "numbers.csv"), "--sandbox"])
    assert code == 130
    assert "--resume" in one_line(capsys.readouterr().err)
    # A dry run sent nothing and records nothing to resume: it is simply run again.
    code = cli.main(["run", str(tmp_path / "numbers.csv"), "--dry-run"])
    assert code == 130
    said = one_line(capsys.readouterr().err)
    assert "--resume" not in said
    assert "run it again" in said


# -- a missing column: the likely fix, from what was found ---------------------------------------


def test_a_missing_column_names_the_closest_header(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text(
        "Phone Number,Trunk User Name,Trunk Pasword,SIP Termination\n"
        "+14155550100,u,p,sip.telnyx.com\n",
        encoding="utf-8",
    )
    done = run_cli("run", str(path), "--dry-run")
    assert done.code == 2
    line = one_line(done.stderr)
    assert "--map 'Trunk Pasword=trunkPassword'" in line, line
    assert "--map 'SIP Termination=terminationSipURI'" in line, line
    # The header row names a field: it is the header, --header-row is not the fix.
    assert "--header-row" not in line, line


def test_header_row_given_is_not_suggested_again(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    given = run_cli("run", str(path), "--dry-run", "--header-row", "1")
    assert given.code == 2
    assert "--header-row" not in given.stderr, given.stderr
    # Not given, and the row taken names no field at all: then it is worth a try.
    guessed = run_cli("run", str(path), "--dry-run")
    assert "--header-row" in guessed.stderr


def test_closest_headers_pairs_each_missing_field_with_one_header() -> None:
    from bulk_import.errors import MissingColumnsError
    from bulk_import.load import closest_headers

    found = ["Phone Number", "Trunk Usr", "Password2", "Notes"]
    pairs = closest_headers(["trunkUsername", "trunkPassword", "terminationSipURI"], found)
    assert pairs == {"trunkUsername": "Trunk Usr", "trunkPassword": "Password2"}
    exc = MissingColumnsError(["trunkUsername"], found, closest={"trunkUsername": "Trunk Usr"})
    assert "Trunk Usr" in str(exc)


# -- the smaller ones -------------------------------------------------------------------------


def test_a_european_excel_float_gets_the_format_as_text_hint(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text(
        HEADER + '"4,9301E+11",u,p,sip.telnyx.com\n"14155552671,0",u,p,sip.telnyx.com\n',
        encoding="utf-8",
    )
    done = run_cli("run", str(path), "--dry-run")
    assert done.code == 1
    rows = read_results(tmp_path / "numbers.results.csv")
    assert all("format the column as text" in r["error"] for r in rows), rows


def test_export_quiet_prints_nothing(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY)
    done = run_cli("export", str(tmp_path / "account.csv"), "--base-url", api.url, "--quiet")
    assert done.code == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == ""


def test_undo_leaves_no_database_side_files(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 5)
    assert run_cli("run", str(path), "--base-url", api.url, "-q").code == 0
    done = run_cli("undo", str(tmp_path / "numbers.results.csv"), "--base-url", api.url, "--yes")
    assert done.code == 0, done.stderr
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(("-shm", "-wal")))
    assert left == []
    journal = tmp_path / "numbers.results.csv.journal"
    with sqlite3.connect(journal) as db:  # still a sound journal
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 5
    db.close()


def test_undo_refuses_a_plan_file(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 3)
    assert run_cli("plan", str(path), "--base-url", api.url).code == 0
    done = run_cli("undo", str(tmp_path / "numbers.plan.csv"), "--base-url", api.url, "--yes")
    assert done.code == 2
    assert "plan" in one_line(done.stderr)
    assert api.state.requests <= 3  # the plan's reads only: undo sent nothing


@pytest.mark.parametrize(
    "args",
    [
        ("run", "x.csv", "--concurrency", "abc"),
        ("run", "x.csv", "--on-existing", "sometimes"),
        ("plan", "x.csv", "--timeout", "soon"),
        ("run",),
        ("frobnicate",),
        ("run", "x.csv", "--no-such-flag"),
    ],
)
def test_a_bad_option_value_is_one_line(args: tuple[str, ...]) -> None:
    done = run_cli(*args)
    assert done.code == 2
    line = one_line(done.stderr)
    assert "error" in line, line
    assert "--help" in line, line


def test_utf16_without_a_bom_gets_an_encoding_hint(tmp_path: Path) -> None:
    text = HEADER + "+14155550100,u,p,sip.telnyx.com\n"
    for name, codec in (("le.csv", "utf-16-le"), ("be.csv", "utf-16-be")):
        path = tmp_path / name
        path.write_bytes(text.encode(codec))
        done = run_cli("run", str(path), "--dry-run")
        assert done.code == 2
        assert f"--encoding {codec}" in one_line(done.stderr)
        assert run_cli("run", str(path), "--dry-run", "--encoding", codec).code == 0
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert run_cli("run", str(with_bom), "--dry-run").code == 0


def test_default_region_uk_says_gb(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 1)
    done = run_cli("run", str(path), "--dry-run", "--default-region", "UK")
    assert done.code == 2
    assert "GB" in one_line(done.stderr)
    assert "did you mean" in done.stderr or "United Kingdom" in done.stderr


def test_max_failures_says_rows_in_flight_finish(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, reject_all=True, latency_ms=20)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 100)
    done = run_cli(
        "run", str(path), "--base-url", api.url, "--max-failures", "5", "--concurrency", "8"
    )
    assert done.code == 3
    summary = done.stderr.strip().splitlines()[-1]
    assert "in flight" in summary, summary


def test_a_run_refused_by_the_lock_logs_the_refusal(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=2000)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 4)
    log = tmp_path / "import.log"
    first = _start("run", str(path), "--base-url", api.url, "--concurrency", "1")
    try:
        _wait_requests(api, 1)
        second = run_cli("run", str(path), "--base-url", api.url, "--log-file", str(log))
        assert second.code == 75, second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    text = log.read_text(encoding="utf-8")
    assert "refused" in text, text
    assert "another run" in text
    assert f"pid {first.pid}" in text
