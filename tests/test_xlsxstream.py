"""The streaming workbook writer: what openpyxl, calamine (and xlsxwriter, as reference) see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from bulk_import.xlsxstream import StreamingWorkbook

HEADER = ("row", "phone", "status", "note", "n")
FILLS = {"imported": "#C6EFCE", "invalid": "#FFC7CE"}
TRICKY = [
    "a & b <c> \"d\" 'e'",
    " leading space",
    "trailing tab\t",
    "ctrl \x01\x07\x1f end",
    "looks like _x0041_ an escape",
    "unicode: ünïcødé 日本 +",
    "line\nbreak",
    "x" * 40_000,  # past Excel's 32,767 characters: cut
    "00123",
    "=1+1",
]


def _book(path: Path, batches: list[list[list[Any]]]) -> StreamingWorkbook:
    book = StreamingWorkbook(
        path,
        sheet="results",
        header=HEADER,
        kinds=("number", "text", "styled", "text", "number"),
        fills=FILLS,
        other_fill="#EDEDED",
        header_fill="#D9D9D9",
        summary_sheet="summary",
        max_width=60,
    )
    for batch in batches:
        book.rows(batch)
    return book


def test_openpyxl_reads_types_fills_frozen_header_filter_and_summary(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    book = _book(
        path,
        [
            [[2, 3], ["+14155552671", "14155552672"], ["imported", "invalid"], ["", "bad"], [1, 0]],
            [[], [], [], [], []],  # an empty batch adds nothing
            [[4], ["0044"], ["mystery"], ["x"], ["2"]],
        ],
    )
    book.close([("status", "rows"), ("imported", 1), ("rate", 1.5), ("file", "a&b.csv")])

    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["results", "summary"]
    sheet = wb["results"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows == [
        list(HEADER),
        [2, "+14155552671", "imported", None, 1],
        [3, "14155552672", "invalid", "bad", 0],
        [4, "0044", "mystery", "x", 2],
    ]
    assert sheet["B3"].data_type == "s"  # digits stay text
    assert sheet["A2"].data_type == "n"
    fills = [sheet[f"C{r}"].fill.fgColor.rgb for r in (2, 3, 4)]
    assert fills == ["FFC6EFCE", "FFFFC7CE", "FFEDEDED"]
    assert sheet["A2"].fill.fill_type is None  # only the status cell is filled
    assert sheet["A1"].font.b
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:E4"
    assert sheet.column_dimensions["B"].width > len("+14155552671")
    summary = [[c.value for c in r] for r in wb["summary"].iter_rows()]
    assert summary == [["status", "rows"], ["imported", 1], ["rate", 1.5], ["file", "a&b.csv"]]


def test_text_reads_back_as_xlsxwriter_writes_it(tmp_path: Path) -> None:
    ours = tmp_path / "ours.xlsx"
    n = len(TRICKY)
    rows = list(range(2, n + 2))
    book = _book(ours, [[rows, TRICKY, ["imported"] * n, TRICKY[::-1], [0] * n]])
    book.close([("status", "rows"), ("tricky", TRICKY[0])])

    reference = tmp_path / "ref.xlsx"
    ref = xlsxwriter.Workbook(str(reference), {"constant_memory": True})
    sheet = ref.add_worksheet("results")
    for r, (a, b) in enumerate(zip(TRICKY, TRICKY[::-1], strict=True), start=1):
        sheet.write_string(r, 1, a[:32_767])
        sheet.write_string(r, 3, b[:32_767])
    ref.close()

    def texts(path: Path) -> list[tuple[Any, Any]]:
        sheet = openpyxl.load_workbook(path)["results"]
        return [(r[1].value, r[3].value) for r in sheet.iter_rows(min_row=2)]

    assert texts(ours) == texts(reference)
    assert texts(ours)[0][0] == TRICKY[0]
    assert texts(ours)[1][0] == " leading space"
    assert texts(ours)[4][0] == "looks like _x005F_x0041_ an escape"  # as Excel escapes it
    assert len(texts(ours)[7][0]) == 32_767

    calamine = CalamineWorkbook.from_path(str(ours)).get_sheet_by_name("results").to_python()
    assert calamine[1][1] == TRICKY[0]
    assert calamine[5][1] == "looks like _x0041_ an escape"  # calamine undoes the escape
    assert calamine[4][1] == TRICKY[3]
    assert calamine[0] == list(HEADER)
    summary = openpyxl.load_workbook(ours)["summary"]
    assert summary["B2"].value == TRICKY[0]


def test_many_batches_keep_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    batches: list[list[list[Any]]] = []
    for start in range(2, 2 + 3000, 1000):
        rows: list[Any] = list(range(start, start + 1000))
        batches.append(
            [rows, [f"+1{r:010d}" for r in rows], ["imported"] * 1000, [""] * 1000, [1] * 1000]
        )
    _book(path, batches).close([("status", "rows")])
    read = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("results").to_python()
    assert len(read) == 3001
    assert read[-1][:3] == [3001, "+10000003001", "imported"]
    assert openpyxl.load_workbook(path, read_only=True)["results"].max_row == 3001


def test_abandon_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    book = _book(path, [[[2], ["+1"], ["imported"], [""], [0]]])
    book.abandon()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["&", "<", ">", " ", "a\t", "\r"])
def test_each_kind_of_special_text_survives_alone(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "r.xlsx"
    _book(path, [[[2, 3], ["ok", bad], ["invalid", "invalid"], [bad, ""], [0, 0]]]).close([])
    sheet = openpyxl.load_workbook(path)["results"]
    assert sheet["B3"].value == bad
    assert sheet["D2"].value == bad
    assert sheet["B2"].value == "ok"
