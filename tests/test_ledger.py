"""A batch is a ledger: undo, update and resume never touch what the batch did not do.

Each test drives the real CLI over loopback HTTP against the sandbox, against an account
that already holds numbers, with edited files, a second account, two processes at once,
and lost answers to PATCH and DELETE as well as POST (docs/contract.md, "A batch is a
ledger").
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bulk_import.sandbox.faults import FaultDice
from bulk_import.sandbox.settings import SandboxConfig

from support import (
    API_KEY,
    PASSWORD,
    cli_command,
    cli_env,
    number,
    read_results,
    run_cli,
    write_numbers,
)


@pytest.fixture
def api(sandbox_factory: Any) -> Any:
    return sandbox_factory(api_key=API_KEY)


def _run(server: Any, command: str, file: Path, *extra: str) -> Any:
    return run_cli(command, str(file), "--base-url", server.url, "--no-progress", *extra)


def _hold(server: Any, *indexes: int, friendly: str = "Line") -> None:
    """The account holds these numbers already, with the values write_numbers gives."""
    for i in indexes:
        server.state.records[number(i)] = {
            "sipPhoneNumber": number(i),
            "terminationSipURI": "sip.telnyx.com",
            "friendlyName": f"{friendly} {i}",
            "inboundAgentId": None,
            "outboundAgentId": None,
            "outboundPhoneNumber": None,
            "active": True,
        }


def _faults(server: Any, **rates: Any) -> None:
    """Change the sandbox's injected faults from now on (same server, same account)."""
    server.state.dice = FaultDice(SandboxConfig(api_key=API_KEY, seed=3, **rates))


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _status(path: Path) -> dict[str, str]:
    return {r["phone_number"]: r["status"] for r in read_results(path)}


# 1 -----------------------------------------------------------------------------------------


def test_update_never_posts_an_unknown_number_is_not_found(api: Any, tmp_path: Path) -> None:
    _hold(api, 0, friendly="Old")
    file = tmp_path / "numbers.csv"
    write_numbers(file, 2)  # every import column, for a number held and one not
    done = _run(api, "update", file)
    status = _status(tmp_path / "numbers.update.csv")
    assert status == {number(0): "updated", number(1): "not_found"}, done.stderr
    assert api.state.methods["POST"] == 0
    assert number(1) not in api.state.records
    assert api.state.records[number(0)]["friendlyName"] == "Line 0"  # patched, not skipped
    assert done.code == 1


# 2 -----------------------------------------------------------------------------------------


def test_a_number_that_existed_before_is_never_imported_nor_deleted_by_undo(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    server = sandbox_factory(api_key=API_KEY, fail_rate=0.3, seed=7)
    _hold(server, *range(20))
    file = tmp_path / "numbers.csv"
    write_numbers(file, 20)
    done = _run(server, "run", file, "--max-attempts", "8")
    status = _status(tmp_path / "numbers.results.csv")
    assert set(status.values()) == {"already_exists"}, done.stderr
    assert server.state.faults["fail"] > 0  # some first POSTs got a 500, their retry a 409
    assert not server.state.created
    undo = _run(server, "undo", tmp_path / "numbers.results.csv", "--yes")
    assert "will delete 0 number(s)" in undo.stderr
    assert server.state.methods["DELETE"] == 0
    assert set(server.state.records) == {number(i) for i in range(20)}


def test_a_lost_post_of_a_number_absent_before_is_imported_and_undone(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    server = sandbox_factory(api_key=API_KEY, drop_after_store_rate=0.5, seed=5)
    _hold(server, 100)  # the account is not empty: it is listed before the first POST
    file = tmp_path / "numbers.csv"
    write_numbers(file, 30)
    done = _run(server, "run", file, "--max-attempts", "8")
    assert done.code == 0, done.stderr
    assert set(_status(tmp_path / "numbers.results.csv").values()) == {"imported"}
    assert server.state.faults["drop_after_store"] > 0
    assert _run(server, "undo", tmp_path / "numbers.results.csv", "--yes").code == 0
    assert set(server.state.records) == {number(100)}


# 3 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["update", "run"])
def test_a_patch_whose_answer_is_lost_stays_in_doubt_and_is_undone(
    api: Any, tmp_path: Path, command: str
) -> None:
    _hold(api, 0, 1, friendly="Old")
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(0), "New 0"], [number(1), "New 1"]])
    extra = ("--on-existing", "update") if command == "run" else ()
    results = tmp_path / ("edits.update.csv" if command == "update" else "edits.results.csv")
    _faults(api, drop_after_store_rate=1.0)  # every PATCH is applied, its answer lost
    first = _run(api, command, edits, *extra, "--max-attempts", "2")
    assert set(_status(results).values()) == {"failed"}, first.stderr
    _faults(api)
    resumed = _run(api, command, edits, *extra, "--resume")
    assert resumed.code == 0, resumed.stderr
    assert set(_status(results).values()) == {"updated"}  # not "unchanged"
    undo = _run(api, "undo", results, "--yes")
    assert undo.code == 0, undo.stderr
    assert {api.state.records[number(i)]["friendlyName"] for i in (0, 1)} == {"Old 0", "Old 1"}


# 4 -----------------------------------------------------------------------------------------


def test_update_resumed_with_an_edit_keeps_the_first_record_for_undo(
    api: Any, tmp_path: Path
) -> None:
    _hold(api, 0, friendly="Old")
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(0), "First"]])
    assert _run(api, "update", edits).code == 0
    _write(edits, ["phoneNumber", "friendlyName"], [[number(0), "Second"]])
    again = _run(api, "update", edits, "--resume", "--on-existing", "update")
    assert again.code == 0, again.stderr
    assert api.state.records[number(0)]["friendlyName"] == "Second"
    assert _run(api, "undo", tmp_path / "edits.update.csv", "--yes").code == 0
    assert api.state.records[number(0)]["friendlyName"] == "Old 0"  # the first "before"


def test_resume_of_an_edited_file_keeps_what_the_batch_did(api: Any, tmp_path: Path) -> None:
    _hold(api, 1, friendly="Old")
    file = tmp_path / "numbers.csv"
    write_numbers(file, 2)
    assert _run(api, "run", file, "--on-existing", "update").code == 0
    assert _status(tmp_path / "numbers.results.csv") == {
        number(0): "imported",
        number(1): "updated",
    }
    write_numbers(file, 2, friendly="Edited")
    resumed = _run(api, "run", file, "--resume")
    assert _status(tmp_path / "numbers.results.csv") == {
        number(0): "imported",
        number(1): "updated",
    }, resumed.stderr
    assert _run(api, "undo", tmp_path / "numbers.results.csv", "--yes").code == 0
    assert set(api.state.records) == {number(1)}
    assert api.state.records[number(1)]["friendlyName"] == "Old 1"


# 6 -----------------------------------------------------------------------------------------


def test_undo_leaves_a_number_changed_since_unless_forced(api: Any, tmp_path: Path) -> None:
    _hold(api, 5, friendly="Old")
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(api, "run", file).code == 0
    edits = tmp_path / "edits.csv"
    _write(edits, ["phoneNumber", "friendlyName"], [[number(5), "Ours"]])
    assert _run(api, "update", edits).code == 0
    api.state.records[number(1)]["friendlyName"] = "Renamed by hand"  # after the batch
    api.state.records[number(5)]["friendlyName"] = "Theirs"
    undo = _run(api, "undo", tmp_path / "numbers.results.csv", "--yes")
    rows = {r["phone_number"]: r for r in read_results(tmp_path / "numbers.results.undo.csv")}
    assert undo.code == 1
    assert rows[number(1)]["status"] == "changed_since"
    assert rows[number(1)]["changes"] == "friendlyName: 'Line 1' -> 'Renamed by hand'"
    assert set(api.state.records) == {number(1), number(5)}
    restore = _run(api, "undo", tmp_path / "edits.update.csv", "--yes")
    (row,) = read_results(tmp_path / "edits.update.undo.csv")
    assert row["status"] == "changed_since", restore.stderr
    assert api.state.records[number(5)]["friendlyName"] == "Theirs"
    forced = _run(api, "undo", tmp_path / "numbers.results.csv", "--yes", "--force")
    assert forced.code == 0, forced.stderr
    assert set(api.state.records) == {number(5)}
    assert _run(api, "undo", tmp_path / "edits.update.csv", "--yes", "--force").code == 0
    assert api.state.records[number(5)]["friendlyName"] == "Old 5"


# 7 -----------------------------------------------------------------------------------------


def test_a_second_undo_sends_nothing_and_spares_a_later_import(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(api, "run", file).code == 0
    assert _run(api, "undo", tmp_path / "numbers.results.csv", "--yes").code == 0
    later = tmp_path / "later.csv"
    write_numbers(later, 3)
    assert _run(api, "run", later).code == 0  # another batch imports them again
    api.state.methods.clear()
    again = _run(api, "undo", tmp_path / "numbers.results.csv", "--yes")
    assert again.code == 0, again.stderr
    assert set(_status(tmp_path / "numbers.results.undo.csv").values()) == {"already_undone"}
    assert sum(api.state.methods.values()) == 0
    assert len(api.state.records) == 3


# 8 -----------------------------------------------------------------------------------------


def test_undo_against_another_account_is_refused(sandbox_factory: Any, tmp_path: Path) -> None:
    first = sandbox_factory(api_key=API_KEY)
    second = sandbox_factory(api_key=API_KEY)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(first, "run", file).code == 0
    _hold(second, 0, 1, 2)
    refused = _run(second, "undo", tmp_path / "numbers.results.csv", "--yes")
    assert refused.code == 2
    assert first.url in refused.stderr
    assert second.url in refused.stderr
    assert "--other-account" in refused.stderr
    assert sum(second.state.methods.values()) == 0
    assert len(second.state.records) == 3
    meant = _run(second, "undo", tmp_path / "numbers.results.csv", "--yes", "--other-account")
    assert meant.code == 0, meant.stderr
    assert not second.state.records


def test_the_ledger_names_the_account_by_a_fingerprint_of_the_key(tmp_path: Path) -> None:
    from bulk_import.ledger import Account, Journal, key_fingerprint

    path = tmp_path / "r.csv.journal"
    account = Account("https://api.example", API_KEY)
    with Journal(path, resume=False, account=account):
        pass
    raw = path.read_bytes()
    assert API_KEY.encode() not in raw
    with Journal(path, resume=True, account=account):
        pass  # the same account goes on
    from bulk_import.errors import UsageError

    with pytest.raises(UsageError, match="another API key"):
        Journal(path, resume=True, account=Account("https://api.example", "sk-other"))
    with Journal(path, resume=True, account=Account("https://x.example", "k"), other_account=True):
        pass
    salt = b"0" * 16
    assert key_fingerprint(API_KEY, salt) != key_fingerprint("sk-other", salt)


# 9 -----------------------------------------------------------------------------------------


def test_undo_is_refused_while_the_batch_is_still_running(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 200)
    results = tmp_path / "numbers.results.csv"
    args = ["run", str(file), "--base-url", api.url, "--no-progress", "--rate", "40"]
    proc = subprocess.Popen(
        cli_command(*args), env=cli_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while len(api.state.created) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        undo = _run(api, "undo", results, "--yes")
        assert undo.code == 75, undo.stderr
        assert api.state.methods["DELETE"] == 0
    finally:
        proc.kill()
        proc.communicate()


# 10 ----------------------------------------------------------------------------------------


def test_undo_acts_on_the_journal_not_on_edited_cells(api: Any, tmp_path: Path) -> None:
    _hold(api, 0)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 4)
    assert _run(api, "run", file).code == 0
    results = tmp_path / "numbers.results.csv"
    rows = read_results(results)
    assert [r["status"] for r in rows] == ["already_exists", "imported", "imported", "imported"]
    rows[0]["status"] = "imported"  # a pre-existing number, edited to "imported"
    rows[1]["phone_number"] = "+14155559999"  # a retyped number
    rows[2]["phone_number"] = ""  # an emptied cell
    with results.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    api.state.methods.clear()
    done = _run(api, "undo", results, "--yes")
    undone = {r["row"]: r for r in read_results(tmp_path / "numbers.results.undo.csv")}
    assert {undone[k]["status"] for k in ("2", "3", "4")} == {"skipped"}, done.stderr
    assert "the journal says already_exists" in undone["2"]["error"]
    assert "not a valid E.164 number" in undone["4"]["error"]
    assert undone["5"]["status"] == "deleted"
    assert api.state.methods["DELETE"] == 1
    assert set(api.state.records) == {number(0), number(1), number(2)}
    assert done.code == 1


def test_undo_without_a_journal_never_sends_for_a_cell_that_is_not_a_number(
    api: Any, tmp_path: Path
) -> None:
    results = tmp_path / "old.results.csv"
    _write(
        results,
        ["row", "phone_number", "status", "sip_phone_number", "http_status", "attempts", "error"],
        [
            ["2", "", "imported", "", "201", "1", ""],
            ["3", number(0), "imported", "", "201", "1", ""],
        ],
    )
    _hold(api, 0)
    done = _run(api, "undo", results, "--yes")
    assert "no journal beside" in done.stderr
    assert api.state.methods["DELETE"] == 1
    assert _status(tmp_path / "old.results.undo.csv") == {"": "skipped", number(0): "deleted"}


# 15 ----------------------------------------------------------------------------------------


def test_the_journal_holds_no_hash_of_a_password_that_its_salt_could_check(
    api: Any, tmp_path: Path
) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(api, "run", file).code == 0
    journal = tmp_path / "numbers.results.csv.journal"
    with sqlite3.connect(journal) as db:
        (salt,) = db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        texts = [str(v) for row in db.execute("SELECT * FROM numbers") for v in row]
    db.close()
    guess = hmac.new(bytes.fromhex(salt), f"trunkPassword={PASSWORD}".encode(), hashlib.sha256)
    assert texts
    assert all(guess.hexdigest()[:32] not in text for text in texts)
    assert PASSWORD not in " ".join(texts)


def test_resume_without_its_journal_says_edits_cannot_be_seen(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(api, "run", file).code == 0
    (tmp_path / "numbers.results.csv.journal").unlink()
    done = _run(api, "run", file, "--resume")
    assert "--resume without the journal" in done.stderr
    assert "edited since can't be told" in done.stderr


# 16 ----------------------------------------------------------------------------------------


def test_a_plain_rerun_keeps_the_earlier_batch_so_it_can_be_undone(
    api: Any, tmp_path: Path
) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert _run(api, "run", file).code == 0
    again = _run(api, "run", file)
    assert again.code == 0
    assert "the earlier batch of numbers.results.csv is kept as" in again.stderr
    (kept,) = tmp_path.glob("numbers.results.2*.csv")
    assert kept.with_name(kept.name + ".journal").exists()
    assert set(_status(kept).values()) == {"imported"}
    assert set(_status(tmp_path / "numbers.results.csv").values()) == {"already_exists"}
    nothing = _run(api, "undo", tmp_path / "numbers.results.csv", "--yes")
    assert "will delete 0" in nothing.stderr
    assert _run(api, "undo", kept, "--yes").code == 0
    assert not api.state.records


def test_update_writes_its_own_results_beside_the_runs(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 2)
    assert _run(api, "run", file).code == 0
    before = (tmp_path / "numbers.results.csv").read_text()
    write_numbers(file, 2, friendly="Edited")
    assert _run(api, "update", file).code == 0
    assert (tmp_path / "numbers.results.csv").read_text() == before
    assert set(_status(tmp_path / "numbers.update.csv").values()) == {"updated"}
