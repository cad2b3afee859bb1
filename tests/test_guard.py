"""The formula guard read back: an export, untouched, is an update that changes nothing
(docs/contract.md, "The input file"), over real loopback HTTP against the sandbox."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from support import API_KEY, number, read_results, run_cli

#: Values the formula guard changes on writing (docs/contract.md, "The results file").
GUARDED = ["-Main line-", "+1 Support", "@home office", "=cmd|' /C calc'!A0", "-", "+"]


@pytest.fixture
def api(sandbox_factory: Any) -> Any:
    return sandbox_factory(api_key=API_KEY)


def _hold(api: Any, names: list[str]) -> list[str]:
    numbers = [number(i) for i in range(len(names))]
    for n, name in zip(numbers, names, strict=True):
        api.state.records[n] = {"sipPhoneNumber": n, "friendlyName": name, "active": True}
    return numbers


# -- the formula guard, read back -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_then_update_of_the_untouched_export_patches_nothing(
    api: Any, tmp_path: Path, suffix: str
) -> None:
    _hold(api, [*GUARDED, "'quoted already", "plain"])
    out = tmp_path / f"account{suffix}"
    assert run_cli("export", str(out), "--base-url", api.url).code == 0
    written = _cells(out)
    assert "'-Main line-" in written  # the guard is on the file, as Excel needs it
    api.state.methods.clear()
    done = run_cli("update", str(out), "--base-url", api.url, "--no-progress")
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "account.update.csv")
    assert {r["status"] for r in rows} == {"unchanged"}, rows
    assert api.state.methods["PATCH"] == 0, api.state.patches


def test_a_guard_is_removed_only_where_the_writer_adds_one(api: Any, tmp_path: Path) -> None:
    numbers = _hold(api, ["x"] * 5)
    file = tmp_path / "edits.csv"
    names = ["'-Main line-", "'plain", "''=twice", "'+15551234567", "'@home"]
    with file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["phoneNumber", "friendlyName"])
        writer.writerows(zip(numbers, names, strict=True))
    done = run_cli("update", str(file), "--base-url", api.url, "--no-progress")
    assert done.code == 0, done.stderr
    got = [api.state.records[n]["friendlyName"] for n in numbers]
    # "'plain" and "'+15551234567" were never guarded by a writer: kept as typed.
    assert got == ["-Main line-", "'plain", "'=twice", "'+15551234567", "@home"]


def _cells(path: Path) -> list[str]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return [c for row in csv.reader(f) for c in row]
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        sheet = book.active
        assert sheet is not None
        return [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c]
    finally:
        book.close()


def test_unguard_is_the_exact_inverse_of_defuse() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from bulk_import.guard import defuse, unguard, unguarded

    @given(st.text(alphabet="'=@+-\t\r 0123456789.eEab", max_size=8))
    def check(value: str) -> None:
        assert unguard(defuse(value)) == value
        assert unguarded([defuse(value), "x"]) == [value, "x"]

    check()
    assert defuse("'quoted") == "''quoted"


def test_a_password_is_taken_as_typed(api: Any, tmp_path: Path) -> None:
    file = tmp_path / "numbers.csv"
    with file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["phoneNumber", "trunkUsername", "trunkPassword", "terminationSipURI"])
        writer.writerow([number(1), "'-user", "'-Pw-9f8e7d6c5b4a", "sip.example.com"])
    done = run_cli("run", str(file), "--base-url", api.url, "--no-progress")
    assert done.code == 0, done.stderr
    record = api.state.records[number(1)]
    assert (record["trunkUsername"], record["trunkPassword"]) == ("-user", "'-Pw-9f8e7d6c5b4a")
