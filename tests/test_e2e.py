"""The whole path over real loopback HTTP: file in, sandbox imports, results file out.

These are the checks of the "bulk-import v1" issue: the demo, the happy path, a rerun,
updates, 429s waited out, 500s retried, 4xx not retried, dry run, input handling, secrets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from ping_server import PingServer

from bulk_import.ratelimit import START_RATE
from bulk_import.runner import RunOptions, run_import

from support import (
    API_KEY,
    PASSWORD,
    assert_no_secrets,
    cli_env,
    files_text,
    read_results,
    run_cli,
    write_numbers,
)

ROOT = Path(__file__).resolve().parent.parent


def options(path: Path, url: str, **kw: Any) -> RunOptions:
    kw.setdefault("progress", False)
    return RunOptions(file=path, base_url=url, api_key=API_KEY, **kw)


@pytest.fixture
def api(sandbox_factory: Any) -> Any:
    return sandbox_factory(api_key=API_KEY)


def test_demo_command_from_the_readme(tmp_path: Path) -> None:
    sample = tmp_path / "phone_numbers.csv"
    shutil.copy(ROOT / "samples" / "phone_numbers.csv", sample)
    done = run_cli("run", str(sample), "--sandbox", env=cli_env(api_key=None))
    assert done.code == 1, done.stderr
    rows = read_results(tmp_path / "phone_numbers.results.csv")
    imported = [r for r in rows if r["status"] == "imported"]
    invalid = [r for r in rows if r["status"] == "invalid"]
    assert len(imported) + len(invalid) == len(rows)
    assert len(invalid) == 3
    assert all(r["sip_phone_number"] == r["phone_number"] for r in imported)
    assert all(r["http_status"] == "201" and r["attempts"] == "1" for r in imported)
    for r in invalid:
        assert r["error"].split(":")[0] in {"phoneNumber", "terminationSipURI"}, r["error"]
    assert "imported" in done.stderr


def test_happy_path_then_rerun_gives_already_exists(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 40)
    summary = run_import(options(path, api.url, concurrency=8))
    assert summary.exit_code == 0
    assert summary.counts["imported"] == 40
    rows = read_results(tmp_path / "numbers.results.csv")
    assert [r["row"] for r in rows] == [str(i) for i in range(2, 42)]
    assert [r["phone_number"] for r in rows] == numbers
    assert {r["status"] for r in rows} == {"imported"}
    assert all(api.state.created[n] == 1 for n in numbers)

    again = run_import(options(path, api.url))
    assert again.exit_code == 0
    rows = read_results(tmp_path / "numbers.results.csv")
    assert {r["status"] for r in rows} == {"already_exists"}
    assert {r["http_status"] for r in rows} == {"409"}
    assert all(api.state.created[n] == 1 for n in numbers)


def test_on_existing_update_patches_the_new_values(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 10)
    assert run_import(options(path, api.url)).exit_code == 0
    write_numbers(path, 10, friendly="Renamed")
    summary = run_import(options(path, api.url, on_existing="update"))
    assert summary.exit_code == 0
    assert summary.counts["updated"] == 10
    for i, n in enumerate(numbers):
        assert api.state.records[n]["friendlyName"] == f"Renamed {i}"


def test_on_existing_fail_makes_failed_rows(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 3)
    run_import(options(path, api.url))
    summary = run_import(options(path, api.url, on_existing="fail"))
    assert summary.exit_code == 1
    assert summary.counts["failed"] == 3


def test_429_with_retry_after_is_waited_out(tmp_path: Path, sandbox_factory: Any) -> None:
    # Every 4th import is answered 429 + Retry-After: 0.3 s; all rows still go in.
    api = sandbox_factory(
        api_key=API_KEY, burst_429_every=4, fault_retry_after=0.3, decimal_retry_after=True
    )
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 24)
    summary = run_import(options(path, api.url, concurrency=8, max_attempts=10))
    assert summary.exit_code == 0, summary
    assert summary.counts["imported"] == 24
    assert api.state.status_counts[429] >= 6  # the limit was really hit
    assert summary.throttled == api.state.status_counts[429]
    assert all(api.state.created[n] == 1 for n in numbers)
    # Each 429 paused every worker for its Retry-After: 6 pauses of 0.3 s at least.
    assert summary.duration_seconds >= 0.3 * 6


def test_a_rate_limited_api_is_not_overrun(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, rate=50, decimal_retry_after=True)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 60)
    summary = run_import(options(path, api.url, concurrency=8, rate=500))
    assert summary.exit_code == 0
    assert all(api.state.created[n] == 1 for n in numbers)
    assert api.state.status_counts[429] <= 3


def test_a_silent_limit_above_the_start_rate_is_found_by_slow_start(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    # The API tells nothing of its limit (150/s); --rate is far above it.  Slow start
    # doubles from 100/s until 429s come, then backs off to what the API takes.
    api = sandbox_factory(api_key=API_KEY, rate=150, rate_headers="none")
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 400)
    summary = run_import(options(path, api.url, concurrency=16, rate=1000))
    assert summary.exit_code == 0, summary
    assert all(api.state.created[n] == 1 for n in numbers)
    assert 0 < api.state.status_counts[429] <= 0.05 * summary.requests
    assert summary.settled_rate is not None
    assert 0.75 * START_RATE <= summary.settled_rate <= 2 * START_RATE
    assert summary.duration_seconds < 400 / 50  # it did not collapse to a crawl


def test_a_silent_limit_below_the_start_rate_is_found_by_backing_off(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY, rate=30, rate_headers="none", decimal_retry_after=True)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 150)
    summary = run_import(options(path, api.url, concurrency=8, rate=1000))
    assert summary.exit_code == 0, summary
    assert all(api.state.created[n] == 1 for n in numbers)
    assert api.state.status_counts[429] <= 0.15 * summary.requests
    assert summary.settled_rate is not None
    assert summary.settled_rate <= 35


def test_500s_are_retried(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, fail_rate=0.3, seed=7)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 30)
    summary = run_import(options(path, api.url, max_attempts=8))
    assert summary.exit_code == 0
    rows = read_results(tmp_path / "numbers.results.csv")
    assert {r["status"] for r in rows} == {"imported"}
    assert any(int(r["attempts"]) > 1 for r in rows)
    assert all(api.state.created[n] == 1 for n in numbers)


def test_a_refused_row_is_failed_and_not_retried(tmp_path: Path, api: Any) -> None:
    # Valid for us, refused by the API: a 4xx is an answer, sent exactly once.
    path = tmp_path / "numbers.csv"
    write_numbers(path, 2)
    run_import(options(path, api.url))
    api.state.reject_all = True  # the sandbox answers 400 to every import from now on
    write_numbers(path, 2, start=100)
    summary = run_import(options(path, api.url))
    rows = read_results(tmp_path / "numbers.results.csv")
    assert summary.exit_code == 1
    assert [(r["status"], r["http_status"], r["attempts"]) for r in rows] == [
        ("failed", "400", "1")
    ] * 2
    assert rows[0]["error"]


def test_dry_run_sends_nothing_and_needs_no_key(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 5, extra_rows=[["12345", "u", "p", "sip.telnyx.com", "", ""]])
    done = run_cli("run", str(path), "--dry-run", "--base-url", api.url, env=cli_env(api_key=None))
    assert done.code == 1
    rows = read_results(tmp_path / "numbers.results.csv")
    assert [r["status"] for r in rows] == ["valid"] * 5 + ["invalid"]
    assert "has no country code" in rows[-1]["error"]
    assert api.state.requests == 0


def test_missing_required_column_exits_2_and_sends_nothing(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("Phone Number,Trunk Username,Friendly Name\n+14155550001,u,x\n")
    done = run_cli("run", str(path), "--base-url", api.url)
    assert done.code == 2
    assert "trunkPassword" in done.stderr
    assert "terminationSipURI" in done.stderr
    assert "'Phone Number'" in done.stderr  # the headers that were found
    assert "Traceback" not in done.stderr
    assert api.state.requests == 0


def test_missing_api_key_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 1)
    done = run_cli("run", str(path), env=cli_env(api_key=None))
    assert done.code == 2
    assert "SIGMAMIND_API_KEY" in done.stderr


def test_bom_semicolons_and_empty_optional_cells(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    text = (
        "phone_number;trunk_username;trunk_password;termination_sip_uri;inbound_agent_id\n"
        f"+14155550101;u1;{PASSWORD};sip.telnyx.com;\n"
        f"+14155550102;u2;{PASSWORD};sip.telnyx.com;agent-7\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    summary = run_import(options(path, api.url))
    assert summary.exit_code == 0
    first = api.state.bodies["+14155550101"]
    assert "inboundAgentId" not in first  # absent, never "", null or "nan"
    assert "friendlyName" not in first
    assert api.state.bodies["+14155550102"]["inboundAgentId"] == "agent-7"


def test_cp1252_file(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    path.write_bytes(
        "Phone Number,Trunk Username,Trunk Password,Termination SIP URI,Friendly Name\n"
        f"+14155550201,u,{PASSWORD},sip.telnyx.com,Müller Büro\n".encode("cp1252")
    )
    assert run_import(options(path, api.url)).exit_code == 0
    assert api.state.records["+14155550201"]["friendlyName"] == "Müller Büro"


def test_xlsx_with_number_cells(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Phone Number", "Trunk Username", "Trunk Password", "Termination SIP URI"])
    ws.append([14155550301, "u", PASSWORD, "sip.telnyx.com"])  # Excel dropped the +
    ws.append(["+14155550302", 12345, PASSWORD, "sip.telnyx.com"])
    wb.save(path)
    summary = run_import(options(path, api.url))
    rows = read_results(tmp_path / "numbers.results.csv")
    assert rows[0]["status"] == "invalid"
    assert rows[0]["phone_number"] == "14155550301"  # digits, not 1.4155550301E10
    assert rows[1]["status"] == "imported"
    assert api.state.bodies["+14155550302"]["trunkUsername"] == "12345"
    assert summary.exit_code == 1
    # With the region, the number cell is read as a US number.
    again = run_import(options(path, api.url, default_region="US"))
    assert again.counts["imported"] == 1
    assert again.counts["already_exists"] == 1


def test_formula_cells_are_defused_in_the_results(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text(
        "Phone Number,Trunk Username,Trunk Password,Termination SIP URI\n"
        f'"=HYPERLINK(""http://x"")",u,{PASSWORD},sip.telnyx.com\n'
        f"@SUM(1),u,{PASSWORD},sip.telnyx.com\n"
    )
    run_import(options(path, api.url))
    rows = read_results(tmp_path / "numbers.results.csv")
    assert [r["status"] for r in rows] == ["invalid", "invalid"]
    # Not written like phone numbers: told by their shape, so nothing is left to defuse.
    assert rows[0]["phone_number"] == "(22 characters: letters, punctuation)"
    assert rows[1]["phone_number"] == "(7 characters: letters, digits, punctuation)"


def test_header_only_file_is_nothing_to_do(tmp_path: Path, api: Any) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 0)
    done = run_cli("run", str(path), "--base-url", api.url)
    assert done.code == 0, done.stderr
    assert read_results(tmp_path / "numbers.results.csv") == []


def test_no_secret_in_any_output(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, fail_rate=0.2, seed=3)
    path = tmp_path / "numbers.csv"
    write_numbers(
        path,
        20,
        extra_rows=[
            ["4155550999", "u", PASSWORD, "sip.telnyx.com", "", ""],
            ["+14155550998", "u", PASSWORD * 20, "sip.telnyx.com", "", ""],
        ],
    )
    log, summary_json = tmp_path / "run.log", tmp_path / "summary.json"
    metrics, report = tmp_path / "run.prom", tmp_path / "report.html"
    with PingServer() as hc:
        done = run_cli(
            "run",
            str(path),
            "--base-url",
            api.url,
            "--log-file",
            str(log),
            "--summary-json",
            str(summary_json),
            "--max-attempts",
            "8",
            "--metrics-file",
            str(metrics),
            "--report",
            str(report),
            "--ping-url",
            hc.url,
        )
        pings = [p.body for p in hc.pings]
    assert done.code == 1
    assert json.loads(summary_json.read_text())["counts"]["imported"] == 20
    assert "trunkPassword: longer than 128" in (tmp_path / "numbers.results.csv").read_text()
    assert "trunkPassword: longer than 128" in report.read_text()
    assert "trunkPassword: longer than 128" in pings[-1]
    outputs = [done.stdout, done.stderr, *files_text(log, summary_json, metrics, report), *pings]
    outputs += files_text(tmp_path / "numbers.results.csv")
    assert_no_secrets(*outputs)
    assert len(log.read_text().splitlines()) == 22 + 2  # start, a line per row, end


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_run_loads_only_what_it_needs(tmp_path: Path, api: Any, dry_run: bool) -> None:
    """Start-up time is part of every run: no web server or progress bar (the country
    plans of phonenumbers are needed: every number's length is checked against them)."""
    path = tmp_path / "n.csv"
    write_numbers(path, 3)
    argv = ["run", str(path), "--no-progress", "--base-url", api.url]
    argv += ["--dry-run"] if dry_run else []
    code = (
        "import sys; from bulk_import.cli import main; code = main(sys.argv[1:]); "
        "unwanted = ['starlette', 'uvicorn', 'tqdm']; "
        "unwanted += ['httpx', 'aiohttp'] if '--dry-run' in sys.argv else []; "
        "print(sorted(m for m in unwanted if m in sys.modules), code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], env=cli_env(), capture_output=True, text=True
    )
    assert done.stdout.split() == ["[]", "0"], done.stderr
