"""Adversarial probes of the ledger, second pass (docs/contract.md, "A batch is a ledger"):
lost answers to DELETE and PATCH, edited results files, another key or another batch's
journal, two processes at once, export -> edit -> update.

Each drives the real CLI over loopback HTTP against the sandbox, with an account that
already holds numbers (some with the file's values, some with others, and one the file
never names), and asserts the account's end state exactly.  The sandbox's faults are
scripted write by write (``_Script``), with ``--concurrency 1`` so the order is known.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bulk_import.sandbox import SandboxConfig, SandboxServer
from bulk_import.sandbox.faults import FaultDice
from bulk_import.sandbox.settings import Fault

from support import (
    API_KEY,
    cli_command,
    cli_env,
    number,
    read_results,
    run_cli,
    write_numbers,
)

DROP = Fault.DROP_AFTER_STORE
#: A number the account holds that no file of these probes names.
BYSTANDER = number(50)


class _Script(FaultDice):
    """The sandbox's faults for its next writes (POST, PATCH, DELETE), in order; then none."""

    def __init__(self, *faults: Fault | None) -> None:
        super().__init__(SandboxConfig())
        self._script = list(faults)

    def roll(self) -> Fault | None:
        return self._script.pop(0) if self._script else None


@pytest.fixture
def api(sandbox_factory: Any) -> SandboxServer:
    """An account holding numbers 0 and 1 as ``write_numbers`` writes them, 2 with another
    friendly name, and ``BYSTANDER``."""
    server: SandboxServer = sandbox_factory(api_key=API_KEY)
    for i, friendly in ((0, "Line 0"), (1, "Line 1"), (2, "Other 2"), (50, "Kept 50")):
        server.state.records[number(i)] = _held(number(i), friendly, f"user{i}")
    return server


def _held(phone: str, friendly: str, user: str = "someone") -> dict[str, object]:
    """A stored record as the sandbox keeps it, with the fields ``write_numbers`` gives."""
    return {
        "sipPhoneNumber": phone,
        "inboundAgentId": None,
        "outboundAgentId": None,
        "outboundPhoneNumber": None,
        "active": True,
        "terminationSipURI": "sip.telnyx.com",
        "friendlyName": friendly,
        "trunkUsername": user,
        "trunkPassword": "held-before",
    }


def _visible(server: SandboxServer) -> dict[str, dict[str, object]]:
    """The account as the API shows it (every stored field but the password)."""
    return {
        n: {k: v for k, v in r.items() if k != "trunkPassword"}
        for n, r in sorted(server.state.records.items())
    }


def _cli(server: SandboxServer, command: str, file: Path, *extra: str, **kw: Any) -> Any:
    args = [command, str(file), "--base-url", server.url, "--no-progress", *extra]
    return run_cli(*args, **kw)


def _status(path: Path) -> dict[str, str]:
    return {r["phone_number"]: r["status"] for r in read_results(path)}


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _kept(results: Path) -> Path:
    """The earlier batch a plain re-run kept beside ``results``."""
    (kept,) = [
        p
        for p in results.parent.glob(f"{results.stem}.*{results.suffix}")
        if p != results and ".undo" not in p.name and not p.name.endswith(".journal")
    ]
    return kept


def _imported_run(api: SandboxServer, tmp_path: Path, count: int = 6) -> tuple[Path, Path]:
    """``run`` (skip) of numbers 0..count-1: 0-2 already_exists, the rest imported."""
    src = tmp_path / "numbers.csv"
    write_numbers(src, count)
    done = _cli(api, "run", src)
    assert done.code == 0, done.stderr
    results = tmp_path / "numbers.results.csv"
    want = {number(i): "already_exists" if i < 3 else "imported" for i in range(count)}
    assert _status(results) == want
    return src, results


# 1 -- lost answers to DELETE and PATCH -----------------------------------------------------


def test_a_lost_delete_answer_in_undo_is_deleted_and_the_next_undo_sends_nothing(
    api: SandboxServer, tmp_path: Path
) -> None:
    before = _visible(api)
    _, results = _imported_run(api, tmp_path)
    api.state.dice = _Script(DROP)  # the first DELETE is applied, its answer lost
    api.state.methods.clear()
    undo = _cli(api, "undo", results, "--yes", "--concurrency", "1")
    assert undo.code == 0, undo.stderr
    rows = read_results(tmp_path / "numbers.results.undo.csv")
    assert {r["phone_number"]: r["status"] for r in rows} == {
        number(i): "deleted" for i in (3, 4, 5)
    }
    assert api.state.faults[DROP] == 1
    # The lost DELETE is not sent again: a read finds it gone (ours did it); counted.
    assert api.state.methods["DELETE"] == 3
    assert [r["attempts"] for r in rows] == ["1", "1", "1"]
    assert dict(api.state.deleted) == {number(i): 1 for i in (3, 4, 5)}
    assert _visible(api) == before
    api.state.methods.clear()
    again = _cli(api, "undo", results, "--yes")
    assert again.code == 0, again.stderr
    assert set(_status(tmp_path / "numbers.results.undo.csv").values()) == {"already_undone"}
    assert api.state.writes == 0
    assert _visible(api) == before


class _RecreatedMeanwhile(_Script):
    """The first DELETE is applied and its answer lost; right after, someone else imports
    the number again, with their own values."""

    def __init__(self, server: SandboxServer, phone: str) -> None:
        super().__init__(DROP)
        self._records = server.state.records
        self._phone = phone

    def roll(self) -> Fault | None:
        fault = super().roll()
        if fault is DROP:  # runs once the handler has deleted it (in the same loop turn)
            asyncio.get_running_loop().call_soon(self._import_again)
        return fault

    def _import_again(self) -> None:
        assert self._phone not in self._records
        record = _held(self._phone, "Someone else's")
        self._records[self._phone] = {**record, "terminationSipURI": "sip.other.example"}


def test_a_lost_delete_is_settled_by_a_read_not_sent_again(
    api: SandboxServer, tmp_path: Path
) -> None:
    """Broke: the retry sent the lost DELETE again with no read between, and deleted
    the number someone else had imported meanwhile, never compared with what the batch
    created.  Now the retry reads first: the record no longer shows the batch's values,
    so it is ``changed_since`` and left."""
    before = _visible(api)
    _, results = _imported_run(api, tmp_path, count=4)
    api.state.dice = _RecreatedMeanwhile(api, number(3))
    undo = _cli(api, "undo", results, "--yes", "--concurrency", "1")
    assert "Traceback" not in undo.stderr
    assert set(api.state.records) == set(before) | {number(3)}  # someone else's: kept
    assert api.state.records[number(3)]["friendlyName"] == "Someone else's"
    assert _status(tmp_path / "numbers.results.undo.csv")[number(3)] == "changed_since"
    assert api.state.methods["DELETE"] == 1  # the lost one, never sent again
    assert undo.code == 1, undo.stderr


class _ChangedMeanwhile(_Script):
    """The first write (undo's PATCH back) is applied and its answer lost; right after,
    someone else renames the number."""

    def __init__(self, server: SandboxServer, phone: str) -> None:
        super().__init__(DROP)
        self._records = server.state.records
        self._phone = phone

    def roll(self) -> Fault | None:
        fault = super().roll()
        if fault is DROP:  # runs once the handler has applied the PATCH
            asyncio.get_running_loop().call_soon(self._rename)
        return fault

    def _rename(self) -> None:
        self._records[self._phone]["friendlyName"] = "Someone else's"


def test_a_lost_restore_is_settled_by_a_read_not_sent_again(
    api: SandboxServer, tmp_path: Path
) -> None:
    """Broke: undo's PATCH back, its answer lost, was sent again with no read between,
    overwriting a change someone made meanwhile.  Now the retry reads first: the record
    shows neither what the batch set nor what undo put back, so it is ``changed_since``."""
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(2), "New 2"]])
    assert _cli(api, "update", edits).code == 0
    api.state.dice = _ChangedMeanwhile(api, number(2))
    api.state.methods.clear()
    undo = _cli(api, "undo", tmp_path / "edits.update.csv", "--yes")
    assert "Traceback" not in undo.stderr
    assert api.state.records[number(2)]["friendlyName"] == "Someone else's"
    assert api.state.methods["PATCH"] == 1  # the lost one, never sent again
    assert _status(tmp_path / "edits.update.undo.csv") == {number(2): "changed_since"}
    assert undo.code == 1, undo.stderr


def test_a_lost_delete_with_no_retry_left_then_undo_again(
    api: SandboxServer, tmp_path: Path
) -> None:
    """``--max-attempts 1``: the lost DELETE's row ends ``failed`` (exit 1); a plain second
    undo finds it gone and deletes nothing else; the account is as before."""
    before = _visible(api)
    _, results = _imported_run(api, tmp_path)
    api.state.dice = _Script(DROP)
    undo = _cli(api, "undo", results, "--yes", "--concurrency", "1", "--max-attempts", "1")
    assert undo.code == 1, undo.stderr
    first = _status(tmp_path / "numbers.results.undo.csv")
    assert first[number(3)] == "failed"
    assert first[number(4)] == first[number(5)] == "deleted"
    assert _visible(api) == before  # the lost DELETE was applied
    api.state.methods.clear()
    again = _cli(api, "undo", results, "--yes")
    assert again.code == 0, again.stderr
    second = _status(tmp_path / "numbers.results.undo.csv")
    assert second[number(4)] == second[number(5)] == "already_undone"
    assert second[number(3)] in ("deleted", "not_found")
    assert api.state.methods["DELETE"] == 0 or second[number(3)] == "deleted"
    assert _visible(api) == before
    assert dict(api.state.deleted) == {number(i): 1 for i in (3, 4, 5)}


def test_update_with_a_lost_patch_answer_then_again_then_undo(
    api: SandboxServer, tmp_path: Path
) -> None:
    """``update``: 0 unchanged, 1 and 2 PATCHed (1's answer lost), 7 not held: not_found,
    never POSTed (exit 1).  The same update again changes nothing; undo of it sends
    nothing; undo of the earlier batch (kept beside it) puts 1 and 2 back."""
    before = _visible(api)
    edits = tmp_path / "edits.csv"
    _write(
        edits,
        ["phoneNumber", "friendlyName"],
        [[number(0), "Line 0"], [number(1), "New 1"], [number(2), "New 2"], [number(7), "N 7"]],
    )
    results = tmp_path / "edits.update.csv"
    api.state.dice = _Script(DROP)
    first = _cli(api, "update", edits, "--concurrency", "1")
    assert first.code == 1, first.stderr
    want = {number(0): "unchanged", number(7): "not_found"}
    assert _status(results) == {**want, number(1): "updated", number(2): "updated"}
    assert api.state.methods["POST"] == 0
    assert api.state.faults[DROP] == 1
    after = {**before}
    for i in (1, 2):
        after[number(i)] = {**before[number(i)], "friendlyName": f"New {i}"}
    assert _visible(api) == after
    again = _cli(api, "update", edits)
    assert again.code == 1, again.stderr
    assert _status(results) == {**want, number(1): "unchanged", number(2): "unchanged"}
    assert api.state.methods["POST"] == 0
    assert _visible(api) == after
    api.state.methods.clear()
    undo_latest = _cli(api, "undo", results, "--yes")
    assert undo_latest.code == 0, undo_latest.stderr
    assert api.state.writes == 0
    undo = _cli(api, "undo", _kept(results), "--yes")
    assert undo.code == 0, undo.stderr
    assert api.state.methods["PATCH"] == 2
    assert _visible(api) == before


def test_run_on_existing_update_with_a_lost_patch_then_again_then_undo_both(
    api: SandboxServer, tmp_path: Path
) -> None:
    """``run --on-existing update`` of 0..4: the held 0-2 are PATCHed (the password is
    always a change), 0's answer lost; 3, 4 imported.  The same run again PATCHes each
    (the password again); undo of it, then of the earlier batch, leaves the account as it
    was, the bystander untouched."""
    before = _visible(api)
    src = tmp_path / "numbers.csv"
    write_numbers(src, 5)
    results = tmp_path / "numbers.results.csv"
    api.state.dice = _Script(None, DROP)  # 0's POST (409), then its PATCH: answer lost
    first = _cli(api, "run", src, "--on-existing", "update", "--concurrency", "1")
    assert first.code == 0, first.stderr
    want = {number(i): "updated" if i < 3 else "imported" for i in range(5)}
    assert _status(results) == want
    assert api.state.faults[DROP] == 1
    assert api.state.records[number(2)]["friendlyName"] == "Line 2"
    again = _cli(api, "run", src, "--on-existing", "update")
    assert again.code == 0, again.stderr
    assert set(_status(results).values()) == {"updated"}  # the password, sent again
    undo_latest = _cli(api, "undo", results, "--yes")
    assert undo_latest.code == 0, undo_latest.stderr
    assert set(_status(tmp_path / "numbers.results.undo.csv").values()) == {"restored"}
    assert set(api.state.records) == set(before) | {number(3), number(4)}
    undo = _cli(api, "undo", _kept(results), "--yes")
    assert undo.code == 0, undo.stderr
    assert _visible(api) == before
    assert api.state.records[BYSTANDER]["trunkPassword"] == "held-before"
    assert dict(api.state.created) == {number(3): 1, number(4): 1}


# 2 -- an edited results file ---------------------------------------------------------------


def test_an_edited_results_file_is_undone_by_the_ledger(api: SandboxServer, tmp_path: Path) -> None:
    """Row of 5 removed, row of 4 retyped to 0 (held before), 1 edited to ``imported``,
    row of 3 duplicated: only 3 is deleted, once; the rest is left (exit 1).  Undo of
    the file as it was then deletes 4 and 5."""
    before = _visible(api)
    _, results = _imported_run(api, tmp_path)
    original = read_results(results)
    rows = [dict(r) for r in original]
    by = {r["phone_number"]: r for r in rows}
    by[number(1)]["status"] = "imported"
    by[number(4)]["phone_number"] = number(0)
    rows.remove(by[number(5)])
    rows.append(dict(by[number(3)]))
    _rewrite(results, rows)
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 1, undo.stderr
    undone = read_results(tmp_path / "numbers.results.undo.csv")
    assert {(r["row"], r["phone_number"], r["status"]) for r in undone} == {
        ("3", number(1), "skipped"),  # edited to imported: the journal says already_exists
        ("5", number(3), "deleted"),  # its copy (row 5 again) left, with a note
        ("6", number(0), "skipped"),  # retyped to a number held before the batch
    }
    assert "row 5 is listed twice" in undo.stderr
    assert dict(api.state.deleted) == {number(3): 1}
    assert set(api.state.records) == set(before) | {number(4), number(5)}
    assert {n: r for n, r in _visible(api).items() if n in before} == before
    _rewrite(results, original)
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert _status(tmp_path / "numbers.results.undo.csv") == {
        number(3): "already_undone",
        number(4): "deleted",
        number(5): "deleted",
    }
    assert _visible(api) == before


def test_undo_of_a_file_with_rows_removed_does_not_close_the_batch(
    api: SandboxServer, tmp_path: Path
) -> None:
    """Every row left in the edited file is undone (exit 0): the batch is not finished,
    and undo of the file as it was deletes the numbers the edit hid."""
    before = _visible(api)
    _, results = _imported_run(api, tmp_path)
    original = read_results(results)
    _rewrite(results, [r for r in original if r["phone_number"] != number(5)])
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert set(api.state.records) == set(before) | {number(5)}
    _rewrite(results, original)
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert _status(tmp_path / "numbers.results.undo.csv")[number(5)] == "deleted"
    assert _visible(api) == before


def test_a_number_pasted_onto_another_imported_row_is_acted_on_once(
    api: SandboxServer, tmp_path: Path
) -> None:
    """Row of 4 retyped to 3 (another number of the batch): 3 is deleted by its own row,
    the pasted row is ``skipped``, and 4 is left (exit 1)."""
    before = _visible(api)
    _, results = _imported_run(api, tmp_path, count=5)
    rows = read_results(results)
    rows[4]["phone_number"] = number(3)
    _rewrite(results, rows)
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 1, undo.stderr
    undone = {r["row"]: r for r in read_results(tmp_path / "numbers.results.undo.csv")}
    assert {k: r["status"] for k, r in undone.items()} == {"5": "deleted", "6": "skipped"}
    assert "listed again in the results file (row 5)" in undone["6"]["error"]
    assert dict(api.state.deleted) == {number(3): 1}
    assert set(api.state.records) == set(before) | {number(4)}


def test_an_edited_file_meeting_an_in_doubt_row(api: SandboxServer, tmp_path: Path) -> None:
    """3's POST stored, its answer lost, no retry left: ``failed``, in doubt.  Its row
    edited to ``imported``, or removed: undo leaves 3 and does not close the batch;
    ``--resume`` settles it as imported; undo then deletes it."""
    before = _visible(api)
    src = tmp_path / "numbers.csv"
    write_numbers(src, 5)
    results = tmp_path / "numbers.results.csv"
    api.state.dice = _Script(None, None, None, DROP)  # 0-2's POSTs (409), then 3's
    run = _cli(api, "run", src, "--concurrency", "1", "--max-attempts", "1")
    assert run.code == 1, run.stderr
    rows = read_results(results)
    by = {r["phone_number"]: r for r in rows}
    assert by[number(3)]["status"] == "failed"
    assert "may have been stored" in by[number(3)]["error"]
    assert by[number(4)]["status"] == "imported"
    by[number(3)]["status"] = "imported"
    _rewrite(results, rows)
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 1, undo.stderr
    assert _status(tmp_path / "numbers.results.undo.csv") == {
        number(3): "skipped",
        number(4): "deleted",
    }
    assert set(api.state.records) == set(before) | {number(3)}
    _rewrite(results, [r for r in rows if r["phone_number"] != number(3)])
    undo = _cli(api, "undo", results, "--yes")  # the in-doubt row is gone from the file
    assert undo.code == 0, undo.stderr
    assert set(api.state.records) == set(before) | {number(3)}
    resume = _cli(api, "run", src, "--resume")
    assert resume.code == 0, resume.stderr
    assert _status(results)[number(3)] == "imported"
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert _status(tmp_path / "numbers.results.undo.csv")[number(3)] == "deleted"
    assert _visible(api) == before


# 3 -- another key, a copied results file, another batch's journal --------------------------


def test_undo_with_another_key_is_refused_and_the_sandbox_refuses_it_too(
    api: SandboxServer, tmp_path: Path
) -> None:
    before = _visible(api)
    _, results = _imported_run(api, tmp_path)
    held = _visible(api)
    api.state.methods.clear()
    other = cli_env("sk-someone-else-0000")
    refused = _cli(api, "undo", results, "--yes", env=other)
    assert refused.code == 2, refused.stderr
    assert "another API key" in refused.stderr
    assert "sk-someone-else" not in refused.stderr
    assert API_KEY not in refused.stderr
    assert sum(api.state.methods.values()) == 0
    meant = _cli(api, "undo", results, "--yes", "--other-account", env=other)
    assert meant.code == 3, meant.stderr  # the sandbox knows only the run's key: 403
    assert api.state.writes == 0
    assert _visible(api) == held
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert _visible(api) == before


def test_a_results_file_copied_elsewhere_then_the_original(
    api: SandboxServer, tmp_path: Path
) -> None:
    """The copy has no journal: undo says so and deletes its ``imported`` rows only; the
    original's undo then finds them gone (``not_found``) and touches nothing else."""
    before = _visible(api)
    _, results = _imported_run(api, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / results.name
    shutil.copy(results, copy)
    undo = _cli(api, "undo", copy, "--yes")
    assert undo.code == 0, undo.stderr
    assert "no journal beside" in undo.stderr
    assert _visible(api) == before
    api.state.methods.clear()
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert set(_status(tmp_path / "numbers.results.undo.csv").values()) == {"not_found"}
    assert api.state.writes == 0
    assert _visible(api) == before


def test_a_journal_of_another_batch_beside_the_results(api: SandboxServer, tmp_path: Path) -> None:
    """Batch X imported 10-12, batch Y 3-5; X's journal put beside Y's results: every
    row disagrees with that ledger, so nothing is sent (exit 1)."""
    xdir, ydir = tmp_path / "x", tmp_path / "y"
    xdir.mkdir()
    ydir.mkdir()
    write_numbers(xdir / "numbers.csv", 3, start=10)
    assert _cli(api, "run", xdir / "numbers.csv").code == 0
    _, yresults = _imported_run(api, ydir)
    held = _visible(api)
    journal = Path(f"{yresults}.journal")
    journal.unlink()
    shutil.copy(xdir / "numbers.results.csv.journal", journal)
    api.state.methods.clear()
    undo = _cli(api, "undo", yresults, "--yes")
    assert undo.code == 1, undo.stderr
    assert set(_status(ydir / "numbers.results.undo.csv").values()) == {"skipped"}
    assert api.state.writes == 0
    assert _visible(api) == held


# 4 -- two processes at once ----------------------------------------------------------------


def _slow_undo(api: SandboxServer, results: Path) -> subprocess.Popen[str]:
    """An undo that takes a while (the sandbox answers 30 ms late), started once its
    first DELETE has left."""
    api.app._latency = 0.03
    args = ["undo", str(results), "--base-url", api.url, "--no-progress", "--yes"]
    proc = subprocess.Popen(
        cli_command(*args, "--concurrency", "1"),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while api.state.methods["DELETE"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the undo ended before the probe could meet it"
    return proc


@pytest.mark.parametrize("second", ["undo", "resume"])
def test_a_second_process_while_undo_runs_gets_75(
    api: SandboxServer, tmp_path: Path, second: str
) -> None:
    before = _visible(api)
    src, results = _imported_run(api, tmp_path, count=40)
    api.state.methods.clear()
    proc = _slow_undo(api, results)
    try:
        if second == "undo":
            other = _cli(api, "undo", results, "--yes", "-o", str(tmp_path / "other.csv"))
        else:
            other = _cli(api, "run", src, "--resume")
        assert other.code == 75, other.stderr
    finally:
        _, err = proc.communicate(timeout=60)
    api.app._latency = 0.0
    assert proc.returncode == 0, err
    assert dict(api.state.deleted) == {number(i): 1 for i in range(3, 40)}
    assert api.state.methods["POST"] == 0
    assert _visible(api) == before


# 5 -- export -> edit -> update -------------------------------------------------------------


def test_export_edit_update_patches_only_the_files_numbers_and_never_posts(
    api: SandboxServer, tmp_path: Path
) -> None:
    """An export, with 1's name edited, 2's row removed and a row for 9 (not held) added:
    one PATCH (1's name, nothing else), 9 not_found and never POSTed (exit 1); undo puts
    1 back."""
    before = _visible(api)
    export = tmp_path / "account.csv"
    done = run_cli("export", str(export), "--base-url", api.url, "--no-progress")
    assert done.code == 0, done.stderr
    with export.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["phoneNumber"] for r in rows] == [number(i) for i in (0, 1, 2, 50)]
    rows = [r for r in rows if r["phoneNumber"] != number(2)]
    rows[1]["friendlyName"] = "Renamed 1"
    rows.append({**rows[0], "phoneNumber": number(9), "friendlyName": "New 9"})
    _rewrite(export, rows)
    api.state.methods.clear()
    update = _cli(api, "update", export)
    assert update.code == 1, update.stderr
    results = tmp_path / "account.update.csv"
    assert _status(results) == {
        number(0): "unchanged",
        number(1): "updated",
        number(50): "unchanged",
        number(9): "not_found",
    }
    assert api.state.methods["POST"] == 0
    assert api.state.methods["DELETE"] == 0
    assert api.state.patches == {number(1): [{"friendlyName": "Renamed 1"}]}
    assert _visible(api) == {
        **before,
        number(1): {**before[number(1)], "friendlyName": "Renamed 1"},
    }
    undo = _cli(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert _visible(api) == before
    assert api.state.records[number(1)]["trunkPassword"] == "held-before"
