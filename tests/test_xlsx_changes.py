"""``--output X.xlsx`` of plan, update and ``run --on-existing update`` has the ``changes``
column the CSV has (docs/contract.md, "The results file"), over real loopback HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import API_KEY, number, run_cli, write_numbers


def _sheet(path: Path) -> list[dict[str, str]]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    rows = book.get_sheet_by_name("results").to_python()
    header = [str(c) for c in rows[0]]
    return [dict(zip(header, (str(c) for c in row), strict=True)) for row in rows[1:]]


@pytest.mark.parametrize(
    ("command", "extra", "status"),
    [
        ("plan", ["--on-existing", "update"], "would_update"),
        ("update", [], "updated"),
        ("run", ["--on-existing", "update"], "updated"),
    ],
)
def test_a_results_workbook_has_the_changes_column(
    sandbox_factory: Any, tmp_path: Path, command: str, extra: list[str], status: str
) -> None:
    api = sandbox_factory(api_key=API_KEY)
    seed = tmp_path / "seed.csv"
    write_numbers(seed, 3)
    assert run_cli("run", str(seed), "--base-url", api.url, "--no-progress").code == 0
    file = tmp_path / "edits.csv"
    file.write_text(
        "phoneNumber,friendlyName\n" + "".join(f"{number(i)},Renamed {i}\n" for i in range(3)),
        encoding="utf-8",
    )
    out = tmp_path / "out.xlsx"
    done = run_cli(
        command, str(file), "--base-url", api.url, "--no-progress", "-o", str(out), *extra
    )
    assert done.code == 0, done.stderr
    rows = _sheet(out)
    assert list(rows[0])[-1] == "changes"
    assert [r["status"] for r in rows] == [status] * 3
    assert rows[1]["changes"] == "friendlyName: 'Line 1' -> 'Renamed 1'", rows[1]
    assert [r["phone_number"] for r in rows] == [number(i) for i in range(3)]


def test_a_plain_run_workbook_has_no_changes_column(sandbox_factory: Any, tmp_path: Path) -> None:
    api = sandbox_factory(api_key=API_KEY)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 2)
    out = tmp_path / "out.xlsx"
    done = run_cli("run", str(file), "--base-url", api.url, "--no-progress", "-o", str(out))
    assert done.code == 0, done.stderr
    assert "changes" not in _sheet(out)[0]
