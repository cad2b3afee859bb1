"""Cron-grade: exactly once under faults, kill -9 and resume, interrupts, aborts, locking.

Everything over real loopback HTTP against the sandbox; the tool runs in a child process
where a signal or a kill has to be real.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bulk_import.runner import RunOptions, run_import

from support import (
    API_KEY,
    EVERY_FAULT,
    assert_no_secrets,
    cli_command,
    cli_env,
    files_text,
    read_results,
    run_cli,
    write_numbers,
)


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(*args),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_results(path: Path, rows: int, timeout: float = 60) -> None:
    """Wait until ``rows`` rows are on disk in the results file of a running import."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {rows} rows")


@pytest.mark.slow
def test_exactly_once_under_every_fault(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(
        api_key=API_KEY,
        **EVERY_FAULT,
        seed=11,
    )
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 1000)
    summary = run_import(
        RunOptions(
            file=path,
            base_url=api.url,
            api_key=API_KEY,
            concurrency=32,
            timeout=0.75,
            max_attempts=10,
            progress=False,
        )
    )
    rows = read_results(tmp_path / "numbers.results.csv")
    assert summary.exit_code == 0, summary.counts
    assert len(rows) == 1000
    assert {r["status"] for r in rows} == {"imported"}
    assert all(api.state.created[n] == 1 for n in numbers)
    assert sum(api.state.created.values()) == 1000
    # The faults really happened, and some rows were in doubt and reconciled.
    assert api.state.faults["drop_after_store"] > 0
    assert api.state.faults["late"] > 0


@pytest.mark.slow
def test_kill_9_then_resume_until_done(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=15, drop_after_store_rate=0.03, seed=5)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 400)
    results = tmp_path / "numbers.results.csv"
    rng = random.Random(1)
    args = ("run", str(path), "--base-url", api.url, "--concurrency", "8", "--no-progress")
    # Kill at three random points (rows on disk), then resume until the run completes.
    kill_points = sorted(rng.sample(range(20, 380), 3))
    checks: list[tuple[set[str], dict[str, int]]] = []
    for attempt, point in enumerate([*kill_points, None]):
        resume = ("--resume",) if attempt else ()
        proc = start_cli(*args, *resume, "--timeout", "2")
        if point is None:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            break
        wait_for_results(results, point)
        time.sleep(rng.uniform(0, 0.05))
        finished = {r["phone_number"] for r in _readable(results) if r["status"] == "imported"}
        checks.append((finished, dict(api.state.attempts)))
        proc.kill()
        proc.communicate()  # waits, and closes the pipes
    rows = read_results(results)
    assert len(rows) == 400
    assert {r["status"] for r in rows} == {"imported"}
    assert all(api.state.created[n] == 1 for n in numbers)
    # Rows on disk before a kill were never sent again afterwards.
    for finished, sent_before in checks:
        assert len(finished) >= 20
        for n in finished:
            assert api.state.attempts[n] == sent_before[n], n


def _readable(path: Path) -> list[dict[str, str]]:
    try:
        return read_results(path)
    except (OSError, ValueError):
        return []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_every_row_then_resume_completes(
    tmp_path: Path, sandbox_factory: Any, sig: signal.Signals
) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=50)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 200)
    results = tmp_path / "numbers.results.csv"
    proc = start_cli("run", str(path), "--base-url", api.url, "--concurrency", "2")
    wait_for_results(results, 10)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rows = read_results(results)
    assert len(rows) == 200
    statuses = {r["status"] for r in rows}
    assert statuses == {"imported", "not_attempted"}, statuses
    assert "Traceback" not in err

    done = run_cli("run", str(path), "--base-url", api.url, "--resume")
    assert done.code == 0, done.stderr
    rows = read_results(results)
    assert {r["status"] for r in rows} == {"imported"}
    assert all(api.state.created[n] == 1 for n in numbers)


def test_wrong_key_aborts_after_at_most_concurrency_requests(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key="the-right-key", latency_ms=20)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 100)
    done = run_cli("run", str(path), "--base-url", api.url, "--concurrency", "4")
    assert done.code == 3
    assert api.state.requests <= 4
    assert "key" in done.stderr.lower()
    rows = read_results(tmp_path / "numbers.results.csv")
    assert len(rows) == 100
    assert {r["status"] for r in rows} <= {"failed", "not_attempted"}
    assert sum(r["status"] == "not_attempted" for r in rows) >= 96
    assert_no_secrets(done.stdout, done.stderr, *files_text(tmp_path / "numbers.results.csv"))


def test_unreachable_api_aborts_with_3(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    path = tmp_path / "numbers.csv"
    write_numbers(path, 50)
    done = run_cli(
        "run", str(path), "--base-url", f"http://127.0.0.1:{port}", "--max-attempts", "2"
    )
    assert done.code == 3, done.stderr
    assert "unreachable" in done.stderr.lower() or "no answer" in done.stderr.lower()
    rows = read_results(tmp_path / "numbers.results.csv")
    assert len(rows) == 50
    assert sum(r["status"] == "not_attempted" for r in rows) >= 40


def test_two_runs_on_one_output(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=100)
    path = tmp_path / "numbers.csv"
    write_numbers(path, 40)
    first = start_cli("run", str(path), "--base-url", api.url, "--concurrency", "1")
    wait_for_results(tmp_path / "numbers.results.csv", 1)
    second = run_cli("run", str(path), "--base-url", api.url)
    assert second.code == 75
    assert f"pid {first.pid}" in second.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    # The lock died with the run: a third run goes through.
    third = run_cli("run", str(path), "--base-url", api.url, "--resume")
    assert third.code == 0, third.stderr


def test_second_interrupt_stops_at_once(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=2000)
    path = tmp_path / "numbers.csv"
    numbers = write_numbers(path, 12)
    results = tmp_path / "numbers.results.csv"
    proc = start_cli("run", str(path), "--base-url", api.url, "--concurrency", "4")
    deadline = time.monotonic() + 30
    while api.state.requests < 4 and time.monotonic() < deadline:
        time.sleep(0.02)  # four requests are in flight, each answered only after 2 s
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 1.5  # did not wait for the 2 s answers
    rows = read_results(results)
    assert len(rows) == 12
    # The four cut in flight reached the API: in doubt, so failed (never "not sent").
    cut = [r for r in rows if r["status"] == "failed"]
    assert len(cut) == 4, rows
    assert {r["error"] for r in cut} == {
        "interrupted in flight: may have been stored; --resume checks"
    }
    assert {r["attempts"] for r in cut} == {"1"}
    assert {r["status"] for r in rows if r not in cut} == {"not_attempted"}
    assert all("before this row was sent" in r["error"] for r in rows if r not in cut)
    # The cut requests may have been stored: the journal says so, and --resume reconciles.
    time.sleep(2.1)
    done = run_cli("run", str(path), "--base-url", api.url, "--resume", "--concurrency", "12")
    assert done.code == 0, done.stderr
    assert {r["status"] for r in read_results(results)} == {"imported"}
    assert all(api.state.created[n] == 1 for n in numbers)
