"""``--max-failures N|P%``: a run that keeps failing stops sending, and --resume goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulk_import.models import FailureLimit
from bulk_import.runner import RunOptions, run_import

from support import API_KEY, read_results, run_cli, write_numbers


def options(path: Path, url: str, **kw: Any) -> RunOptions:
    kw.setdefault("progress", False)
    kw.setdefault("api_key", API_KEY)
    return RunOptions(file=path, base_url=url, **kw)


def test_a_count_stops_sending_and_the_rest_are_not_attempted(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY, reject_all=True)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 200)
    log = tmp_path / "run.log"
    summary = run_import(
        options(path, api.url, concurrency=4, max_failures=FailureLimit(count=10), log_file=log)
    )
    assert summary.exit_code == 3
    assert api.state.requests <= 10 + 4  # the limit, plus what was in flight
    rows = read_results(tmp_path / "numbers.results.csv")
    assert len(rows) == 200
    failed = [r for r in rows if r["status"] == "failed"]
    not_attempted = [r for r in rows if r["status"] == "not_attempted"]
    assert 10 <= len(failed) <= 14
    assert len(failed) + len(not_attempted) == 200
    assert all(r["http_status"] == "" and r["attempts"] == "0" for r in not_attempted[-100:])
    assert summary.aborted is not None
    assert "10 failed row(s)" in summary.aborted
    assert "last error: row" in summary.aborted
    assert "refuses this import" in summary.aborted  # the API's own message
    assert "aborted: stopped sending" in log.read_text()


def test_resume_afterwards_sends_the_rows_not_attempted(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY, reject_all=True)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 60)
    first = run_import(options(path, api.url, concurrency=2, max_failures=FailureLimit(count=5)))
    assert first.exit_code == 3
    assert first.counts["not_attempted"] >= 50
    api.state.reject_all = False  # the API is fixed
    again = run_import(options(path, api.url, resume=True, max_failures=FailureLimit(count=5)))
    assert again.exit_code == 0, again
    assert again.counts["imported"] == 60
    assert all(api.state.created[n] == 1 for n in numbers)


def test_a_percentage_is_judged_only_after_twenty_rows(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY, reject_all=True)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 100)
    summary = run_import(
        options(path, api.url, concurrency=1, max_failures=FailureLimit(share=0.5))
    )
    assert summary.exit_code == 3
    assert summary.counts["failed"] == 20  # 100 % failed from the first, judged at 20
    assert summary.counts["not_attempted"] == 80
    assert "50% of the rows answered failed" in (summary.aborted or "")


def test_a_percentage_not_reached_lets_the_run_finish(tmp_path: Path, sandbox: Any) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 30)
    run_import(options(path, sandbox.url, api_key="sandbox-key"))  # 30 exist now
    extra = tmp_path / "more.csv"
    write_numbers(extra, 40, start=25)  # 5 of them exist: with fail, 5 failed of 40
    summary = run_import(
        options(
            extra,
            sandbox.url,
            api_key="sandbox-key",
            on_existing="fail",
            max_failures=FailureLimit(share=0.2),
        )
    )
    assert summary.aborted is None
    assert summary.exit_code == 1
    assert summary.counts["failed"] == 5
    assert summary.counts["imported"] == 35


@pytest.mark.parametrize("value", ["0", "-3", "abc", "0%", "150%", "nan%", "1.5"])
def test_bad_values_are_usage_errors(tmp_path: Path, value: str) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 1)
    done = run_cli("run", str(path), "--dry-run", "--max-failures", value)
    assert done.code == 2
    assert "--max-failures" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_exits_3_and_says_why(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, reject_all=True)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 50)
    done = run_cli("run", str(path), "--base-url", api.url, "--max-failures", "10%")
    assert done.code == 3, done.stderr
    assert "stopped sending" in done.stderr
    assert "10% of the rows answered failed" in done.stderr
