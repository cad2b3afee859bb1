"""Write the same rows as .xlsx (xlsxwriter), .xls (xlwt), .ods (odfpy) and .xlsb, for tests.

No office suite is needed.  The sheet has a merged title row, a blank row, the header on
row 3 and then ``ROWS``: number cells, text cells with ``+``, leading zeros, a date cell
and a formula cell (with its cached value where the format can hold one).  There is no
free .xlsb writer, so ``write_xlsb`` is a minimal one (inline strings, one date style),
written from the MS-XLSB record layout.
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


# --- .xlsb: no free writer exists, so a minimal one, after MS-XLSB ------------------------


def _record(kind: int, body: bytes = b"") -> bytes:
    """One BIFF12 record: its type and size in 7-bit groups, then the body."""
    head = bytes([kind]) if kind < 0x80 else bytes([(kind & 0x7F) | 0x80, kind >> 7])
    size, length = len(body), b""
    while True:
        byte = size & 0x7F
        size >>= 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    return head + length + body


def _wide(text: str) -> bytes:
    import struct

    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def _cell(col: int, value: Any) -> bytes:
    import struct

    def head(style: int = 0) -> bytes:
        return struct.pack("<I", col) + struct.pack("<I", style)[:3] + b"\x00"

    if isinstance(value, Formula):
        return _record(0x09, head() + struct.pack("<dHII", value.value, 0, 0, 0))
    if isinstance(value, dt.date):
        serial = (value - dt.date(1899, 12, 30)).days
        return _record(0x05, head(1) + struct.pack("<d", float(serial)))
    if isinstance(value, str):
        return _record(0x06, head() + _wide(value))
    return _record(0x05, head() + struct.pack("<d", float(value)))


def _sheet(rows: list[tuple[int, list[Any]]], width: int) -> bytes:
    import struct

    last = max((r for r, _ in rows), default=0)
    out = _record(0x81) + _record(0x94, struct.pack("<IIII", 0, last, 0, width - 1))
    out += _record(0x91)
    for number, values in rows:
        out += _record(0x00, struct.pack("<I", number) + bytes(13))
        for col, value in enumerate(values):
            if value is not None and value != "":
                out += _cell(col, value)
    return out + _record(0x92) + _record(0x82)


def write_xlsb(path: Path) -> Path:
    import struct
    import zipfile

    sheets = {
        "Numbers": _sheet(
            [(0, [TITLE]), (2, HEADER)] + [(3 + i, r) for i, r in enumerate(ROWS)], len(HEADER)
        ),
        "Other": _sheet([(0, ["just"])], 1),
    }
    book = _record(0x83) + _record(0x8F)
    rels = []
    for i, name in enumerate(sheets, start=1):
        rel = f"rId{i}"
        book += _record(0x9C, struct.pack("<II", 0, i) + _wide(rel) + _wide(name))
        rels.append(
            f'<Relationship Id="{rel}" Type="http://schemas.openxmlformats.org/officeDocument/'
            f'2006/relationships/worksheet" Target="worksheets/sheet{i}.bin"/>'
        )
    book += _record(0x90) + _record(0x9D, bytes(26)) + _record(0x84)
    xf = [struct.pack("<HH", 0, fmt) + bytes(12) for fmt in (0, 14)]  # 14: a date
    styles = _record(0x0269, struct.pack("<I", len(xf))) + b"".join(_record(0x2F, x) for x in xf)
    styles += _record(0x026A)
    ns = "http://schemas.openxmlformats.org/package/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="bin" ContentType="application/'
            'vnd.ms-excel.sheet.binary.macroEnabled.main"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{ns}"><Relationship '
            'Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="xl/workbook.bin"/></Relationships>',
        )
        archive.writestr("xl/workbook.bin", book)
        archive.writestr(
            "xl/_rels/workbook.bin.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{ns}">'
            + "".join(rels)
            + "</Relationships>",
        )
        archive.writestr("xl/styles.bin", styles)
        for i, data in enumerate(sheets.values(), start=1):
            archive.writestr(f"xl/worksheets/sheet{i}.bin", data)
    return path


WRITERS[".xlsb"] = write_xlsb
