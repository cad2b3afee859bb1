"""Hostile answers, end to end: no answer may crash a run, hang it, blow up its memory,
leak a secret, or pass a wrong number off as imported.

Each test runs the real CLI against ``HostileServer`` (tests/hostile_server.py) on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hostile_server import (
    ENCODINGS,
    HostileServer,
    Reply,
    Seen,
    created,
    deep_json,
    dropped,
    echo,
    huge,
    json_reply,
    many_titles,
    odd_types,
    other_number,
    trickle,
    wait_for,
)
from ping_server import PingServer

from bulk_import.api import _plain_text, scrub

from support import (
    API_KEY,
    HEADER,
    Completed,
    assert_no_secrets,
    cli_command,
    cli_env,
    files_text,
    read_results,
    run_cli,
    write_numbers,
)

IN_DOUBT = "may have been stored; --resume checks"


def run_against(server: HostileServer, csv: Path, *args: str, timeout: float = 60) -> Completed:
    return run_cli(
        "run", str(csv), "--base-url", server.url, "--no-progress", *args, timeout=timeout
    )


def no_traceback(done: Completed) -> None:
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr


# -- answers that used to crash a run -----------------------------------------------------


def test_odd_field_types_are_read_leniently(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    numbers = write_numbers(csv, 8)
    hostile.answer = odd_types
    done = run_against(hostile, csv)
    no_traceback(done)
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "in.results.csv")
    assert [r["status"] for r in rows] == ["imported"] * 8
    assert [r["sip_phone_number"].lstrip("'") for r in rows] == numbers


def test_resume_reads_an_odd_get_answer(hostile: HostileServer, tmp_path: Path) -> None:
    """A row left in doubt is checked by GET on --resume; an odd record must not crash it."""
    csv = tmp_path / "in.csv"
    # Two rows (a third failure in a row would abort the run), without a friendly name:
    # the odd record's values must match what was sent for the GET to prove it stored.
    csv.write_text(
        "phoneNumber,trunkUsername,trunkPassword,terminationSipURI\n"
        "+14155550001,u,pw,sip.telnyx.com\n+14155550002,u,pw,sip.telnyx.com\n"
    )
    hostile.answer = dropped  # sent, never answered: in doubt
    first = run_against(hostile, csv, "--max-attempts", "1")
    no_traceback(first)
    assert first.code == 1, first.stderr
    assert all(IN_DOUBT in r["error"] for r in read_results(tmp_path / "in.results.csv"))

    def exists_then_odd(seen: Seen) -> Reply:
        if seen.method == "POST":
            return json_reply(409, {"message": "already exists"})
        return odd_types(seen)

    hostile.answer = exists_then_odd
    again = run_against(hostile, csv, "--resume")
    no_traceback(again)
    assert again.code == 0, again.stderr
    rows = read_results(tmp_path / "in.results.csv")
    assert [r["status"] for r in rows] == ["imported"] * 2  # the lost attempts stored them


@pytest.mark.parametrize("status", [201, 400, 500])
def test_json_nested_100k_deep_does_not_crash(
    hostile: HostileServer, tmp_path: Path, status: int
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    hostile.answer = deep_json(status)
    done = run_against(hostile, csv, "--max-attempts", "1")
    no_traceback(done)
    rows = read_results(tmp_path / "in.results.csv")
    if status == 201:
        assert done.code == 0, done.stderr
        assert [r["status"] for r in rows] == ["imported"] * 2
    else:
        assert done.code in (1, 3), done.stderr
        assert {r["status"] for r in rows} <= {"failed", "not_attempted"}
        assert all(len(r["error"]) <= 400 for r in rows)


def test_resume_survives_deep_json_on_get(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    hostile.answer = dropped
    hostile.list_answer = deep_json(200)  # the account can't be read before sending either
    run_against(hostile, csv, "--max-attempts", "1")

    def exists_then_deep(seen: Seen) -> Reply:
        if seen.method == "POST":
            return json_reply(409, {"message": "already exists"})
        return deep_json(200)(seen)

    hostile.answer = exists_then_deep
    again = run_against(hostile, csv, "--resume")
    no_traceback(again)
    # Without a listing, nothing proves the lost attempt stored it: "not known".
    rows = read_results(tmp_path / "in.results.csv")
    assert [r["status"] for r in rows] == ["already_exists"] * 2
    assert all("not known" in r["error"] for r in rows)


# -- a 2xx that names another number ------------------------------------------------------


def test_2xx_naming_another_number_is_not_imported(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    hostile.answer = other_number("+19995550000", get_status=404)
    done = run_against(hostile, csv)
    no_traceback(done)
    assert done.code == 1
    rows = read_results(tmp_path / "in.results.csv")
    assert [r["status"] for r in rows] == ["failed"] * 2
    assert all("'+19995550000', not this number" in r["error"] for r in rows)
    assert all("not imported" in r["error"] for r in rows)
    gets = [s for s in hostile.requests if s.method == "GET"]
    assert len(gets) == 2  # each checked by a GET of the number sent


def test_2xx_naming_another_number_is_imported_when_get_confirms(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    numbers = write_numbers(csv, 1)
    hostile.answer = other_number("+19995550000", get_status=200)
    done = run_against(hostile, csv)
    assert done.code == 0, done.stderr
    [row] = read_results(tmp_path / "in.results.csv")
    assert row["status"] == "imported"
    assert row["sip_phone_number"].lstrip("'") == numbers[0]
    assert "GET shows it stored as sent" in row["error"]


def test_2xx_in_another_format_of_the_same_number_is_imported(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 1)  # +14155000000
    hostile.answer = lambda seen: (
        created(seen)
        if seen.method == "GET"
        else json_reply(201, {"sipPhoneNumber": "+1 (415) 500-0000"})
    )
    done = run_against(hostile, csv)
    assert done.code == 0, done.stderr
    assert [s.method for s in hostile.requests] == ["POST"]


def test_2xx_naming_a_secret_as_the_number_does_not_leak_it(
    hostile: HostileServer, tmp_path: Path
) -> None:
    from support import PASSWORD

    csv = tmp_path / "in.csv"
    write_numbers(csv, 1)

    def answer(seen: Seen) -> Reply:
        if seen.method == "POST":
            return json_reply(201, {"sipPhoneNumber": str(seen.body["trunkPassword"])})
        return json_reply(404, {"message": "no"})

    hostile.answer = answer
    done = run_against(hostile, csv, "--log-file", str(tmp_path / "log"))
    assert done.code == 1
    [row] = read_results(tmp_path / "in.results.csv")
    assert "a value that is not a phone number" in row["error"]
    assert_no_secrets(done.stdout, done.stderr, *files_text(tmp_path / "in.results.csv"))
    assert_no_secrets(*files_text(tmp_path / "log"))
    assert PASSWORD not in row["sip_phone_number"]


# -- --timeout is a deadline for the whole request ---------------------------------------


def test_a_trickled_answer_is_cut_at_the_timeout(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 1)
    hostile.answer = trickle(every=0.5, size=1000)  # 500 s to send in full
    started = time.monotonic()
    done = run_against(hostile, csv, "--timeout", "2", "--max-attempts", "1", timeout=60)
    took = time.monotonic() - started
    no_traceback(done)
    assert done.code == 1, done.stderr
    [row] = read_results(tmp_path / "in.results.csv")
    assert row["status"] == "failed"
    assert "no complete answer within 2 s" in row["error"]
    assert IN_DOUBT in row["error"]
    assert took < 45  # the request ends at 2 s; the rest is the interpreter starting


def test_sigterm_gives_in_flight_rows_at_most_the_timeout(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 5)
    hostile.answer = trickle(every=0.5, size=1000)
    proc = subprocess.Popen(
        cli_command(
            "run",
            str(csv),
            "--base-url",
            hostile.url,
            "--no-progress",
            "--timeout",
            "3",
            "--concurrency",
            "2",
        ),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: len(hostile.requests) >= 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        proc.kill()
    assert "Traceback" not in stderr
    assert proc.returncode == 130, stderr
    rows = read_results(tmp_path / "in.results.csv")
    cut = [r for r in rows if r["status"] == "failed"]
    assert len(cut) == 2
    assert all(r["error"].startswith("interrupted") and IN_DOUBT in r["error"] for r in cut)
    assert [r["status"] for r in rows if r not in cut] == ["not_attempted"] * 3
    assert took < 30  # at most --timeout (3 s) for the rows in flight, plus shutting down


# -- huge and pathological bodies ---------------------------------------------------------


def test_a_400_mb_error_body_is_not_read_whole(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 1)
    hostile.answer = huge(400, 400 * 1024 * 1024)
    done = run_against(hostile, csv, timeout=60)
    no_traceback(done)
    assert done.code == 1, done.stderr
    [row] = read_results(tmp_path / "in.results.csv")
    assert row["status"] == "failed"
    assert row["error"].startswith("xxxx")
    hostile.stop()  # let the writer notice the closed connection
    # What reached the client's socket buffers, at most: a few MB, never the 400 MB.
    assert hostile.sent_bytes < 64 * 1024 * 1024


def test_forty_thousand_title_tags_cost_what_their_length_costs(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 1)
    hostile.answer = many_titles(40_000)
    done = run_against(hostile, csv, timeout=30)
    no_traceback(done)
    assert done.code == 1, done.stderr


@pytest.mark.timeout(20)
def test_html_reduction_is_linear_on_a_large_hostile_page() -> None:
    """A 1 MB page of unclosed tags (beyond the body cap, to test the reduction itself)."""
    assert _plain_text("<title>" * 150_000).strip() == ""  # no </title>: the words, none
    assert _plain_text("<" * 1_000_000).count("<") == 1_000_000
    assert _plain_text("<title" + "<title " * 150_000 + "x").endswith("x")
    assert _plain_text("<TITLE lang=en>S3cr&amp;t</Title >") == "S3cr&t"


# -- secrets in every encoding, in every output --------------------------------------------

SECRET = 'S3cr&t<pw>"päss wörd+%/'


def forms(value: str) -> dict[str, str]:
    """Every way an output could hold ``value`` (each must be absent)."""
    import html
    from urllib.parse import quote, quote_plus

    return {
        "raw": value,
        "json_ascii": json.dumps(value)[1:-1],
        "json_utf8": json.dumps(value, ensure_ascii=False)[1:-1],
        "html": html.escape(value),
        "html_noquote": html.escape(value, quote=False),
        "url": quote(value, safe=""),
        "url_plus": quote_plus(value),
        "numeric": "".join(f"&#{ord(c)};" for c in value),
        "csv": value.replace('"', '""'),
    }


def write_secret_rows(path: Path, count: int) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(count):
            writer.writerow(
                [f"+1415{5000000 + i:07d}", f"user{i}", SECRET, "sip.telnyx.com", "", ""]
            )


def every_output(tmp_path: Path) -> list[str]:
    """The text of every file a run wrote: results, log, summary, journal (+ its WAL)."""
    texts = []
    for path in sorted(tmp_path.iterdir()):
        if path.name == "in.csv":
            continue  # the input: the one file that holds the password on purpose
        texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return texts


def assert_hidden(texts: list[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            for name, form in forms(secret).items():
                assert form not in text, f"{name} form of a secret in an output"


def secret_run(server: HostileServer, tmp_path: Path, *args: str) -> Completed:
    """A run writing every output there is (the pings' bodies are kept in pings.txt)."""
    csv = tmp_path / "in.csv"
    with PingServer() as hc:
        done = run_against(
            server,
            csv,
            "--log-file",
            str(tmp_path / "run.log"),
            "--summary-json",
            str(tmp_path / "summary.json"),
            "--metrics-file",
            str(tmp_path / "run.prom"),
            "--report",
            str(tmp_path / "report.html"),
            "--ping-url",
            hc.url,
            *args,
        )
        pings = [f"{p.path}\n{p.body}" for p in hc.pings]
    assert len(pings) == 2, pings
    (tmp_path / "pings.txt").write_text("\n".join(pings))
    return done


def test_secrets_echoed_in_every_encoding_reach_no_output(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """Each row's 400 echoes the password (and the key) in another encoding."""
    names = list(ENCODINGS)
    write_secret_rows(tmp_path / "in.csv", len(names))

    def answer(seen: Seen) -> Reply:
        i = int(str(seen.body.get("trunkUsername", "user0"))[4:])
        reply = echo(names[i])(seen)
        key_reply = echo(names[i], key=True)(seen)
        return Reply(400, reply.body + b" " + key_reply.body, content_type=reply.content_type)

    hostile.answer = answer
    done = secret_run(hostile, tmp_path, "--concurrency", "1")
    no_traceback(done)
    assert done.code == 1, done.stderr
    rows = read_results(tmp_path / "in.results.csv")
    assert len(rows) == len(names)
    assert all(r["status"] == "failed" and "***" in r["error"] for r in rows), rows
    assert_hidden([done.stdout, done.stderr, *every_output(tmp_path)], SECRET, API_KEY)
    journal = (tmp_path / "in.results.csv.journal").read_bytes()
    for form in forms(SECRET).values():
        assert form.encode() not in journal


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_secrets_in_an_abort_reach_no_summary(
    hostile: HostileServer, tmp_path: Path, encoding: str
) -> None:
    """A 503 that echoes them: the abort's reason goes to stderr, the log and the summary."""
    write_secret_rows(tmp_path / "in.csv", 3)
    key_echo = echo(encoding, status=503, key=True)

    def answer(seen: Seen) -> Reply:
        a, b = echo(encoding, status=503)(seen), key_echo(seen)
        return Reply(503, a.body + b" " + b.body, content_type=a.content_type)

    hostile.answer = answer
    done = secret_run(hostile, tmp_path, "--max-attempts", "1", "--concurrency", "1")
    no_traceback(done)
    assert done.code == 3, done.stderr
    summary: dict[str, Any] = json.loads((tmp_path / "summary.json").read_text())
    assert "***" in summary["aborted"]
    assert_hidden([done.stdout, done.stderr, *every_output(tmp_path)], SECRET, API_KEY)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_scrub_masks_every_encoding(encoding: str) -> None:
    body, _ = ENCODINGS[encoding](SECRET)
    text = body.decode()
    masked = scrub(text, [SECRET])
    assert_hidden([masked], SECRET)
    assert "***" in masked


def test_scrub_leaves_other_text_alone() -> None:
    assert scrub("100% fine &amp; well", [SECRET]) == "100% fine &amp; well"
    assert scrub("nothing", []) == "nothing"


# -- the base URL -------------------------------------------------------------------------


def test_a_base_url_with_credentials_is_refused(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 1)
    url = hostile.url.replace("http://", "http://admin:Hunter2pw@")
    done = run_cli("run", str(csv), "--base-url", url, "--no-progress")
    assert done.code == 2
    assert "user name or password" in done.stderr
    assert "Hunter2pw" not in done.stderr + done.stdout
    assert hostile.requests == []
    assert not (tmp_path / "in.results.csv").exists()
