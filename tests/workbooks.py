"""Write the same rows as .xlsx (xlsxwriter), .xls (xlwt) and .ods (odfpy), for the tests.

No office suite is needed.  The sheet has a merged title row, a blank row, the header on
row 3 and then ``ROWS``: number cells, text cells with ``+``, leading zeros, a date cell
and a formula cell (with its cached value where the format can hold one).  There is no
free .xlsb writer; .xlsb goes through the same calamine path as the others.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

TITLE = "Numbers for ACME, batch 3"
HEADER = [
    "Phone Number",
    "Trunk Username",
    "Trunk Password",
    "Termination SIP URI",
    "Friendly Name",
    "Notes",
]


class Formula:
    """A formula cell: its text and the value a spreadsheet shows for it."""

    def __init__(self, text: str, value: float) -> None:
        self.text, self.value = text, value


ROWS: list[list[Any]] = [
    [14155552671, "alice", "pw-1", "sip.telnyx.com", "Office", Formula("1+2", 3)],
    ["+14155552672", "007", "pw-2", "sip.telnyx.com", dt.date(2024, 3, 1), "text with +"],
    ["+1 415 555 2673", 12345, "pw-3", "sip.telnyx.com", "Name", None],
    ["007", "bob", "pw-4", "sip.telnyx.com", "", "leading zeros"],
    [dt.date(2024, 3, 1), "carol", "pw-5", "sip.telnyx.com", "", "a date"],
    [None, None, None, None, None, None],
    [14155552676.0, "dave", "pw-6", "sip.telnyx.com", 1.5, ""],
]


def write_xlsx(path: Path) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Numbers")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.merge_range(0, 0, 0, 3, TITLE)
    sheet.write_row(2, 0, HEADER)
    for r, values in enumerate(ROWS, start=3):
        for c, value in enumerate(values):
            if isinstance(value, Formula):
                sheet.write_formula(r, c, "=" + value.text, None, value.value)
            elif isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            elif value is not None:
                sheet.write_number(r, c, value)
    book.add_worksheet("Other").write_row(0, 0, ["just", "notes"])
    book.close()
    return path


def write_xls(path: Path) -> Path:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Numbers")
    date = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    sheet.write_merge(0, 0, 0, 3, TITLE)
    for c, name in enumerate(HEADER):
        sheet.write(2, c, name)
    for r, values in enumerate(ROWS, start=3):
        for c, value in enumerate(values):
            if isinstance(value, Formula):
                sheet.write(r, c, xlwt.Formula(value.text))  # xlwt stores no cached value
            elif isinstance(value, dt.date):
                sheet.write(r, c, value, date)
            elif value is not None:
                sheet.write(r, c, value)
    book.add_sheet("Other").write(0, 0, "just")
    book.save(str(path))
    return path


def write_ods(path: Path) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Numbers")

    def cell(value: Any, **extra: Any) -> TableCell:
        if value is None or value == "":
            return TableCell()
        if isinstance(value, Formula):
            c = TableCell(
                valuetype="float", value=value.value, formula="of:=" + value.text, **extra
            )
            c.addElement(P(text=str(value.value)))
            return c
        if isinstance(value, dt.date):
            c = TableCell(valuetype="date", datevalue=value.isoformat(), **extra)
        elif isinstance(value, int | float):
            c = TableCell(valuetype="float", value=value, **extra)
        else:
            c = TableCell(valuetype="string", **extra)
        c.addElement(P(text=str(value)))
        return c

    title = TableRow()
    title.addElement(cell(TITLE, numbercolumnsspanned=4))
    table.addElement(title)
    table.addElement(TableRow())
    for values in [HEADER, *ROWS]:
        row = TableRow()
        for value in values:
            row.addElement(cell(value))
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    other = Table(name="Other")
    row = TableRow()
    row.addElement(cell("just"))
    other.addElement(row)
    doc.spreadsheet.addElement(other)
    doc.save(str(path))
    return path


WRITERS = {".xlsx": write_xlsx, ".xls": write_xls, ".ods": write_ods}
