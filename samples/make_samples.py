"""Derive the other samples from ``phone_numbers.csv``.

* ``phone_numbers.xlsx``, ``template.csv``: the same rows as a workbook, the header alone;
* ``ops_sheet.xlsx``: as an ops team keeps it: a merged title row and a blank row above
  the header (row 3), a Notes column, phone numbers as number cells where Excel made them
  so (run it with ``--default-region US``);
* ``phone_numbers.ods``: the same rows as LibreOffice's format (needs ``odfpy``);
* ``unquoted_comma.csv``: the CSV with one friendly name holding an unquoted comma (row 5):
  that row is invalid ("has 6 cells, the header has 5"), the others go on.

Run ``python samples/make_samples.py`` after editing the CSV.  The rows are fictional:
555-01xx numbers in the US and Ofcom's drama range (020 7946 0xxx) in the UK, and
passwords that say they are fake.  Seventeen rows are valid; exactly three carry a
typical mistake:

* row 8, ``4155550120``: no country code (in the workbook a NUMBER cell, which is what
  Excel makes of a typed number);
* row 12: no termination SIP URI;
* row 17, ``+1 (415) 555-0101``: the number of row 2 again, written differently.

In the workbook every other phone cell is text (``+1415...``), as it must be: a number
cell cannot hold the ``+``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
NUMBER_CELLS = {"4155550120"}  # the deliberate mistake, stored as a number in the workbook


def main() -> None:
    with (HERE / "phone_numbers.csv").open(encoding="utf-8", newline="") as stream:
        header, *rows = list(csv.reader(stream))
    with (HERE / "template.csv").open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, lineterminator="\n").writerow(header)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Numbers"
    sheet.append(header)
    for row in rows:
        sheet.append([int(cell) if cell in NUMBER_CELLS else cell for cell in row])
    for column in "ABCDEFGH":
        sheet.column_dimensions[column].width = 24
    book.save(HERE / "phone_numbers.xlsx")
    _ops_sheet(header, rows)
    _ods(header, rows)
    _unquoted_comma(header, rows)


def _ops_sheet(header: list[str], rows: list[list[str]]) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Numbers"
    sheet.append(["Numbers for ACME, batch 3 (ops, do not reorder)"])
    sheet.merge_cells("A1:E1")
    sheet.append([])
    sheet.append([*header[:5], "Notes"])
    notes = ["ported from Telnyx", "", "check with Bob", "", "main line"]
    for i, row in enumerate(rows[:12]):
        phone = row[0]
        cell: str | int = int(phone[2:]) if i % 3 == 1 and phone.startswith("+1") else phone
        sheet.append([cell, *row[1:5], notes[i % len(notes)]])
    for column in "ABCDEF":
        sheet.column_dimensions[column].width = 24
    sheet.freeze_panes = "A4"
    book.create_sheet("Readme").append(["Numbers go in the sheet 'Numbers', from row 4."])
    book.save(HERE / "ops_sheet.xlsx")


def _ods(header: list[str], rows: list[list[str]]) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Numbers")
    for values in [header, *rows]:
        row = TableRow()
        for value in values:
            cell = TableCell(valuetype="string") if value else TableCell()
            if value:
                cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    doc.save(str(HERE / "phone_numbers.ods"))


def _unquoted_comma(header: list[str], rows: list[list[str]]) -> None:
    lines = [",".join(header[:5])]
    for i, row in enumerate(rows[:8]):
        name = "Smith, John" if i == 3 else row[4]  # written by hand: no quotes
        lines.append(",".join([*row[:4], name]))
    (HERE / "unquoted_comma.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
