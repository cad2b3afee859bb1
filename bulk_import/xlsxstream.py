"""xlsxstream: a small streaming ``.xlsx`` writer for the results workbook.

It owns the workbook's XML (SpreadsheetML) and nothing else: a first sheet of many rows,
streamed in batches given column-wise, and a small second sheet of name/value pairs.

Why not a general library: writing a cell at a time through a general writer costs a Python
call (and its checks) per cell, ~20 us a row; here a batch of rows becomes one string per
column kind with f-strings, and the text is escaped only in a batch that needs it.  Rows go
to an anonymous temporary file as they come (memory stays flat whatever the row count);
``close`` writes the zip: the sheet's head (frozen header, fitted widths), the rows copied
from the temporary file, then the filter.

Cells: numbers as ``<v>``, text as inline strings (``t="inlineStr"``: never retyped, so a
phone number stays text), one style per distinct fill.  The layout follows what Excel and
xlsxwriter write, so openpyxl, calamine and Excel read it the same way.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import IO, Any, Literal

Kind = Literal["number", "text", "styled"]

_MAX_TEXT = 32_767  # Excel's limit for one cell
#: What needs more than a plain copy in ``<t>``: markup, control characters, text that looks
#: like Excel's own ``_xHHHH_`` escape (``_x``), and whitespace at either end (with the
#: cells joined by newlines, ``"\n "`` is a cell that starts with a space).
_MARKS = ("&", "<", ">", "_x", " \n", "\n ", "\t\n", "\n\t", "\r")
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL = re.compile(r"_x[0-9a-fA-F]{4}_|[\x00-\x08\x0b\x0c\x0e-\x1f]")

_NS = (
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_MARGINS = (
    '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape_one(text: str) -> str:
    """One cell's ``<t>``: cut to Excel's limit, control characters as Excel's ``_xHHHH_``
    (a literal ``_xHHHH_`` protected by ``_x005F``), markup escaped, edge spaces kept."""
    text = _CONTROL.sub(
        lambda m: "_x005F" + m[0] if len(m[0]) > 1 else f"_x{ord(m[0]):04X}_", text[:_MAX_TEXT]
    )
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    edge = text[:1] in (" ", "\t", "\r") or text[-1:] in (" ", "\t", "\r")
    text = text.replace("\r", "&#13;")  # a bare CR would be read back as LF
    if edge:
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def _texts(values: Sequence[Any]) -> tuple[list[str], int]:
    """The cells' ``<t>`` elements ("" for an empty cell), escaped only where needed, and
    the longest text's length."""
    col = [v if type(v) is str else ("" if v is None else str(v)) for v in values]
    longest = max(map(len, col), default=0)
    if longest == 0:
        return [""] * len(col), 0
    if longest <= _MAX_TEXT and _plain("\n".join(col)):
        return [f"<t>{v}</t>" if v else "" for v in col], longest
    return [_escape_one(v) if v else "" for v in col], longest


def _plain(joined: str) -> bool:
    """True if no cell of ``joined`` (cells joined by newlines) needs escaping."""
    return (
        not any(mark in joined for mark in _MARKS)
        and joined[:1] not in (" ", "\t")
        and joined[-1:] not in (" ", "\t")
        and _CONTROL_CHAR.search(joined) is None
    )


def _width(chars: int) -> float:
    """Excel's stored column width for ``chars`` characters (as xlsxwriter computes it)."""
    return int((int(chars * 7 + 0.5) + 5) / 7 * 256.0) / 256.0


class StreamingWorkbook:
    """Write ``rows`` batches, then ``close(summary)``; the file appears only at close.

    ``kinds`` gives each column's cell type; the ``styled`` column (at most one) is text
    whose cell takes the fill ``fills[value]`` (``other_fill`` for a value not listed).
    """

    def __init__(
        self,
        path: Path,
        *,
        sheet: str,
        header: Sequence[str],
        kinds: Sequence[Kind],
        fills: Mapping[str, str],
        other_fill: str,
        header_fill: str,
        summary_sheet: str,
        max_width: int,
    ) -> None:
        self.path = path
        self._sheet = sheet
        self._summary_sheet = summary_sheet
        self._header = list(header)
        self._kinds = list(kinds)
        self._letters = [_column_letter(i) for i in range(len(header))]
        self._max_width = max_width
        self._widths = [len(h) for h in header]
        # Styles: 0 plain, 1 header (bold, grey), 2.. one per fill colour.
        self._colours = [header_fill]
        for colour in [*fills.values(), other_fill]:
            if colour not in self._colours:
                self._colours.append(colour)
        self._style = {value: 1 + self._colours.index(c) for value, c in fills.items()}
        self._other_style = 1 + self._colours.index(other_fill)
        self._rows: IO[bytes] = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115 (closed by close/abandon)
        self._row = 1
        head = "".join(
            f'<c r="{letter}1" s="1" t="inlineStr"><is>{_texts([name])[0][0]}</is></c>'
            for letter, name in zip(self._letters, self._header, strict=True)
        )
        self._rows.write(f'<row r="1">{head}</row>'.encode())

    def rows(self, columns: Sequence[Sequence[Any]]) -> None:
        """Append rows given column-wise (every column as long as the first)."""
        n = len(columns[0])
        if not n:
            return
        first = self._row + 1
        numbers = range(first, first + n)
        cells: list[list[str]] = []
        for i, (kind, values) in enumerate(zip(self._kinds, columns, strict=True)):
            letter = self._letters[i]
            if kind == "number":
                if set(map(type, values)) != {int}:
                    values = [int(v) for v in values]
                cells.append(
                    [
                        f'<c r="{letter}{r}"><v>{v}</v></c>'
                        for r, v in zip(numbers, values, strict=True)
                    ]
                )
                continue
            if kind == "styled":
                ends = {v: self._styled_end(v) for v in set(values)}
                cells.append(
                    [f'<c r="{letter}{r}{ends[v]}' for r, v in zip(numbers, values, strict=True)]
                )
                continue
            texts, longest = _texts(values)
            if not longest:
                continue  # every cell empty: nothing to write
            self._widths[i] = max(self._widths[i], min(longest, self._max_width))
            cells.append(
                [
                    f'<c r="{letter}{r}" t="inlineStr"><is>{t}</is></c>' if t else ""
                    for r, t in zip(numbers, texts, strict=True)
                ]
            )
        opens = [f'<row r="{r}">' for r in numbers]
        self._rows.write(
            "".join(chain.from_iterable(zip(opens, *cells, repeat("</row>")))).encode()
        )
        self._row += n

    def _styled_end(self, value: Any) -> str:
        """The rest of a styled cell after its column letter and row number."""
        text, longest = _texts([value])
        i = self._kinds.index("styled")
        self._widths[i] = max(self._widths[i], min(longest, self._max_width))
        style = self._style.get(value, self._other_style) if type(value) is str else 0
        if not text[0]:
            return f'" s="{style}"/>'
        return f'" s="{style}" t="inlineStr"><is>{text[0]}</is></c>'

    def close(self, summary: Sequence[tuple[str, Any]]) -> None:
        """Write the workbook: the streamed sheet, then ``summary`` (a header row first)."""
        last = f"{self._letters[-1]}{self._row}"
        absolute = f"$A$1:${self._letters[-1]}${self._row}"
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{_width(w + 2)}" customWidth="1"/>'
            for i, w in enumerate(self._widths, start=1)
        )
        head = (
            f'{_DECL}<worksheet {_NS}><dimension ref="A1:{last}"/>'
            '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
        )
        tail = f'</sheetData><autoFilter ref="A1:{last}"/>{_MARGINS}</worksheet>'
        try:
            with zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
                z.writestr("[Content_Types].xml", _content_types())
                z.writestr("_rels/.rels", _root_rels())
                z.writestr("xl/workbook.xml", self._workbook(absolute))
                z.writestr("xl/_rels/workbook.xml.rels", _workbook_rels())
                z.writestr("xl/styles.xml", self._styles())
                with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
                    out.write(head.encode())
                    self._rows.seek(0)
                    shutil.copyfileobj(self._rows, out, 1 << 20)
                    out.write(tail.encode())
                z.writestr("xl/worksheets/sheet2.xml", _summary(summary))
        finally:
            self._rows.close()

    def abandon(self) -> None:
        """Drop the rows written so far (``path`` is left as it was)."""
        self._rows.close()

    def _workbook(self, absolute: str) -> str:
        sheets = (
            f'<sheet name="{_attr(self._sheet)}" sheetId="1" r:id="rId1"/>'
            f'<sheet name="{_attr(self._summary_sheet)}" sheetId="2" r:id="rId2"/>'
        )
        ref = f"'{self._sheet.replace(chr(39), chr(39) * 2)}'!{absolute}"
        return (
            f"{_DECL}<workbook {_NS}><bookViews><workbookView/></bookViews>"
            f"<sheets>{sheets}</sheets><definedNames>"
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
            f"{_attr(ref)}</definedName></definedNames></workbook>"
        )

    def _styles(self) -> str:
        fills = '<fill><patternFill patternType="none"/></fill>'
        fills += '<fill><patternFill patternType="gray125"/></fill>'
        fills += "".join(
            f'<fill><patternFill patternType="solid"><fgColor rgb="FF{c.lstrip("#").upper()}"/>'
            '<bgColor indexed="64"/></patternFill></fill>'
            for c in self._colours
        )
        xfs = '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        xfs += (
            '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" '
            'applyFill="1"/>'
        )
        xfs += "".join(
            f'<xf numFmtId="0" fontId="0" fillId="{2 + i}" borderId="0" xfId="0" applyFill="1"/>'
            for i in range(1, len(self._colours))
        )
        font = '<sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/>'
        return (
            f"{_DECL}<styleSheet {_NS.split(' ')[0]}>"
            f'<fonts count="2"><font>{font}<scheme val="minor"/></font>'
            f'<font><b/>{font}<scheme val="minor"/></font></fonts>'
            f'<fills count="{2 + len(self._colours)}">{fills}</fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            "</borders>"
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
            "</cellStyleXfs>"
            f'<cellXfs count="{1 + len(self._colours)}">{xfs}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            "</cellStyles></styleSheet>"
        )


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _summary(rows: Sequence[tuple[str, Any]]) -> str:
    """The small sheet: names in A (the first one in the header style), values in B."""
    out = []
    for i, (name, value) in enumerate(rows, start=1):
        style = ' s="1"' if i == 1 else ""
        cells = f'<c r="A{i}"{style} t="inlineStr"><is>{_texts([name])[0][0]}</is></c>'
        if isinstance(value, int | float) and not isinstance(value, bool):
            cells += f'<c r="B{i}"><v>{value!r}</v></c>'
        else:
            text = _texts([str(value)])[0][0]
            if text:
                cells += f'<c r="B{i}" t="inlineStr"><is>{text}</is></c>'
        out.append(f'<row r="{i}">{cells}</row>')
    cols = (
        f'<cols><col min="1" max="1" width="{_width(24)}" customWidth="1"/>'
        f'<col min="2" max="2" width="{_width(40)}" customWidth="1"/></cols>'
    )
    return (
        f'{_DECL}<worksheet {_NS}><sheetViews><sheetView workbookViewId="0"/></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/>{cols}<sheetData>{"".join(out)}</sheetData>'
        f"{_MARGINS}</worksheet>"
    )


def _content_types() -> str:
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return (
        f"{_DECL}"
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{main}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{main}.worksheet+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet2.xml" ContentType="{main}.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{main}.styles+xml"/>'
        "</Types>"
    )


def _root_rels() -> str:
    return (
        f'{_DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )


def _workbook_rels() -> str:
    return (
        f'{_DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/worksheet" Target="worksheets/sheet2.xml"/>'
        f'<Relationship Id="rId3" Type="{_REL}/styles" Target="styles.xml"/>'
        "</Relationships>"
    )
