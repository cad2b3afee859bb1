"""plan, update, undo, export and template, over real loopback HTTP against the sandbox."""

from __future__ import annotations

import csv
import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bulk_import.decide import decide_update, describe, diff, restore_body
from bulk_import.runner import RunOptions, run_import

from support import (
    API_KEY,
    EVERY_FAULT,
    PASSWORD,
    assert_no_secrets,
    cli_command,
    cli_env,
    files_text,
    number,
    read_results,
    run_cli,
    write_numbers,
)


@pytest.fixture
def api(sandbox_factory: Any) -> Any:
    return sandbox_factory(api_key=API_KEY)


def _run(api: Any, command: str, file: Path, *extra: str) -> Any:
    return run_cli(command, str(file), "--base-url", api.url, "--no-progress", *extra)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# -- decide: plain data, no HTTP ----------------------------------------------------------


def test_decide_patches_only_what_differs_and_never_shows_the_password() -> None:
    record: dict[str, str | None] = {
        "phoneNumber": "+14155550100",
        "friendlyName": "Old",
        "inboundAgentId": "a1",
    }
    wanted = {"phoneNumber": "+14155550100", "friendlyName": "New", "inboundAgentId": "a1"}
    decision = decide_update(wanted, record)
    assert decision.body == {"friendlyName": "New"}
    assert decision.changes_text == "friendlyName: 'Old' -> 'New'"
    assert decide_update({"phoneNumber": "+14155550100"}, record).body == {}
    with_secret = {**wanted, "trunkPassword": PASSWORD, "terminationSipURI": "a.example"}
    text = describe(diff(with_secret, record))
    assert "trunkPassword: (changed)" in text
    assert PASSWORD not in text
    assert decide_update(with_secret, record).body["terminationSipUri"] == "a.example"
    record["outboundAgentId"] = None
    changed = ["friendlyName", "trunkPassword", "outboundAgentId", "trunkUsername"]
    assert restore_body(record, changed) == {"friendlyName": "Old", "outboundAgentId": None}


# -- plan ---------------------------------------------------------------------------------


def _preloaded_account(api: Any, tmp_path: Path) -> Path:
    """Numbers 0-9 exist with the file's values, 10-19 exist with another friendly name,
    20-29 do not exist; returns the import file of all 30."""
    file = tmp_path / "numbers.csv"
    write_numbers(file, 30)
    seed = tmp_path / "seed.csv"
    write_numbers(seed, 20)
    assert _run(api, "run", seed).code == 0
    for i in range(10, 20):
        api.state.records[number(i)]["friendlyName"] = f"Other {i}"
    api.state.methods.clear()
    return file


@pytest.mark.parametrize("mode", ["skip", "update", "fail"])
def test_plan_against_an_account_writes_nothing(api: Any, tmp_path: Path, mode: str) -> None:
    file = _preloaded_account(api, tmp_path)
    done = _run(api, "plan", file, "--on-existing", mode)
    rows = read_results(tmp_path / "numbers.plan.csv")
    assert api.state.writes == 0, api.state.methods
    status = {r["phone_number"]: r["status"] for r in rows}
    changes = {r["phone_number"]: r["changes"] for r in rows}
    assert all(status[number(i)] == "would_import" for i in range(20, 30))
    assert api.state.methods["GET"] == 30  # 30 rows: a GET each is cheaper than listing
    if mode == "skip":
        assert all(status[number(i)] == "already_exists" for i in range(20))
        assert done.code == 0
        assert "would import 10, update 0" in done.stderr
    elif mode == "fail":
        assert all(status[number(i)] == "failed" for i in range(20))
        assert done.code == 1
    else:
        # The file gives a trunk password: it can't be compared, so every row changes it.
        assert all(status[number(i)] == "would_update" for i in range(20))
        assert changes[number(3)] == "trunkUsername: (unknown) -> 'user3'; trunkPassword: (changed)"
        assert changes[number(12)] == (
            "trunkUsername: (unknown) -> 'user12'; trunkPassword: (changed); "
            "friendlyName: 'Other 12' -> 'Line 12'"
        )
        assert done.code == 0
    assert_no_secrets(done.stdout, done.stderr, *files_text(tmp_path / "numbers.plan.csv"))


def test_plan_of_a_partial_file_needs_only_the_number(api: Any, tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    write_numbers(seed, 3)
    assert _run(api, "run", seed).code == 0
    file = tmp_path / "partial.csv"
    _write(
        file,
        ["phoneNumber", "friendlyName"],
        [[number(0), "Line 0"], [number(1), "Renamed"], [number(7), "New one"]],
    )
    api.state.methods.clear()
    done = _run(api, "plan", file, "--on-existing", "update")
    rows = {r["phone_number"]: r for r in read_results(tmp_path / "partial.plan.csv")}
    assert rows[number(0)]["status"] == "unchanged"
    assert rows[number(1)]["status"] == "would_update"
    assert rows[number(1)]["changes"] == "friendlyName: 'Line 1' -> 'Renamed'"
    assert rows[number(7)]["status"] == "invalid"
    assert "trunkUsername: required to import a new number" in rows[number(7)]["error"]
    assert done.code == 1
    assert api.state.writes == 0


# -- round trip: import, export, edit, plan, update, undo ------------------------------------


def test_round_trip_export_edit_update_undo(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 300)
    assert _run(api, "run", file).code == 0
    export = tmp_path / "account.csv"
    done = run_cli("export", str(export), "--base-url", api.url)
    assert done.code == 0, done.stderr
    rows = read_results(export)
    assert [r["phoneNumber"] for r in rows] == sorted(number(i) for i in range(300))
    assert {r["active"] for r in rows} == {"true"}
    assert list(rows[0]) == [
        "phoneNumber",
        "friendlyName",
        "terminationSipURI",
        "inboundAgentId",
        "outboundAgentId",
        "outboundPhoneNumber",
        "active",
    ]
    for i in range(20):
        rows[i]["inboundAgentId"] = f"agent-{i}"
    for i in range(20, 25):
        rows[i]["friendlyName"] = f"Renamed {i}"
    _write(export, list(rows[0]), [list(r.values()) for r in rows])

    api.state.methods.clear()
    plan = _run(api, "plan", export, "--on-existing", "update")
    planned = read_results(tmp_path / "account.plan.csv")
    assert sum(r["status"] == "would_update" for r in planned) == 25, plan.stderr
    assert sum(r["status"] == "unchanged" for r in planned) == 275
    assert api.state.writes == 0

    log = tmp_path / "update.log"
    summary = tmp_path / "update.json"
    update = _run(api, "update", export, "--log-file", str(log), "--summary-json", str(summary))
    assert update.code == 0, update.stderr
    updated = read_results(tmp_path / "account.update.csv")
    assert sum(r["status"] == "updated" for r in updated) == 25
    assert sum(r["status"] == "unchanged" for r in updated) == 275
    assert api.state.methods["PATCH"] == 25
    for i in range(20):
        assert api.state.patches[number(i)] == [{"inboundAgentId": f"agent-{i}"}]
    for i in range(20, 25):
        assert api.state.patches[number(i)] == [{"friendlyName": f"Renamed {i}"}]

    undo = _run(api, "undo", tmp_path / "account.update.csv", "--yes")
    assert undo.code == 0, undo.stderr
    undone = read_results(tmp_path / "account.update.undo.csv")
    assert len(undone) == 25
    assert {r["status"] for r in undone} == {"restored"}
    for i in range(20):
        assert api.state.records[number(i)]["inboundAgentId"] is None
    assert api.state.records[number(22)]["friendlyName"] == "Line 22"
    assert len(api.state.records) == 300
    assert log.exists()
    assert summary.exists()
    outputs = [p for p in tmp_path.iterdir() if p != file]
    assert_no_secrets(*files_text(*outputs), undo.stderr, update.stderr)


# -- undo -----------------------------------------------------------------------------------


def test_undo_deletes_exactly_what_was_imported(api: Any, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    write_numbers(first, 50)
    assert _run(api, "run", first).code == 0
    file = tmp_path / "numbers.csv"
    write_numbers(file, 200)
    assert _run(api, "run", file).code == 0
    results = tmp_path / "numbers.results.csv"

    api.state.methods.clear()
    refused = run_cli("undo", str(results), "--base-url", api.url, "--no-progress")
    assert refused.code == 2
    assert "--yes" in refused.stderr
    assert sum(api.state.methods.values()) == 0

    dry = _run(api, "undo", results, "--dry-run")
    assert dry.code == 0
    assert sum(api.state.methods.values()) == 0
    assert {r["status"] for r in read_results(tmp_path / "numbers.results.undo.csv")} == {
        "would_delete"
    }

    done = _run(api, "undo", results, "--yes")
    assert done.code == 0, done.stderr
    assert "delete 150 number(s)" in done.stderr
    assert api.url in done.stderr
    assert len(read_results(tmp_path / "numbers.results.undo.csv")) == 150
    assert set(api.state.records) == {number(i) for i in range(50)}
    assert set(api.state.deleted) == {number(i) for i in range(50, 200)}


def test_undo_reads_a_results_workbook(api: Any, tmp_path: Path) -> None:
    """``run --output x.xlsx`` then ``undo x.xlsx``: the workbook lists what was imported."""
    api.state.records[number(0)] = {"sipPhoneNumber": number(0)}  # there before the run
    file = tmp_path / "numbers.csv"
    write_numbers(file, 12)
    book = tmp_path / "numbers.results.xlsx"
    assert _run(api, "run", file, "--output", str(book)).code == 0
    assert set(api.state.records) == {number(i) for i in range(12)}

    done = _run(api, "undo", book, "--yes")
    assert done.code == 0, done.stderr
    assert "delete 11 number(s)" in done.stderr
    rows = read_results(tmp_path / "numbers.results.undo.csv")
    assert sorted(int(r["row"]) for r in rows) == list(range(3, 14))
    assert {r["status"] for r in rows} == {"deleted"}
    assert set(api.state.records) == {number(0)}


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_undo_of_a_file_that_is_not_results_is_refused(api: Any, tmp_path: Path, kind: str) -> None:
    """``undo numbers.csv`` (the input, not its results) says so and sends nothing."""
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    if kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        for line in file.read_text().splitlines():
            sheet.append(line.split(","))
        book.save(tmp_path / "numbers.xlsx")
        file = tmp_path / "numbers.xlsx"
    api.state.methods.clear()
    refused = _run(api, "undo", file, "--yes")
    assert refused.code == 2
    assert f"{file} is not the results file of a run" in refused.stderr
    assert "give the file a run wrote: numbers.results.csv" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sum(api.state.methods.values()) == 0


def test_undo_under_faults_deletes_each_listed_number_once(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    clean = sandbox_factory(api_key=API_KEY)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 120)
    assert _run(clean, "run", file).code == 0
    faulty = sandbox_factory(api_key=API_KEY, seed=7, **EVERY_FAULT)
    faulty.state.records.update(clean.state.records)
    faulty.state.records[number(999)] = {"sipPhoneNumber": number(999)}
    results = tmp_path / "numbers.results.csv"
    args = ("--yes", "--max-attempts", "8")
    refused = _run(faulty, "undo", results, *args)
    assert refused.code == 2  # another base URL: not the account the batch was sent to
    assert clean.url in refused.stderr
    assert faulty.url in refused.stderr
    assert faulty.state.writes == 0
    done = _run(faulty, "undo", results, *args, "--other-account")
    rows = read_results(tmp_path / "numbers.results.undo.csv")
    assert done.code == 0, done.stderr
    # A 404 after our own lost DELETE is "deleted" (the HTTP layer resends nothing unseen);
    # number 999 was never listed.
    assert {r["status"] for r in rows} == {"deleted"}
    assert sum(r["status"] == "deleted" for r in rows) > 100
    assert set(faulty.state.records) == {number(999)}
    assert all(n == 1 for n in faulty.state.deleted.values())
    assert sum(faulty.state.faults.values()) > 0


def test_update_under_faults_patches_from_the_right_base(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    api = sandbox_factory(api_key=API_KEY, seed=11, **EVERY_FAULT)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 80)
    api.state.records.update(
        {
            number(i): {"sipPhoneNumber": number(i), "friendlyName": f"Old {i}", "active": True}
            for i in range(80)
        }
    )
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(i), f"New {i}"] for i in range(80)])
    done = _run(api, "update", edits, "--max-attempts", "8")
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "edits.update.csv")
    assert {r["status"] for r in rows} == {"updated"}
    assert all(
        r["changes"] == f"friendlyName: 'Old {int(r['row']) - 2}' -> 'New {int(r['row']) - 2}'"
        for r in rows
    )
    # Every PATCH sent, retries included, carried the same body: never one from a wrong base.
    for i in range(80):
        assert all(body == {"friendlyName": f"New {i}"} for body in api.state.patches[number(i)])
    undo = _run(api, "undo", tmp_path / "edits.update.csv", "--yes", "--max-attempts", "8")
    assert undo.code == 0, undo.stderr
    assert all(api.state.records[number(i)]["friendlyName"] == f"Old {i}" for i in range(80))


def test_kill_during_undo_then_resume_deletes_each_once(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 400)
    assert _run(api, "run", file).code == 0
    results = tmp_path / "numbers.results.csv"
    slow = dict(cli_env())
    args = ["undo", str(results), "--base-url", api.url, "--yes", "--no-progress", "--rate", "100"]
    proc = subprocess.Popen(cli_command(*args), env=slow, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sum(api.state.deleted.values()) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < sum(api.state.deleted.values()) < 400
    done = run_cli(*args, "--resume")
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "numbers.results.undo.csv")
    assert len(rows) == 400
    assert {r["status"] for r in rows} <= {"deleted", "not_found"}
    assert all(not r["error"] or r["status"] == "not_found" for r in rows)
    assert api.state.records == {}
    assert all(n == 1 for n in api.state.deleted.values())


# -- pagination ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["cursor", "array", "next", "page"])
def test_export_and_plan_over_many_pages(sandbox_factory: Any, tmp_path: Path, style: str) -> None:
    api = sandbox_factory(api_key=API_KEY, list_style=style, page_size=100)
    api.state.records.update(
        {
            number(i): {"sipPhoneNumber": number(i), "friendlyName": f"Line {i}", "active": True}
            for i in range(2500)
        }
    )
    out = tmp_path / "all.csv"
    assert run_cli("export", str(out), "--base-url", api.url).code == 0
    listed = [r["phoneNumber"] for r in read_results(out)]
    assert listed == sorted(number(i) for i in range(2500))
    if style != "array":
        assert api.state.methods["GET"] == 25
    file = tmp_path / "numbers.csv"
    write_numbers(file, 2600)
    api.state.methods.clear()
    plan = _run(api, "plan", file)
    rows = read_results(tmp_path / "numbers.plan.csv")
    assert sum(r["status"] == "already_exists" for r in rows) == 2500, plan.stderr
    assert api.state.methods["GET"] == (1 if style == "array" else 25)  # listed, page by page
    assert sum(r["status"] == "would_import" for r in rows) == 100
    assert api.state.writes == 0


# -- export, template, sandbox --preload ----------------------------------------------------


def test_export_xlsx_keeps_numbers_as_text_and_template(api: Any, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    file = tmp_path / "numbers.csv"
    write_numbers(file, 5)
    assert _run(api, "run", file).code == 0
    out = tmp_path / "account.xlsx"
    done = run_cli("export", str(out), "--base-url", api.url)
    assert done.code == 0, done.stderr
    sheet = load_workbook(out).active
    assert sheet is not None
    cells = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert cells == [number(i) for i in range(5)]
    assert_no_secrets(out.read_bytes().decode("latin-1"))
    template = tmp_path / "t.xlsx"
    assert run_cli("template", str(template)).code == 0
    sheet = load_workbook(template).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["phoneNumber", "trunkUsername", "trunkPassword", "terminationSipURI"]
    assert sheet["A2"].number_format == "@"
    csv_template = tmp_path / "t.csv"
    assert run_cli("template", str(csv_template)).code == 0
    assert csv_template.read_text().startswith("phoneNumber,trunkUsername,trunkPassword,")


def test_sandbox_preload_holds_the_file(sandbox_factory: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 12)
    api = sandbox_factory(api_key=API_KEY, preload=file)
    assert set(api.state.records) == {number(i) for i in range(12)}
    done = _run(api, "plan", file)
    assert {r["status"] for r in read_results(tmp_path / "numbers.plan.csv")} == {"already_exists"}
    assert done.code == 0


# -- resume notices edited rows ----------------------------------------------------------------


def test_resume_applies_an_edited_row(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 5)
    assert _run(api, "run", file).code == 0
    write_numbers(file, 5, friendly="Edited")
    skipped = _run(api, "run", file, "--resume")
    rows = read_results(tmp_path / "numbers.results.csv")
    # Still this batch's imports (undo deletes them), with the edit named, not applied.
    assert {r["status"] for r in rows} == {"imported"}
    assert all("friendlyName" in r["error"] for r in rows), skipped.stderr
    assert api.state.methods["PATCH"] == 0
    applied = _run(api, "run", file, "--resume", "--on-existing", "update")
    rows = read_results(tmp_path / "numbers.results.csv")
    assert {r["status"] for r in rows} == {"imported"}, applied.stderr
    assert api.state.methods["PATCH"] == 5
    assert api.state.records[number(2)]["friendlyName"] == "Edited 2"


def test_library_undo_refuses_without_yes(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(api, "run", file).code == 0
    from bulk_import.errors import UsageError

    opts = RunOptions(
        file=tmp_path / "numbers.results.csv",
        base_url=api.url,
        api_key=API_KEY,
        command="undo",
        progress=False,
    )
    with pytest.raises(UsageError):
        run_import(opts, say=lambda _t: None, handle_signals=False)
    assert len(api.state.records) == 3
    asked: list[str] = []

    def no(what: str) -> bool:
        asked.append(what)
        return False

    with pytest.raises(UsageError, match="cancelled"):
        run_import(dataclasses.replace(opts, confirm=no), say=lambda _t: None)
    assert asked == [f"undo: will delete 3 number(s) and restore 0 at {api.url}"]
    assert len(api.state.records) == 3
    summary = run_import(dataclasses.replace(opts, confirm=lambda _what: True), say=lambda _t: None)
    assert summary.exit_code == 0
    assert summary.counts["deleted"] == 3
    assert not api.state.records


def test_undo_of_an_update_without_its_journal_says_so(api: Any, tmp_path: Path) -> None:
    api.state.records[number(0)] = {"sipPhoneNumber": number(0), "friendlyName": "Old"}
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(0), "New"]])
    assert _run(api, "update", edits).code == 0
    (tmp_path / "edits.update.csv.journal").unlink()
    done = _run(api, "undo", tmp_path / "edits.update.csv", "--yes")
    assert "no journal beside" in done.stderr
    (row,) = read_results(tmp_path / "edits.update.undo.csv")
    assert row["status"] == "failed"
    assert "no record of its old values" in row["error"]
    assert done.code == 1
    assert api.state.records[number(0)]["friendlyName"] == "New"


def test_a_patch_in_doubt_resumes_as_updated(api: Any, tmp_path: Path) -> None:
    """Killed after the PATCH was sent, before its answer: the resume finds the record as
    sent and reports ``updated`` (not ``imported``), keeping the record from before."""
    from bulk_import.ledger import Account, Journal
    from bulk_import.models import Job
    from bulk_import.payloads import ImportRequest
    from bulk_import.record import journal_path

    file = tmp_path / "numbers.csv"
    write_numbers(file, 1)
    n = number(0)
    old = {"sipPhoneNumber": n, "friendlyName": "Old", "terminationSipURI": "sip.telnyx.com"}
    api.state.records[n] = {**old, "active": True}
    results = tmp_path / "numbers.results.csv"
    request = ImportRequest.model_validate(
        {
            "phoneNumber": n,
            "trunkUsername": "user0",
            "trunkPassword": PASSWORD,
            "terminationSipURI": "sip.telnyx.com",
            "friendlyName": "Line 0",
        }
    )
    account = Account(api.url, API_KEY)
    with Journal(journal_path(results), resume=False, account=account) as journal:
        journal.sending(Job(2, request))
        journal.keep_before(
            n,
            {"phoneNumber": n, "friendlyName": "Old", "terminationSipURI": "sip.telnyx.com"},
            {"friendlyName": "Line 0", "trunkPassword": None},
            ["friendlyName", "trunkPassword"],
        )
    api.state.records[n]["friendlyName"] = "Line 0"  # the PATCH landed; its answer was lost
    done = _run(api, "run", file, "--resume", "--on-existing", "update")
    (row,) = read_results(results)
    assert row["status"] == "updated", done.stderr
    assert "friendlyName: 'Old' -> 'Line 0'" in row["changes"]
    assert api.state.methods["PATCH"] == 0
    undo = _run(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert api.state.records[n]["friendlyName"] == "Old"
    (undone,) = read_results(tmp_path / "numbers.results.undo.csv")
    assert "trunkPassword: can't be put back" in undone["error"]


def test_pager_follows_every_shape_and_stops_on_a_loop() -> None:
    from bulk_import.api import Pager

    def rec(i: int) -> dict[str, str]:
        return {"sipPhoneNumber": number(i)}

    pager = Pager(page_size=2)
    assert pager.next_request() == (None, {"limit": "2"})
    pager.take({"items": [rec(0), rec(1)], "next": "http://h/v1/phone-numbers?offset=2"})
    assert pager.next_request() == ("http://h/v1/phone-numbers?offset=2", None)
    pager.take({"phoneNumbers": [rec(1), rec(2)], "cursor": "c3"})  # rec(1) again: once only
    assert pager.next_request() == (None, {"limit": "2", "cursor": "c3"})
    got = pager.take({"results": [rec(3)], "page": 4, "totalPages": 5})
    assert [r.sip_phone_number for r in got] == [number(3)]
    assert pager.next_request() == (None, {"limit": "2", "page": "5"})
    pager.take({"results": [rec(4)], "page": 5, "hasMore": False})
    assert pager.next_request() is None

    looping = Pager()
    looping.take({"data": [rec(0)], "nextCursor": "same"})
    looping.take({"data": [rec(1)], "nextCursor": "same"})
    assert looping.next_request() is None
    plain = Pager()
    assert len(plain.take([rec(0), rec(1)])) == 2
    assert plain.next_request() is None


def test_a_next_page_on_another_host_is_not_followed() -> None:
    import asyncio

    from bulk_import.api import SigmaMindAPI
    from bulk_import.errors import ApiError

    async def go() -> None:
        async with SigmaMindAPI("http://127.0.0.1:9", API_KEY) as api:
            with pytest.raises(ApiError, match="another host"):
                await api.list_page("http://evil.example/v1/phone-numbers?cursor=x")

    asyncio.run(go())


def test_kill_during_update_then_resume_patches_each_once(api: Any, tmp_path: Path) -> None:
    api.state.records.update(
        {
            number(i): {"sipPhoneNumber": number(i), "friendlyName": f"Old {i}", "active": True}
            for i in range(300)
        }
    )
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(i), f"New {i}"] for i in range(300)])
    args = ["update", str(edits), "--base-url", api.url, "--no-progress", "--rate", "150"]
    proc = subprocess.Popen(cli_command(*args), env=cli_env(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while api.state.methods["PATCH"] < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < api.state.methods["PATCH"] < 300
    done = run_cli(*args, "--resume")
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "edits.update.csv")
    assert len(rows) == 300
    assert {r["status"] for r in rows} == {"updated"}
    assert all(len(api.state.patches[number(i)]) == 1 for i in range(300))
    assert all(api.state.records[number(i)]["friendlyName"] == f"New {i}" for i in range(300))
    undo = run_cli("undo", str(tmp_path / "edits.update.csv"), "--base-url", api.url, "--yes")
    assert undo.code == 0, undo.stderr
    assert all(api.state.records[number(i)]["friendlyName"] == f"Old {i}" for i in range(300))


def test_run_on_existing_update_with_only_the_number_column(api: Any, tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    write_numbers(seed, 2)
    assert _run(api, "run", seed).code == 0
    file = tmp_path / "agents.csv"
    _write(
        file,
        ["Phone Number", "Inbound Agent ID"],
        [[number(0), "agt-9"], [number(1), ""], [number(5), "agt-9"]],
    )
    done = _run(api, "run", file, "--on-existing", "update")
    rows = {r["phone_number"]: r for r in read_results(tmp_path / "agents.results.csv")}
    assert rows[number(0)]["status"] == "updated"
    assert rows[number(0)]["changes"] == "inboundAgentId: (none) -> 'agt-9'"
    assert rows[number(1)]["status"] == "unchanged"
    assert rows[number(5)]["status"] == "invalid"
    assert rows[number(5)]["error"].startswith("trunkUsername: required to import a new number")
    assert done.code == 1
    assert api.state.patches[number(0)] == [{"inboundAgentId": "agt-9"}]
    assert number(5) not in api.state.records


def test_undo_of_run_on_existing_update_leaves_unknown_fields(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 2)
    assert _run(api, "run", file).code == 0
    write_numbers(file, 2, friendly="Moved")
    done = _run(api, "run", file, "--on-existing", "update")
    assert done.code == 0, done.stderr
    assert {r["status"] for r in read_results(tmp_path / "numbers.results.csv")} == {"updated"}
    undo = _run(api, "undo", tmp_path / "numbers.results.csv", "--yes")
    assert undo.code == 0, undo.stderr
    rows = read_results(tmp_path / "numbers.results.undo.csv")
    assert {r["status"] for r in rows} == {"restored"}
    assert all("trunkPassword: can't be put back" in r["error"] for r in rows)
    assert all("trunkUsername: can't be put back" in r["error"] for r in rows)
    assert api.state.records[number(1)]["friendlyName"] == "Line 1"
    assert api.state.records[number(1)]["trunkUsername"] == "user1"  # never cleared
    assert api.state.patches[number(1)][-1] == {"friendlyName": "Line 1"}
