"""Read the input file: file -> text rows with spreadsheet row numbers.

This module (and ``record``) is the only one that touches the input.  It owns the input
rules of docs/contract.md up to the point where a row is a dict of trimmed text cells:

* ``.csv``/``.txt``/``.tsv``: the encoding is UTF-8 (with or without BOM), else
  Windows-1252 for a file that is not UTF-8 as a whole (a UTF-8 file with a few bad bytes
  stays UTF-8, and the rows holding them are invalid); a UTF-16 file with a BOM (Excel's
  "Unicode Text") is read too (one without a BOM is refused, naming the ``encoding`` to
  give), and ``encoding=`` overrides the guess.  The delimiter is
  sniffed among ``,`` ``;`` tab ``|``.  The stdlib ``csv`` reader reads it record by
  record, every cell as text; a cell over ``CELL_LIMIT`` characters is never held.
* Workbooks (``.xlsx``/``.xlsm``/``.xlsb``/``.xls``/``.ods``): python-calamine, first sheet
  unless ``sheet=``; number cells become their digits (``14155552671``, never
  ``1.4155552671E10``), dates the text they show (``2024-03-01``), error cells empty.
* The header row is the first row naming at least two fields (title rows above it are
  skipped), else the first non-blank row; ``header_row=`` names it.  Row numbers are the
  ones a spreadsheet shows; blank rows are dropped but still counted.  A row is blank when
  every cell, matched or not, is empty after trimming.
* A row with a non-empty cell beyond the header's width, an oversized cell, or bytes that
  are not in the file's encoding gets a row-level problem (``RawRow.problem``): it is
  invalid, and the rows around it go on.
* Headers match fields case-, space-, ``_``- and ``-``-insensitively by JSON name
  (``phoneNumber``), snake form (``phone_number``) or plain words (``Phone Number``).
  Also accepted (synonyms): ``Phone``, ``Number``, ``DID``, ``E164`` (phoneNumber);
  ``Username``, ``User``, ``SIP Username`` (trunkUsername); ``Password``,
  ``SIP Password`` (trunkPassword); ``Termination URI``, ``SIP URI``,
  ``Termination SIP URL`` (terminationSipURI); ``Name``, ``Label`` (friendlyName);
  ``Inbound Agent``, ``Outbound Agent`` (the agent ids); ``Outbound Number``
  (outboundPhoneNumber).  ``mapping`` (``--map``) wins over automatic matching.
  Headers left empty are neither matched nor reported as ignored.

Every third-party error becomes an ``InputFileError`` saying which file, what is wrong
and what to try.  Missing required columns are ``validate``'s business, not this one's.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import difflib
import io
import math
import operator
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress, islice
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from bulk_import.errors import InputChangedError, InputFileError, UsageError
from bulk_import.guard import unguarded
from bulk_import.models import FIELDS, FIELDS_HINT, Chunk, RawRow

CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
_SCAN_BLOCK = 1024 * 1024
#: The UTF-8 check's blocks: small enough that the text each decodes to stays in the CPU's
#: cache (1 MB blocks: 2 MB of text a block, three times as slow over a 134 MB file)
_DECODE_BLOCK = 64 * 1024
_QUOTED_RE = re.compile(r'"[^"]*"')
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "phoneNumber": ("phone", "number", "did", "e164"),
    "trunkUsername": ("username", "user", "sipusername"),
    "trunkPassword": ("password", "sippassword"),
    "terminationSipURI": ("terminationuri", "sipuri", "terminationsipurl"),
    "friendlyName": ("name", "label"),
    "inboundAgentId": ("inboundagent",),
    "outboundAgentId": ("outboundagent",),
    "outboundPhoneNumber": ("outboundnumber",),
}


def _key(text: str) -> str:
    """The matching key of a header: case-folded, without spaces, ``_`` and ``-``."""
    return re.sub(r"[\s_\-\ufeff]+", "", text).casefold()


_HEADER_KEYS: dict[str, str] = {}
for _spec in FIELDS:
    for _form in (_spec.json, _spec.snake, _spec.words, *_SYNONYMS.get(_spec.json, ())):
        _HEADER_KEYS[_key(_form)] = _spec.json


def match_header(header: str) -> str | None:
    """The JSON field name a header stands for, or None."""
    return _HEADER_KEYS.get(_key(header))


#: How alike a header and a field's name must be (difflib's ratio) to be offered as the
#: column the user meant.
CLOSE_ENOUGH = 0.6


def closest_headers(missing: Sequence[str], found: Sequence[str]) -> dict[str, str]:
    """For each missing field, the header most like one of its names (``Trunk Pasword``
    for trunkPassword), if any is close enough; each header is offered once, to the field
    it is most like.  Headers that already name a field are not offered."""
    free = [h for h in dict.fromkeys(found) if h.strip() and match_header(h) is None]
    scored: list[tuple[float, str, str]] = []
    for json_name in missing:
        forms = [k for k, name in _HEADER_KEYS.items() if name == json_name]
        for header in free:
            key = _key(header)
            score = max(difflib.SequenceMatcher(None, key, form).ratio() for form in forms)
            if score >= CLOSE_ENOUGH:
                scored.append((score, json_name, header))
    closest: dict[str, str] = {}
    for _score, json_name, header in sorted(scored, key=lambda s: -s[0]):
        if json_name not in closest and header not in closest.values():
            closest[json_name] = header
    return {name: closest[name] for name in missing if name in closest}


@dataclass
class Table:
    """An opened input file: its header, matched columns, and a way to stream its rows.

    ``header_row`` is the row the header was taken from (``detected`` when it was found as
    the first row naming two fields); data rows are the rows below it.  A CSV file stays
    open until ``close()`` (or the end of a ``with`` block) so that every pass reads the
    file the run started with.
    """

    path: Path
    header: list[str]
    columns: dict[str, str]
    ignored: list[str]
    chunk_rows: int = 10_000
    header_row: int = 1
    detected: bool = False
    sheet: str | None = None
    #: ``header_row`` was given (not looked for)
    given: bool = False
    _reader: _Reader | None = field(default=None, repr=False)
    _mapping: Mapping[str, str] = field(default_factory=dict, repr=False)

    def chunks(self) -> Iterator[Chunk]:
        """The data rows a chunk of at most ``chunk_rows`` rows at a time, column-wise."""
        from bulk_import import csvfast

        if isinstance(self._reader, _CsvReader) and csvfast.qualifies(self._reader):
            yield from csvfast.columns(self, self._reader)  # the same chunks, read faster
        else:
            yield from self._columns()

    def rows(self) -> Iterator[RawRow]:
        """One ``RawRow`` per non-blank data row, holding only its non-empty cells."""
        for chunk in self._columns():
            for i in range(len(chunk.rows)):
                yield chunk.raw_row(i)

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """Each non-blank data row as the file has it: (row number, every cell as text)."""
        if self._reader is None:
            return
        for first, batch, problems in self._reader.batches(self.chunk_rows):
            for i, cells in enumerate(batch):
                if i in problems or any(c.strip() for c in cells):
                    yield first + i, cells

    def _columns(self, skip: int = 0) -> Iterator[Chunk]:
        """Shaped chunks (see ``_shape``) of the data rows after the first ``skip``."""
        if self._reader is None:
            return
        positions = _positions(self)
        width = len(self.header)
        check_size = not isinstance(self._reader, _CsvReader)  # csv caps cells itself
        for first, columns, size, problems in self._reader.column_batches(self.chunk_rows, skip):
            shaped = _shape(columns, size, first, problems, width, positions, check_size)
            if shaped.rows:  # not a chunk of blank rows only
                yield shaped

    def paused_chunks(self, pause: Pause, rows: int) -> Iterator[Chunk | None]:
        """``chunks()`` of a CSV read by the stdlib reader, with a ``None`` where the
        reader has read ``pause.line`` lines or more, after the record that got it there
        (``pause`` then says how many lines and the next record's row number); iterating
        on reads on from there, as if there had been no pause (``split.py``).  Chunks of at
        most ``rows`` rows."""
        reader = self._reader
        assert isinstance(reader, _CsvReader)
        yield from self._shaped(reader.paused_batches(rows, pause))

    def chunks_from(self, start: int, first_row: int, rows: int) -> Iterator[Chunk]:
        """The chunks (of at most ``rows`` rows) of the CSV's records from byte ``start`` on
        (the start of a line the stdlib reader starts a record at), the first being row
        ``first_row``."""
        reader = self._reader
        assert isinstance(reader, _CsvReader)
        for shaped in self._shaped(reader.batches_from(rows, start, first_row)):
            assert shaped is not None
            yield shaped

    def _shaped(self, batches: Iterator[_Batch | None]) -> Iterator[Chunk | None]:
        positions = _positions(self)
        width = len(self.header)
        for batch in batches:
            if batch is None:
                yield None
                continue
            first, rows, problems = batch
            shaped = _shape(_transposed(rows), len(rows), first, problems, width, positions, False)
            if shaped.rows:
                yield shaped

    def estimated_rows(self) -> int | None:
        """About how many data rows there are (a progress bar's total), if cheap to know.

        For a CSV, its line count less the header (blank lines and multi-line cells make
        it approximate); for a workbook, its row count below the header.
        """
        if isinstance(self._reader, _BookReader):
            return max(self._reader.height - self.header_row, 0)
        if not isinstance(self._reader, _CsvReader):
            return None
        lines = 0
        try:
            with self.path.open("rb") as f:
                while block := f.read(1 << 20):
                    lines += block.count(b"\n")
        except OSError:
            return None
        return max(lines - self.header_row, 0)

    def ignored_summary(self, limit: int = 5) -> str:
        """The ignored columns for a one-line warning: a count and the first few names."""
        shown = ", ".join(repr(_clip(h, 30)) for h in self.ignored[:limit])
        more = len(self.ignored) - limit
        count = f"{len(self.ignored)} column(s)" if len(self.ignored) > 1 else "column"
        return f"{count} {shown}" + (f" and {more} more" if more > 0 else "")

    def header_note(self, missing: Sequence[str] = ()) -> str:
        """Where the header came from, and which other sheets have the ``missing`` fields."""
        where = f"row {self.header_row}" + (f" of sheet {self.sheet!r}" if self.sheet else "")
        if self.detected:
            how = "the first row naming two fields"
        elif self.given:
            how = "the row given"
        elif _names_fields(self.header, self._mapping):
            how = "the first row; it names a field, so it is the header"
        else:
            # Only here is a header further down likely: the row taken names no field.
            how = (
                "no row near the top names two fields; if the header is further down, "
                "give its row with --header-row N"
            )
        note = f"{where} was taken as the header ({how})"
        if isinstance(self._reader, _BookReader) and missing:
            others = self._reader.sheets_with(missing, self._mapping)
            if others:
                shown = ", ".join(repr(name) for name in others)
                note += f"; sheet(s) {shown} have those columns: choose one with --sheet"
        return note

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: (first row number, rows of text cells, {index: row problem}): what a reader gives
_Batch = tuple[int, list[list[str]], dict[int, str]]


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def open_table(
    path: Path,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    chunk_rows: int = 10_000,
    header_row: int | None = None,
) -> Table:
    """Open a CSV or workbook, find its header row and match it to the API's fields.

    ``header_row`` names the header's row; by default it is the first
    row naming at least two fields (else the first non-blank row).
    """
    path = Path(path)
    mapping = dict(mapping or {})
    if header_row is not None and header_row < 1:
        raise UsageError(
            "header_row must be 1 or more (the spreadsheet's row number)", param="header_row"
        )
    suffix = path.suffix.lower()
    reader: _Reader
    if suffix in CSV_SUFFIXES:
        reader = _CsvReader.open(path, encoding, header_row, mapping)
    elif suffix in WORKBOOK_SUFFIXES:
        reader = _BookReader.open(path, sheet, header_row, mapping)
    else:
        hint = "save it as .xlsx or CSV UTF-8" if suffix in {".numbers", ".xlsx#"} else ""
        raise InputFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; "
            "bulk-import reads .csv, .txt, .tsv, .xlsx, .xlsm, .xlsb, .xls and .ods",
            hint=hint or None,
        )
    try:
        columns, ignored = _match_columns(path, reader.header, mapping)
    except BaseException:
        reader.close()
        raise
    return Table(
        path,
        reader.header,
        columns,
        ignored,
        max(1, chunk_rows),
        reader.header_row,
        reader.detected,
        reader.sheet,
        header_row is not None,
        reader,
        mapping,
    )


def _match_columns(
    path: Path, header: list[str], mapping: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Pair headers with fields: ``mapping`` first, then automatic matching."""
    owner: dict[str, str] = {}  # JSON field -> header
    mapped: set[str] = set()
    for wanted, name in mapping.items():
        field_name = match_header(name)
        if field_name is None:
            raise UsageError(
                f"mapping {wanted}={name}: {name!r} is not a field",
                hint=FIELDS_HINT,
                param="mapping",
            )
        written = _find_header(header, wanted)
        if written is None:
            raise InputFileError(
                f"{path}: mapping names a column {wanted!r} that is not in the header; "
                f"the header has: {', '.join(repr(h) for h in header if h) or '(none)'}",
                param="mapping",
            )
        _claim(path, owner, field_name, written)
        mapped.add(written)
    for written in header:
        auto = match_header(written) if written not in mapped else None
        if auto is not None and owner.get(auto) not in mapped:
            _claim(path, owner, auto, written)
    claimed = set(owner.values())
    ignored = list(dict.fromkeys(h for h in header if h.strip() and h not in claimed))
    return owner, ignored


def _find_header(header: list[str], wanted: str) -> str | None:
    if wanted in header:
        return wanted
    folded = wanted.strip().casefold()
    return next((h for h in header if h.strip().casefold() == folded), None)


def _claim(path: Path, owner: dict[str, str], json_name: str, written: str) -> None:
    if json_name in owner and owner[json_name] != written:
        raise InputFileError(
            f"{path}: columns {owner[json_name]!r} and {written!r} both mean {json_name}",
            hint="remove or rename one of them, or choose one with --map",
        )
    if json_name in owner:  # the same header written twice
        raise InputFileError(
            f"{path}: the header has {written!r} twice", hint="remove or rename one of them"
        )
    owner[json_name] = written


#: Rows looked at for a header naming two fields before the first non-blank row is taken.
HEADER_SCAN_ROWS = 50
#: The longest cell read, in characters; a longer one makes its row invalid, unread.
CELL_LIMIT = 131_072
_LINE_LIMIT = 4 * CELL_LIMIT
_MARK = chr(0xFDD0)  # a noncharacter: the first cell of a row that could not be read
_FIRST = operator.itemgetter(0)
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_NON_ASCII = re.compile(r"[\x80-\ud7ff\ue000-\U0010ffff]")


def _names_fields(header: Sequence[str], mapping: Mapping[str, str]) -> int:
    """How many distinct fields a row's cells name (``--map`` headers count too)."""
    mapped = {k.strip().casefold() for k in mapping}
    named = set()
    for cell in header:
        if cell.strip().casefold() in mapped:
            named.add("map:" + cell.strip().casefold())
        elif (json_name := match_header(cell)) is not None:
            named.add(json_name)
    return len(named)


def _header_cells(cells: Sequence[str]) -> list[str]:
    header = [c.strip() for c in cells]
    while header and not header[-1]:
        header.pop()
    return header


def _pick_header(
    rows: Iterable[list[str]], header_row: int | None, mapping: Mapping[str, str]
) -> tuple[int, list[str], bool] | None:
    """(row number, header cells, found as naming two fields) among ``rows`` (from row 1)."""
    first: tuple[int, list[str]] | None = None
    for number, cells in enumerate(rows, start=1):
        if header_row is not None:
            if number == header_row:
                return number, _header_cells(cells), False
            continue
        if number > HEADER_SCAN_ROWS and first is not None:
            break
        header = _header_cells(cells)
        if not any(header):
            continue
        if _names_fields(header, mapping) >= 2:
            return number, header, True
        if first is None:
            first = (number, header)
    return (*first, False) if first is not None else None


class _Reader:
    """What ``Table`` needs from a file kind: its header and batches of text rows."""

    header: list[str]
    header_row: int
    detected: bool
    sheet: str | None = None

    def batches(
        self, size: int, skip: int = 0
    ) -> Iterator[tuple[int, list[list[str]], dict[int, str]]]:
        """(first row number, up to ``size`` rows of text cells, {index: row problem}),
        from the data row after the first ``skip`` on."""
        raise NotImplementedError

    def column_batches(
        self, size: int, skip: int = 0
    ) -> Iterator[tuple[int, list[Sequence[str]], int, dict[int, str]]]:
        """``batches`` column by column: (first row number, columns, rows, problems)."""
        for first, batch, problems in self.batches(size, skip):
            yield first, _transposed(batch), len(batch), problems

    def close(self) -> None:
        """Release the file."""


def _shape(
    columns: list[Sequence[str]],
    size: int,
    first_row: int,
    problems: dict[int, str],
    width: int,
    positions: dict[str, int],
    check_size: bool = True,
) -> Chunk:
    """``size`` rows given column by column -> a ``Chunk``: trimmed cells by field, blank
    rows dropped.

    A row with a non-empty cell beyond the header's ``width`` gets a problem; missing cells
    are empty.  Every step is a scan of a whole column with C-level builtins: a Python
    object per cell (or per row) costs several times as much, in the allocator and the
    garbage collector as much as in the loop.
    """
    columns = columns[:]
    for pos in range(len(columns) - 1, width - 1, -1):  # cells beyond the header: last first
        extra = columns.pop()
        if any(extra):  # cheap: an all-empty column has no non-blank cell
            for i, cell in enumerate(extra):
                if cell and cell.strip():
                    problems.setdefault(
                        i,
                        f"has {pos + 1} cells, the header has {width}: "
                        "is a delimiter inside an unquoted value?",
                    )
    columns += [("",) * size] * (width - len(columns))
    for pos in range(width if check_size else 0):
        if max(map(len, columns[pos]), default=0) > CELL_LIMIT:
            column = list(columns[pos])
            for i, cell in enumerate(column):
                if len(cell) > CELL_LIMIT:
                    problems.setdefault(
                        i, f"has a cell longer than {CELL_LIMIT} characters: not read"
                    )
                    column[i] = ""
            columns[pos] = column
    trimmed = unguarded_columns(
        {pos: list(map(str.strip, columns[pos])) for pos in set(positions.values())}, positions
    )
    if any(map(all, trimmed.values())):  # the common case: a field no row leaves empty
        keep = None
    else:
        keep = [any(cells) for cells in zip(*trimmed.values(), strict=True)] or [False] * size
        for i in (i for i, kept in enumerate(keep) if not kept):  # a cell elsewhere?
            keep[i] = i in problems or any(column[i].strip() for column in columns)
    if keep is None or all(keep):
        shaped = {name: trimmed[pos] for name, pos in positions.items()}
        kept_problems = [problems.get(i, "") for i in range(size)] if problems else None
        return Chunk(list(range(first_row, first_row + size)), shaped, kept_problems)
    rows = [first_row + i for i, kept in enumerate(keep) if kept]
    shaped = {name: list(compress(trimmed[pos], keep)) for name, pos in positions.items()}
    kept_problems = [problems.get(i, "") for i in compress(range(size), keep)] if problems else None
    return Chunk(rows, shaped, kept_problems)


_SECRET_FIELDS = tuple(spec.json for spec in FIELDS if spec.secret)


def unguarded_columns(
    trimmed: dict[int, list[str]], positions: Mapping[str, int]
) -> dict[int, list[str]]:
    """Trimmed columns without the formula guard a writer put on (guard.py), but for a
    password's: a password is taken as typed (no writer of ours ever writes one guarded)."""
    secret = {positions[name] for name in _SECRET_FIELDS if name in positions}
    return {pos: cells if pos in secret else unguarded(cells) for pos, cells in trimmed.items()}


def _transposed(batch: list[list[str]]) -> list[Sequence[str]]:
    """Rows -> columns; short rows (a blank line is ``[]``) padded with empty cells."""
    sizes = list(map(len, batch))
    longest = max(sizes, default=0)
    if sizes.count(longest) == len(sizes):  # the common case: no row to pad
        return list(zip(*batch, strict=True))
    for i in [i for i, n in enumerate(sizes) if n != longest]:
        batch[i] = batch[i] + [""] * (longest - len(batch[i]))
    return list(zip(*batch, strict=True))


def _positions(table: Table) -> dict[str, int]:
    index = {h: i for i, h in reversed(list(enumerate(table.header)))}
    return {json_name: index[h] for json_name, h in table.columns.items()}


# --- CSV -----------------------------------------------------------------------------


@dataclass
class _CsvReader(_Reader):
    """A text file, kept open: every pass reads it through one descriptor, and a pass
    that finds it changed since it was opened (size or modification time) stops with
    ``InputChangedError``, so no row of a truncated or rewritten file is lost unsaid."""

    path: Path
    file: BinaryIO
    stat: os.stat_result
    encoding: str
    errors: str  # "surrogateescape": a UTF-8 file with a few bad bytes (rows invalid)
    delimiter: str = ","
    header_row: int = 1
    header: list[str] = field(default_factory=list)
    detected: bool = False
    long_lines: bool = True  # a line may be over _LINE_LIMIT: read lines through the cap

    @classmethod
    def open(
        cls, path: Path, encoding: str | None, header_row: int | None, mapping: Mapping[str, str]
    ) -> _CsvReader:
        try:
            if encoding is not None:
                try:
                    codecs.lookup(encoding)
                except LookupError:
                    raise UsageError(f"unknown encoding {encoding!r}") from None
            file = path.open("rb")
        except OSError as exc:
            raise _os_error(path, exc) from exc
        try:
            reader = cls(path, file, os.fstat(file.fileno()), "utf-8", "strict")
            reader._open(encoding, header_row, mapping)
        except BaseException:
            file.close()
            raise
        return reader

    def _open(
        self, encoding: str | None, header_row: int | None, mapping: Mapping[str, str]
    ) -> None:
        try:
            if encoding is not None:
                self.encoding = encoding
            else:
                self.encoding, self.errors = _detect_encoding(self.path, self.file)
            self.long_lines = _has_line_over(self.file, _LINE_LIMIT // 4)  # 4 bytes a char
            first_line = self._first_line()
            if first_line is None:
                raise InputFileError(
                    f"{self.path}: has no header row (the file is empty)",
                    hint="the first row must name the columns, e.g. use samples/template.csv",
                )
            with self._text() as stream:
                sample = stream.read(SNIFF_BYTES)
            sniffed = _sniff(self.path, sample, first_line)
            found: tuple[int, list[str], bool] | None = None
            for delimiter in [sniffed] + [d for d in DELIMITERS if d != sniffed]:
                with self._text() as stream:
                    picked = _pick_header(_csv_rows(stream, delimiter), header_row, mapping)
                if picked is not None and (picked[2] or header_row is not None):
                    found, self.delimiter = picked, delimiter
                    break
                if found is None and delimiter == sniffed:
                    found, self.delimiter = picked, delimiter
                if header_row is not None:
                    break
        except (OSError, UnicodeError, csv.Error) as exc:
            raise _csv_error(self.path, exc, self.encoding) from exc
        if found is None and header_row is not None:
            raise InputFileError(f"{self.path}: has no row {header_row} (--header-row)")
        if found is None or not any(found[1]):
            where = f"row {header_row} is empty" if header_row else "its first line has no names"
            raise InputFileError(f"{self.path}: has no header row ({where})")
        self.header_row, header, self.detected = found
        self.header = [_SURROGATE.sub("?", h) for h in header]

    def _text(self) -> TextIO:
        """A new text stream over the open file, from its start."""
        stream = open(  # noqa: SIM115 - the caller closes it
            os.dup(self.file.fileno()),
            encoding=self.encoding,
            errors=self.errors,
            newline="",
        )
        stream.seek(0)
        return stream

    def _first_line(self) -> str | None:
        with self._text() as stream:
            for line in _capped_lines(stream):
                if line.strip(" \r\n" + DELIMITERS):
                    return line
        return None

    def batches(
        self, size: int, skip: int = 0
    ) -> Iterator[tuple[int, list[list[str]], dict[int, str]]]:
        with self._text() as stream:
            for batch in self._batches(stream, size, self.header_row + skip, None):
                assert batch is not None  # no pause asked for
                yield batch

    def paused_batches(self, size: int, pause: Pause) -> Iterator[_Batch | None]:
        """``batches``, with a ``None`` at ``pause`` (see ``Table.paused_chunks``)."""
        with self._text() as stream:
            yield from self._batches(stream, size, self.header_row, pause)

    def batches_from(self, size: int, start: int, first: int) -> Iterator[_Batch | None]:
        """The batches of the records from byte ``start`` on, the first being row ``first``.

        Read with ``pread`` (no file offset shared with another reader of the file, a
        forked one's among them).  UTF-8 with a BOM is read as UTF-8: a BOM counts only at
        the start of the file."""
        encoding = "utf-8" if codecs.lookup(self.encoding).name == "utf-8-sig" else self.encoding
        raw = io.BufferedReader(_PreadFile(self.file.fileno(), start), _SCAN_BLOCK)
        with io.TextIOWrapper(raw, encoding=encoding, errors=self.errors, newline="") as stream:
            yield from self._batches(stream, size, 0, None, first)

    def _batches(
        self,
        stream: TextIO,
        size: int,
        skip: int,
        pause: Pause | None,
        first: int | None = None,
    ) -> Iterator[_Batch | None]:
        first = skip + 1 if first is None else first
        try:
            lines = _capped_lines(stream) if self.long_lines else stream
            for batch in _csv_batches(lines, self.delimiter, skip, size, pause):
                if batch is None:  # the pause (only with ``pause``): the next row's number
                    assert pause is not None
                    pause.next_row = first
                    yield None
                    continue
                self._check_unchanged(first)
                yield first, batch, self._problems(batch)
                first += len(batch)
            self._check_unchanged(first)
        except (OSError, UnicodeError, csv.Error) as exc:
            raise _csv_error(self.path, exc, self.encoding, len(self.header)) from exc

    def _problems(self, batch: list[list[str]]) -> dict[int, str]:
        """Rows that could not be read (marked by ``_csv_rows``) or hold bytes not UTF-8."""
        problems: dict[int, str] = {}
        if _MARK in map(_FIRST, filter(None, batch)):  # a scan at C speed: mostly none
            for i, cells in enumerate(batch):
                if cells and cells[0] == _MARK:
                    problems[i] = cells[1] if len(cells) > 1 else "could not be read"
                    batch[i] = []
        if self.errors == "surrogateescape":
            for i, cells in enumerate(batch):
                bad = [j for j, c in enumerate(cells) if _SURROGATE.search(c)]
                if bad:
                    column = self.header[bad[0]] if bad[0] < len(self.header) else ""
                    where = f" in column {column!r}" if column else ""
                    problems.setdefault(
                        i,
                        f"has bytes that are not UTF-8{where}, though the rest of the file is "
                        "UTF-8: fix them, or give the file's encoding (e.g. --encoding cp1252)",
                    )
                    batch[i] = [_SURROGATE.sub("?", c) for c in cells]
        return problems

    def _check_unchanged(self, next_row: int) -> None:
        now = os.fstat(self.file.fileno())
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise InputChangedError(
                f"{self.path}: changed while it was being read (it had {self.stat.st_size} "
                f"bytes, now {now.st_size}); rows from row {next_row} on were not read",
                hint="leave the input alone during a run: copy it, edit the copy, and run "
                "the copy (with --resume to skip what is done)",
            )

    def close(self) -> None:
        self.file.close()


class _PreadFile(io.RawIOBase):
    """A file descriptor read from ``start`` on with ``os.pread``: its own position, never
    the descriptor's (which other readers of the file share)."""

    def __init__(self, fd: int, start: int) -> None:
        super().__init__()
        self._fd = fd
        self._at = start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self._fd, len(buffer), self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


def _capped_lines(stream: TextIO) -> Iterator[str]:
    """The stream's lines; a line longer than ``_LINE_LIMIT`` is skipped (never held) and
    stands as a marked line, so that a huge cell costs no memory."""
    readline = stream.readline
    while line := readline(_LINE_LIMIT):
        if len(line) < _LINE_LIMIT or line[-1] in "\r\n":
            yield line
            continue
        while (rest := readline(_LINE_LIMIT)) and len(rest) == _LINE_LIMIT:
            if rest[-1] in "\r\n":
                break
        yield (
            f'{_MARK},"has a line longer than {_LINE_LIMIT} characters: not read '
            '(is a cell too large?)"\n'
        )


def _has_line_over(stream: BinaryIO, limit: int) -> bool:
    """Whether a line of the file is longer than ``limit`` bytes (``_longest_line``'s
    answer, without splitting every line): when each run of ``limit // 2`` bytes at a
    multiple of it holds a newline, no line can be ``limit`` bytes long, since a line of
    that length covers one such run whole.  Otherwise the longest line is measured."""
    half = max(1, limit // 2)
    stream.seek(0)
    while block := stream.read(_SCAN_BLOCK - _SCAN_BLOCK % half or half):
        if any(block.find(b"\n", at, at + half) < 0 for at in range(0, len(block), half)):
            return _longest_line(stream) > limit
    return False


def _longest_line(stream: BinaryIO) -> int:
    """The length in bytes of the file's longest line (a C-speed pass over the bytes)."""
    stream.seek(0)
    longest = carry = 0
    while block := stream.read(_SCAN_BLOCK):
        first, sep, _ = block.partition(b"\n")
        if not sep:
            carry += len(block)
            continue
        longest = max(longest, carry + len(first), *map(len, block.split(b"\n")[1:-1]))
        carry = len(block) - block.rindex(b"\n") - 1
    return max(longest, carry)


def _csv_rows(stream: TextIO, delimiter: str) -> Iterator[list[str]]:
    """Every record of the stream as cells (blank lines as ``[]``); a record that cannot be
    read is ``[_MARK, problem]``.  A quote left open at the end is an ``InputFileError``."""
    reader = csv.reader(_capped_lines(stream), delimiter=delimiter, strict=True)
    while True:
        try:
            yield from reader
            return
        except csv.Error as exc:
            yield _unreadable(exc)


@dataclass
class Pause:
    """Where ``Table.paused_chunks`` pauses: once the csv reader has read ``line`` lines
    (as the text stream splits them: at ``\n``, ``\r`` and ``\r\n``).  At the pause,
    ``lines`` is how many it had read (``line`` exactly when a record ends there) and
    ``next_row`` the row number of the record after it."""

    line: int
    lines: int = -1
    next_row: int = -1


def _csv_batches(
    lines: Iterable[str], delimiter: str, skip: int, size: int, pause: Pause | None = None
) -> Iterator[list[list[str]] | None]:
    """The records of ``_csv_rows`` after the first ``skip``, in lists of up to ``size``,
    taken straight from the csv reader (no Python call per record).  ``lines`` is the text
    stream itself when no line can be over ``_LINE_LIMIT``, else ``_capped_lines`` of it.

    With ``pause``: once the reader has read ``pause.line`` lines or more, the batch so
    far, then ``None`` (``pause.lines`` set), then on.  A record takes one line or more,
    so asking for no more records than there are lines left never reads past a record
    that ends at ``pause.line``."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    batch: list[list[str]] = []
    skipping = True
    while True:
        try:
            while skip:
                skip -= 1
                if next(reader, None) is None:
                    if pause is not None:
                        pause.lines = reader.line_num
                        yield None
                    return
            skipping = False
            while True:
                want, before = size - len(batch), len(batch)
                if pause is not None:
                    left = pause.line - reader.line_num
                    if left <= 0:
                        if batch:
                            yield batch
                            batch = []
                        pause.lines = reader.line_num
                        pause = None
                        yield None
                        continue
                    want = min(want, left)
                batch.extend(islice(reader, want))
                if len(batch) - before < want:  # the reader is exhausted
                    if batch:
                        yield batch
                    if pause is not None:
                        pause.lines = reader.line_num
                        yield None
                    return
                if len(batch) == size:
                    yield batch
                    batch = []
        except csv.Error as exc:
            mark = _unreadable(exc)
            if not skipping:
                batch.append(mark)


def _unreadable(exc: csv.Error) -> list[str]:
    """The marked record that stands for one the csv reader refused (see ``_csv_rows``)."""
    text = str(exc)
    if "field larger than field limit" in text:
        return [_MARK, f"has a cell longer than {CELL_LIMIT} characters: not read"]
    if "unexpected end of data" in text:
        raise exc
    return [
        _MARK,
        "has a quoted cell with text after its closing quote: quote the whole "
        'cell, and double the quotes inside it ("")',
    ]


def _detect_encoding(path: Path, stream: BinaryIO) -> tuple[str, str]:
    """(encoding, errors): UTF-8 (``utf-8-sig`` with a BOM), UTF-16 with a BOM, else cp1252.

    A file that is not UTF-8 as a whole but whose non-ASCII text is mostly UTF-8 is read
    as UTF-8 with its bad bytes kept apart (``surrogateescape``): those rows are invalid,
    the rest is not re-read as mojibake.
    """
    stream.seek(0)
    head = stream.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "strict"
    stream.seek(0)
    codec = _utf16_without_bom(stream.read(4096))
    if codec:
        raise InputFileError(
            f"{path}: looks like UTF-16 text without a byte-order mark ({codec})",
            hint=f"name its encoding with --encoding {codec}, or save it as CSV UTF-8",
        )
    if head.startswith(b"PK\x03\x04"):
        raise InputFileError(
            f"{path}: looks like an Excel workbook, not text",
            hint="rename it to .xlsx, or save it from Excel as CSV UTF-8",
        )
    utf8 = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while block := stream.read(_DECODE_BLOCK):
            decoder.decode(block)
        decoder.decode(b"", final=True)
        return utf8, "strict"
    except UnicodeDecodeError:
        pass
    stream.seek(0)
    lenient = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    bad = good = 0
    cp1252 = True
    while block := stream.read(_SCAN_BLOCK):
        text = lenient.decode(block)
        bad += len(_SURROGATE.findall(text))
        good += len(_NON_ASCII.findall(text)) - 0
        if cp1252 and any(b in block for b in _CP1252_UNDEFINED):
            cp1252 = False
    if good > bad:
        return utf8, "surrogateescape"
    if cp1252:
        return "cp1252", "strict"
    raise InputFileError(
        f"{path}: is neither UTF-8 nor Windows-1252 text (is it a text file at all?)",
        hint="save it as CSV UTF-8, or name its encoding with --encoding",
    )


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` when the start of a file is plainly UTF-16 without a
    BOM (mostly ASCII text: every other byte NUL), else None."""
    pairs = len(head) // 2
    if pairs < 4:
        return None
    even = head[0 : pairs * 2 : 2].count(0)
    odd = head[1 : pairs * 2 : 2].count(0)
    if odd >= 0.8 * pairs and even == 0:
        return "utf-16-le"
    if even >= 0.8 * pairs and odd == 0:
        return "utf-16-be"
    return None


def _sniff(path: Path, sample: str, header_line: str) -> str:
    """The delimiter: csv.Sniffer on the start of the file, checked against the header."""
    if path.suffix.lower() == ".tsv":
        fallback = "\t"
    else:
        counts = {d: header_line.count(d) for d in DELIMITERS}
        fallback = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    if len(sample) == SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # no half line at the end
    # csv.Sniffer's quote-guessing regexes take minutes on some inputs (many stray quotes):
    # give it the sample without quoted cells and without quote characters.
    sample = _QUOTED_RE.sub("", sample).replace('"', "").replace("'", "")
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return fallback
    if sniffed not in header_line and any(d in header_line for d in DELIMITERS):
        return fallback
    return sniffed


def _csv_error(
    path: Path, exc: BaseException, encoding: str | None, width: int | None = None
) -> InputFileError:
    """A third-party error while reading a CSV file, as a message a person can act on."""
    if isinstance(exc, OSError):
        return _os_error(path, exc)
    if isinstance(exc, UnicodeError):
        return InputFileError(
            f"{path}: cannot be read as {encoding or 'text'} ({exc})",
            hint="save it as CSV UTF-8, or try --encoding (e.g. cp1252, latin-1, utf-16)",
        )
    text = str(exc)
    if "unexpected end of data" in text:
        return InputFileError(
            f'{path}: a quote (") opened in a cell is never closed',
            hint='close the quote, or double quotes inside quoted cells ("")',
        )
    return InputFileError(
        f"{path}: cannot be read as CSV ({text.strip() or type(exc).__name__})",
        hint="check the delimiter and the quoting, or save it again from a spreadsheet",
    )


def _os_error(path: Path, exc: OSError) -> InputFileError:
    if isinstance(exc, FileNotFoundError):
        return InputFileError(f"{path}: no such file", hint="check the path")
    if isinstance(exc, IsADirectoryError):
        return InputFileError(f"{path}: is a directory, not a file")
    if isinstance(exc, PermissionError):
        return InputFileError(f"{path}: permission denied", hint="check the file's permissions")
    return InputFileError(f"{path}: cannot be read ({exc.strerror or exc})")


# --- workbooks -----------------------------------------------------------------------


@dataclass
class _BookReader(_Reader):
    """A workbook through python-calamine (.xlsx .xlsm .xlsb .xls .ods).

    The sheet is loaded once, when the file is opened: every later pass reads that copy,
    so a file changed during a run changes nothing.  Its rows reach Python one at a time
    (``iter_rows``), a batch at a time as text.
    """

    path: Path
    book: Any
    sheet_data: Any
    sheet: str | None
    height: int = 0
    header_row: int = 1
    header: list[str] = field(default_factory=list)
    detected: bool = False

    @classmethod
    def open(
        cls,
        path: Path,
        sheet: str | None,
        header_row: int | None,
        mapping: Mapping[str, str],
    ) -> _BookReader:
        with _workbook_errors(path):
            _check_expansion(path)
            from python_calamine import CalamineWorkbook

            book = CalamineWorkbook.from_path(str(path))
            try:
                names: list[str] = list(book.sheet_names)
                if sheet is None:
                    if not names:
                        raise InputFileError(f"{path}: the workbook has no sheets")
                    sheet = names[0]
                elif sheet not in names:
                    raise InputFileError(
                        f"{path}: has no sheet {sheet!r}; its sheets are: "
                        + ", ".join(repr(n) for n in names),
                        hint="give one of them with --sheet",
                    )
                data = book.get_sheet_by_name(sheet)
                end = data.end
                reader = cls(path, book, data, sheet, end[0] + 1 if end else 0)
                found = _pick_header(reader._text_rows(), header_row, mapping)
            except BaseException:
                book.close()
                raise
        if found is None or not any(found[1]):
            book.close()
            if header_row is not None:
                raise InputFileError(
                    f"{path}: row {header_row} of sheet {sheet!r} is empty (--header-row)"
                )
            raise InputFileError(
                f"{path}: has no header row (sheet {sheet!r} is empty)",
                hint="the first row must name the columns, or choose another sheet with --sheet",
            )
        reader.header_row, reader.header, reader.detected = found
        return reader

    def _text_rows(self) -> Iterator[list[str]]:
        for values in self.sheet_data.iter_rows():
            yield _texts(values)

    def _raw_batches(self, size: int, skip: int) -> Iterator[tuple[int, list[list[Any]]]]:
        """(first row number, up to ``size`` rows as calamine gives them), from the data row
        after the first ``skip`` on."""
        with _workbook_errors(self.path):
            rows = self.sheet_data.iter_rows()
            for _ in islice(rows, self.header_row + skip):
                pass
            first = self.header_row + 1 + skip
            while raw := list(islice(rows, size)):
                yield first, raw
                first += len(raw)

    def batches(
        self, size: int, skip: int = 0
    ) -> Iterator[tuple[int, list[list[str]], dict[int, str]]]:
        for first, raw in self._raw_batches(size, skip):
            yield first, [_texts(r) for r in raw], {}

    def column_batches(
        self, size: int, skip: int = 0
    ) -> Iterator[tuple[int, list[Sequence[str]], int, dict[int, str]]]:
        """``batches`` without a list per row: the sheet's rows are turned into columns at
        once, and only a column holding a number, date or boolean cell is converted.

        At most ``BOOK_BATCH_ROWS`` rows at a time, whatever ``size`` asks: calamine's rows
        are Python lists, and a few thousand of them at once read fastest.
        """
        for first, raw in self._raw_batches(min(size, BOOK_BATCH_ROWS), skip):
            count, columns = len(raw), _transposed(raw)
            del raw
            for pos, column in enumerate(columns):
                if set(map(type, column)) != {str}:  # C-level: no Python call per cell
                    columns[pos] = _texts(column)
            yield first, columns, count, {}

    def sheets_with(self, fields: Sequence[str], mapping: Mapping[str, str]) -> list[str]:
        """The other sheets whose header (found as in ``open``) has every one of ``fields``."""
        found: list[str] = []
        with contextlib.suppress(Exception):  # a hint only: never fail on it
            for name in self.book.sheet_names:
                if name == self.sheet:
                    continue
                rows = map(_texts, self.book.get_sheet_by_name(name).iter_rows())
                picked = _pick_header(rows, None, mapping)
                if picked is None:
                    continue
                named = {match_header(h) for h in picked[1]}
                named |= {mapping[h] for h in picked[1] if h in mapping}
                if all(f in named for f in fields):
                    found.append(name)
        return found

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.book.close()


#: Rows of a sheet turned into columns at a time.  A 1,000,000-row sheet's dry run reads
#: and checks in 3.2-3.5 s at 2,000, 4.1-4.4 s at 5,000, 5.4-5.9 s at 10,000 and 7.5-7.8 s
#: at 100,000 (benchmarks/stages.py): the fewer row lists alive at once, the less the
#: garbage collector and the caches pay.
BOOK_BATCH_ROWS = 2_000

#: A part of a zipped workbook larger than this, and ``_MAX_RATIO`` times its compressed
#: size, is refused before it is read: it is a few huge cells (a sheet of a million rows
#: compresses about 10:1), and calamine would hold each of them whole.
_MAX_PART = 64 * 1024 * 1024
_MAX_RATIO = 100


def _check_expansion(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > _MAX_PART and info.file_size > _MAX_RATIO * max(
                info.compress_size, 1
            ):
                raise InputFileError(
                    f"{path}: its part {info.filename!r} expands to {info.file_size >> 20} MB "
                    f"from {max(info.compress_size >> 10, 1)} KB: cells that large are not read",
                    hint="find the huge cell (a paste gone wrong?), clear it and save again",
                )


@contextmanager
def _workbook_errors(path: Path) -> Iterator[None]:
    """Turn whatever calamine or the file system raise into an InputFileError."""
    try:
        yield
    except InputFileError:
        raise
    except OSError as exc:
        raise _os_error(path, exc) from exc
    except Exception as exc:  # a damaged workbook can raise almost anything
        raise InputFileError(
            f"{path}: cannot be read as a workbook ({type(exc).__name__}: {exc})",
            hint="is it really an Excel or OpenDocument file? open it and save it as "
            ".xlsx, or export it as CSV UTF-8",
        ) from exc


def _texts(values: Iterable[Any]) -> list[str]:
    """``_cell_text`` of each value, without a call for the text cells (most of them)."""
    return [v if v.__class__ is str else _cell_text(v) for v in values]


def _cell_text(value: Any) -> str:
    """A workbook cell as the text it shows: number cells as their digits (never
    ``1.4E10`` nor ``...71.0``), dates as ``2024-03-01``, booleans as ``TRUE``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
