"""``export``: a listing that always ends, options checked like run's, every run option
that applies, progress on a terminal; over real loopback HTTP (sandbox, hostile server)."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from hostile_server import Reply, Seen, json_reply

from support import API_KEY, cli_command, cli_env, number, read_results, run_cli, write_numbers


def _record(i: int) -> dict[str, Any]:
    return {"sipPhoneNumber": number(i), "friendlyName": f"Line {i}", "active": True}


def _repeating(seen: Seen, fresh: itertools.count[int]) -> Reply:
    """The list's last page, again and again, each time under a new cursor."""
    if not seen.path.startswith("/v1/phone-numbers?") and seen.path != "/v1/phone-numbers":
        return json_reply(404, {"message": "not found"})
    page = [_record(i) for i in range(3)] if "cursor=" in seen.path else []
    page += [_record(i) for i in range(3, 5)]
    return json_reply(200, {"data": page, "nextCursor": f"c{next(fresh)}"})


@pytest.fixture(autouse=True)
def _hostile_lists_too(request: pytest.FixtureRequest) -> None:
    """Here the hostile server's own ``answer`` answers the account's list as well."""
    if "hostile" in request.fixturenames:
        request.getfixturevalue("hostile").list_answer = None


def test_export_ends_a_list_that_repeats_its_last_page_under_fresh_cursors(
    hostile: Any, tmp_path: Path
) -> None:
    fresh = itertools.count()
    hostile.answer = lambda seen: _repeating(seen, fresh)
    out = tmp_path / "account.csv"
    done = run_cli("export", str(out), "--base-url", hostile.url, timeout=30)
    assert done.code == 0, done.stderr
    assert [r["phoneNumber"] for r in read_results(out)] == [number(i) for i in range(5)]
    assert len(hostile.requests) == 3  # the page that brought nothing new ends it


def test_plan_ends_a_list_that_repeats_its_last_page(hostile: Any, tmp_path: Path) -> None:
    fresh = itertools.count()
    hostile.answer = lambda seen: _repeating(seen, fresh)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 150)  # above 100 rows, plan lists the account
    done = run_cli("plan", str(file), "--base-url", hostile.url, "--no-progress", timeout=60)
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "numbers.plan.csv")
    assert sum(r["status"] == "already_exists" for r in rows) == 5
    assert sum(r["status"] == "would_import" for r in rows) == 145
    assert len(hostile.requests) == 3


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--rate", "nan", "--rate nan: give a number of requests per second above 0"),
        ("--rate", "0", "--rate 0.0: give a number of requests per second above 0"),
        ("--rate", "-1", "--rate -1.0"),
        ("--max-attempts", "0", "--max-attempts must be at least 1"),
        ("--timeout", "inf", "--timeout inf: give a number of seconds above 0"),
        ("--concurrency", "0", "--concurrency must be between 1 and"),
    ],
)
def test_export_checks_its_options_like_run(
    sandbox: Any, tmp_path: Path, option: str, value: str, says: str
) -> None:
    out = tmp_path / "account.csv"
    done = run_cli("export", str(out), "--base-url", sandbox.url, option, value, timeout=30)
    assert done.code == 2, done.stderr
    assert says in done.stderr
    assert "internal error" not in done.stderr
    assert not out.exists()
    assert sandbox.state.requests == 0


def test_export_takes_every_run_option_that_applies(sandbox_factory: Any, tmp_path: Path) -> None:
    api = sandbox_factory(api_key="other-key", page_size=10)
    api.state.records.update({number(i): _record(i) for i in range(25)})
    key = tmp_path / "key.txt"
    key.write_text("other-key\n")
    key.chmod(0o600)
    out, summary, log = tmp_path / "account.csv", tmp_path / "s.json", tmp_path / "x.log"
    done = run_cli(
        "export", str(out), "--base-url", api.url, "--api-key-file", str(key),
        "--concurrency", "2", "--rate", "50", "--max-attempts", "2", "--timeout", "5",
        "--summary-json", str(summary), "--log-file", str(log), "--no-progress", "--quiet",
        env=cli_env(api_key=None),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert len(read_results(out)) == 25
    facts = json.loads(summary.read_text())
    assert facts["rows"] == 25
    assert facts["requests"] == api.state.methods["GET"] == 3
    assert facts["results"] == str(out)
    assert facts["exit_code"] == 0
    assert facts["aborted"] is None
    assert facts["command"] == "export"
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert "exported 25" in lines[1]
    assert "other-key" not in log.read_text() + summary.read_text() + done.stderr
    assert "progress" not in done.stderr


def test_export_with_sandbox_and_no_key(tmp_path: Path) -> None:
    out = tmp_path / "account.xlsx"
    done = run_cli("export", str(out), "--sandbox", "--no-progress", env=cli_env(api_key=None))
    assert done.code == 0, done.stderr
    assert out.exists()


def test_export_shows_progress_on_a_terminal(sandbox_factory: Any, tmp_path: Path) -> None:
    api = sandbox_factory(api_key=API_KEY, page_size=50)
    api.state.records.update({number(i): _record(i) for i in range(300)})
    out = tmp_path / "account.csv"
    shown = _on_a_terminal(["export", str(out), "--base-url", api.url])
    assert "300number [" in shown, shown  # the bar, counting the numbers listed
    assert len(read_results(out)) == 300


def _on_a_terminal(args: list[str]) -> str:
    """Run the CLI with stderr on a pseudo-terminal; what it showed there."""
    main, other = pty.openpty()
    fcntl.ioctl(other, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real size
    try:
        proc = subprocess.Popen(
            cli_command(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=other
        )
        os.close(other)
        other = -1
        chunks: list[bytes] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    data = os.read(main, 4096)
                except OSError:  # the other end closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 0, b"".join(chunks)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(main)
        if other != -1:
            os.close(other)


def test_an_export_that_can_not_list_says_why_in_its_summary(hostile: Any, tmp_path: Path) -> None:
    hostile.answer = lambda seen: json_reply(503, {"message": "down for maintenance"})
    out, summary, log = tmp_path / "account.csv", tmp_path / "s.json", tmp_path / "x.log"
    done = run_cli(
        "export", str(out), "--base-url", hostile.url, "--max-attempts", "2",
        "--summary-json", str(summary), "--log-file", str(log), "--no-progress",
        timeout=60,
    )  # fmt: skip
    assert done.code == 3, done.stderr
    assert not out.exists()
    facts = json.loads(summary.read_text())
    assert (facts["exit_code"], facts["rows"], facts["requests"]) == (3, 0, 2)
    assert "down for maintenance" in facts["aborted"]
    assert "aborted" in log.read_text().splitlines()[-1]
    assert len(hostile.requests) == 2
