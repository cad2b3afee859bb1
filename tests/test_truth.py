"""Every output tells the truth: phone numbers that cannot exist, counts of a resumed run,
the achieved rate, the progress bar after an interrupt, hints, signals, plain ASCII text.

Each test feeds the reproduction a new user found and checks what the tool says.
"""

from __future__ import annotations

import ast
import io
import json
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bulk_import import phones
from bulk_import.cli import describe
from bulk_import.errors import MissingColumnsError
from bulk_import.models import Chunk, RawRow, RowResult, Status
from bulk_import.progress import Progress
from bulk_import.record import RunLog, Summary
from bulk_import.validate import Validator, normalize_phone

from support import (
    API_KEY,
    PASSWORD,
    assert_no_secrets,
    cli_command,
    cli_env,
    files_text,
    read_results,
    run_cli,
    write_numbers,
)

PACKAGE = Path(__file__).resolve().parent.parent / "bulk_import"
TEMPLATE = (
    "phoneNumber,trunkUsername,trunkPassword,terminationSipURI,friendlyName,"
    "inboundAgentId,outboundAgentId,outboundPhoneNumber\n"
)

# --- phone numbers -------------------------------------------------------------------

WRONG_NUMBERS = {
    "+14155552672.0": "Excel stored as a float",  # a float cell turned into text
    "4.42079E+11": "Excel stored as a float",
    "+1 415 555 267": "too short for +1 (US)",
    "+999 1234567": "no assigned country code",
    "+15552671": "too short for +1 (US)",  # possible only as a local number
}


def test_numbers_that_cannot_exist_are_invalid_in_a_dry_run_and_a_run(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    path = tmp_path / "n.csv"
    lines = [f'"{n}",acme,{PASSWORD},sip.telnyx.com\n' for n in WRONG_NUMBERS]
    lines.append(
        f"\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff12\uff16\uff17\uff11,acme,{PASSWORD},sip.telnyx.com\n"
    )
    path.write_text(TEMPLATE.split(",friendlyName")[0] + "\n" + "".join(lines), encoding="utf-8")
    for extra in (["--dry-run"], []):
        api = sandbox_factory(api_key=API_KEY)
        done = run_cli("run", str(path), "--base-url", api.url, "--no-progress", *extra)
        assert done.code == 1, done.stderr
        rows = read_results(tmp_path / "n.results.csv")
        for row, (text, why) in zip(rows, WRONG_NUMBERS.items(), strict=False):
            assert row["status"] == "invalid", row
            assert row["error"].startswith(f"phoneNumber: '{text}'"), row
            assert why in row["error"], row
        assert rows[-1]["phone_number"] == "+14155552671"  # full-width, read as ASCII
        assert rows[-1]["status"] == ("valid" if extra else "imported")
        assert sorted(api.state.created) == ([] if extra else ["+14155552671"])


def test_the_column_wise_check_agrees_with_the_row_check() -> None:
    cells = [*WRONG_NUMBERS, "+14155552671", "+442079460018", "+4402079460018", "+80012345678"]
    rows = [
        RawRow(
            i + 2,
            {
                "phoneNumber": c,
                "trunkUsername": "u",
                "trunkPassword": "p",
                "terminationSipURI": "sip.telnyx.com",
            },
        )
        for i, c in enumerate(cells)
    ]
    by_row = [Validator().check(raw) for raw in rows]
    chunk = Chunk([r.row for r in rows], {k: [r.values[k] for r in rows] for k in rows[0].values})
    checked = Validator().check_chunk(chunk)
    for one, status, error in zip(by_row, checked.status, checked.error, strict=True):
        if isinstance(one, RowResult):
            assert (status, error) == ("invalid", one.error)
        else:
            assert (status, error) == ("valid", "")


def test_the_fast_length_check_is_phonenumbers_is_possible() -> None:
    """``phones.possible`` (a table lookup) says what ``phonenumbers`` says, for numbers of
    every country code and every length, as written (no trunk prefix dropped)."""
    import phonenumbers
    from phonenumbers import ValidationResult

    rng = random.Random(7)
    for cc in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for size in range(7, 16):
            rest = size - len(str(cc))
            if rest < 1:
                continue
            number = f"+{cc}{rng.randrange(1, 10)}{''.join(rng.choices('0123456789', k=rest - 1))}"
            parsed = phonenumbers.parse(number, None)
            as_written = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            expected = (
                phonenumbers.is_possible_number_with_reason(parsed) == ValidationResult.IS_POSSIBLE
                and as_written == number
            )
            assert phones.possible(number) == expected, number


def test_a_number_from_a_trunk_prefix_is_suggested() -> None:
    with pytest.raises(ValueError, match=r"did you mean \+442079460018"):
        normalize_phone("+44 0 20 7946 0018", None)


# --- --resume counts what this run did ------------------------------------------------


def test_resume_counts_only_this_run_and_logs_only_its_rows(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY)
    path = tmp_path / "n.csv"
    write_numbers(path, 17)
    log, summary = tmp_path / "run.log", tmp_path / "s.json"
    argv = ["run", str(path), "--base-url", api.url, "--resume", "--no-progress"]
    argv += ["--log-file", str(log), "--summary-json", str(summary)]
    first = run_cli(*argv)
    assert first.code == 0, first.stderr
    assert json.loads(summary.read_text())["this_run"]["imported"] == 17
    log.write_text("")
    second = run_cli(*argv)  # the README's cron line, run again
    assert second.code == 0, second.stderr
    data = json.loads(summary.read_text())
    assert data["requests"] == 0
    assert data["counts"]["imported"] == 17
    assert data["this_run"]["imported"] == 0
    assert "17 done earlier" in second.stderr
    assert "17 imported" not in second.stderr
    assert "status=imported" not in log.read_text()
    assert len(read_results(tmp_path / "n.results.csv")) == 17  # still every row


# --- the summary line ----------------------------------------------------------------


def _summary(**changes: Any) -> Summary:
    values: dict[str, Any] = {
        "rows": 5000,
        "counts": {"imported": 5000},
        "results": "r.csv",
        "exit_code": 0,
        "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:01:45+00:00",
        "duration_seconds": 105.7,
        "requests": 6113,
        "achieved_rate": 57.8,
        "settled_rate": 300.0,
    }
    values.update(changes)
    return Summary(**values)


def test_the_summary_shows_the_achieved_rate_and_the_limit_apart() -> None:
    line = _summary().line()
    assert "6113 requests at 57.8 req/s" in line
    assert "(limit settled at 300 req/s)" in line
    assert ", 300 req/s;" not in line
    assert "limit" not in _summary(settled_rate=None).line()
    # --rate 300 and no 429: that is the ceiling given, not a limit found
    assert "limit" not in _summary(rate_ceiling=300.0).line()
    assert "limit settled at 300" in _summary(rate_ceiling=300.0, throttled=2).line()


def test_the_summary_says_1_row() -> None:
    line = _summary(rows=1, counts={"imported": 1}, requests=1).line()
    assert "1 row:" in line
    assert "1 rows" not in line
    assert "1 request at" in line


def test_the_achieved_rate_is_requests_over_the_time_sending(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY, rate=20, rate_headers="none")
    path = tmp_path / "n.csv"
    write_numbers(path, 40)
    summary = tmp_path / "s.json"
    done = run_cli("run", str(path), "--base-url", api.url, "--summary-json", str(summary))
    assert done.code == 0, done.stderr
    data = json.loads(summary.read_text())
    assert data["requests"] >= 40
    assert 0 < data["achieved_rate"] <= data["requests"] / (data["duration_seconds"] * 0.5)
    assert data["achieved_rate"] < 40  # the sandbox allows 20/s: far below any ceiling
    assert f"at {data['achieved_rate']:.1f} req/s" in done.stderr


# --- the progress bar after an interrupt ----------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_stops_where_it_is_and_messages_go_above_it() -> None:
    stream = _Terminal()
    progress = Progress(10, stream=stream)
    for i in range(3):
        progress.update(RowResult(i, "+1", Status.IMPORTED))
    progress.update(RowResult(4, "+1", Status.NOT_ATTEMPTED))  # halted before sending
    progress.write("stopping: letting 1 in-flight row(s) finish", print)
    assert progress.done == 3
    bar = progress._bar
    assert bar is not None
    assert bar.n == 3
    progress.close()
    for i in range(5, 11):  # the rest, marked not attempted once the bar is closed
        progress.update(RowResult(i, "+1", Status.NOT_ATTEMPTED))
    text = stream.getvalue()
    assert "\nstopping: letting 1 in-flight row(s) finish\n" in text.replace("\r", "\n")
    assert "100%" not in text
    assert "10/10" not in text
    assert " 3/10 " in text


# --- hints ---------------------------------------------------------------------------


def test_a_missing_password_column_points_to_the_password_options() -> None:
    error = MissingColumnsError(["trunkPassword"], ["phoneNumber", "trunkUsername"])
    said = describe(error)  # the command line's words; the library's name no flag
    assert "--" not in str(error)
    assert "--trunk-password-env" in said
    assert "--trunk-password-file" in said
    assert "--default" not in said
    both = describe(MissingColumnsError(["trunkUsername", "trunkPassword"], []))
    assert "--default field=value" in both
    assert "--trunk-password-file" in both


def test_the_sandbox_says_which_key_it_accepts() -> None:
    helped = run_cli("sandbox", "--help")
    assert "sandbox-key" in helped.stdout
    command = cli_command("sandbox", "--port", "0", "--api-key", "k-123")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("sandbox listening on http://127.0.0.1:")
            assert "'k-123'" in proc.stdout.readline()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


# --- the smaller things --------------------------------------------------------------


def test_no_lock_file_is_left_after_a_run(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY)
    path = tmp_path / "n.csv"
    write_numbers(path, 3)
    for extra in (["--dry-run"], []):
        done = run_cli("run", str(path), "--base-url", api.url, *extra)
        assert done.code == 0, done.stderr
        assert not list(tmp_path.glob("*.lock")), list(tmp_path.iterdir())


def _string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_the_tools_own_text_is_ascii() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _string_constants(ast.parse(path.read_text(encoding="utf-8"))):
            if not text.isascii():
                found.append(f"{path.name}:{line}: {text!r}")
    assert not found, found


def test_the_log_is_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    log = RunLog(path)
    log.row(RowResult(2, "+14155550002", Status.FAILED, "", 422, 1, "Caf\u00e9 Z\u00fcrich: bad"))
    log.close()
    text = path.read_text(encoding="utf-8")
    assert 'error="Caf\u00e9 Z\u00fcrich: bad"' in text
    assert "\\u" not in text


# --- a validation error quotes no cell that could be a secret ------------------------


def test_a_short_row_does_not_echo_the_password(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    secret = "Sup3rS3cret!"
    path.write_text(TEMPLATE + f"+14155550102,acme,,{secret},sip.telnyx.com\n", encoding="utf-8")
    log = tmp_path / "run.log"
    done = run_cli("run", str(path), "--dry-run", "--log-file", str(log))
    assert done.code == 1, done.stderr
    rows = read_results(tmp_path / "short.results.csv")
    assert rows[0]["status"] == "invalid"
    assert "terminationSipURI: the value (12 characters, no dot)" in rows[0]["error"]
    outputs = [done.stdout, done.stderr, *files_text(log, tmp_path / "short.results.csv")]
    assert_no_secrets(*outputs, secrets=[secret])


# --- signals -------------------------------------------------------------------------


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(*args),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sighup_stops_a_run_like_sigterm(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, latency_ms=300)
    path = tmp_path / "n.csv"
    write_numbers(path, 60)
    proc = _start("run", str(path), "--base-url", api.url, "--concurrency", "2")
    deadline = time.monotonic() + 60
    while api.state.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGHUP)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopping:" in err
    assert "results:" in err
    rows = read_results(tmp_path / "n.results.csv")
    assert len(rows) == 60
    assert {r["status"] for r in rows} == {"imported", "not_attempted"}


def test_sigterm_during_a_dry_run_leaves_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    row = f"acme,{PASSWORD},sip.telnyx.com\n"
    with path.open("w", encoding="utf-8") as f:
        f.write("phoneNumber,trunkUsername,trunkPassword,terminationSipURI\n")
        f.writelines(f"+1415{2000000 + i:07d},{row}" for i in range(600_000))
    results = tmp_path / "big.results.csv"
    results.write_text("the earlier results\n")
    proc = _start("run", str(path), "--dry-run")
    deadline = time.monotonic() + 120

    def temporaries() -> list[Path]:  # the results are written to a new temp file first
        return list(tmp_path.glob(".big.results.csv*.tmp"))

    while not temporaries() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the dry run finished before the signal (a very fast machine)")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert not temporaries()
    assert results.read_text() == "the earlier results\n"  # untouched
    assert not list(tmp_path.glob("*.lock"))


# --- an unreachable API --------------------------------------------------------------


def test_an_unreachable_api_sends_nothing_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "n.csv"
    write_numbers(path, 5)
    done = run_cli(
        "run", str(path), "--base-url", f"http://127.0.0.1:{port}", "--max-attempts", "2"
    )
    assert done.code == 3, done.stderr
    assert "ssl:default" not in done.stderr
    rows = read_results(tmp_path / "n.results.csv")
    assert {r["status"] for r in rows} == {"not_attempted"}
    assert {r["attempts"] for r in rows} == {"0"}
    assert not any("ssl:default" in r["error"] for r in rows)
    assert any(
        f"could not connect to 127.0.0.1:{port}: Connection refused" in r["error"] for r in rows
    )
