"""Read the input file: file -> text rows with spreadsheet row numbers.

This module (and ``record``) is the only one that touches files.  It owns SPEC section 3
up to the point where a row is a dict of trimmed text cells:

* ``.csv``/``.txt``/``.tsv``: the encoding is UTF-8 (with or without BOM), else
  Windows-1252; a UTF-16 file with a BOM (Excel's "Unicode Text") is read too, and
  ``encoding=`` overrides the guess.  The delimiter is sniffed among ``,`` ``;`` tab ``|``.
  pandas reads the file chunk by chunk, every cell as text (never through a float).
* ``.xlsx``/``.xlsm``: openpyxl in read-only mode, first sheet unless ``sheet=``; number
  cells become their digits (``14155552671``, never ``1.4155552671E10``).
* Row numbers are the ones a spreadsheet shows: the header row is 1 (or the first
  non-blank row), blank rows are dropped but still counted.  A row is blank when every
  cell, matched or not, is empty after trimming.
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
import csv
import datetime as dt
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any

import pandas as pd

from bulk_import.errors import InputFileError, UsageError
from bulk_import.models import FIELDS, RawRow

CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
_SCAN_BLOCK = 1024 * 1024
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
_FIELDS_HINT = "fields: " + ", ".join(spec.json for spec in FIELDS)


def match_header(header: str) -> str | None:
    """The JSON field name a header stands for, or None."""
    return _HEADER_KEYS.get(_key(header))


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["Header=field", ...]`` (from ``--map``) -> ``{header: JSON field name}``."""
    mapping: dict[str, str] = {}
    for item in items:
        header, sep, name = item.rpartition("=")
        header, name = header.strip(), name.strip()
        if not sep or not header or not name:
            raise UsageError(
                f"--map {item!r} is not of the form 'Header=field'",
                hint=_FIELDS_HINT,
            )
        json_name = match_header(name)
        if json_name is None:
            raise UsageError(f"--map {item!r}: {name!r} is not a field", hint=_FIELDS_HINT)
        mapping[header] = json_name
    return mapping


@dataclass
class Table:
    """An opened input file: its header, matched columns, and a way to stream its rows."""

    path: Path
    header: list[str]
    columns: dict[str, str]
    ignored: list[str]
    chunk_rows: int = 10_000
    _reader: _Reader | None = field(default=None, repr=False)

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Frames of at most ``chunk_rows`` rows: ``row`` plus one text column per field."""
        if self._reader is None:
            return
        for frame in self._reader.frames(self):
            if len(frame):  # a chunk of blank rows only
                yield frame

    def estimated_rows(self) -> int | None:
        """About how many data rows there are (a progress bar's total), if cheap to know.

        For a CSV, its line count less the header (blank lines and multi-line cells make
        it approximate); for a workbook, None: its row count is not known without reading.
        """
        if not isinstance(self._reader, _CsvReader):
            return None
        lines = 0
        try:
            with self.path.open("rb") as f:
                while block := f.read(1 << 20):
                    lines += block.count(b"\n")
        except OSError:
            return None
        return max(lines - 1, 0)

    def rows(self) -> Iterator[RawRow]:
        """One ``RawRow`` per non-blank data row, holding only its non-empty cells."""
        for frame in self.chunks():
            names = [str(c) for c in frame.columns[1:]]
            columns = [frame[name].tolist() for name in names]
            for row, *cells in zip(frame["row"].tolist(), *columns, strict=True):
                yield RawRow(row, {n: c for n, c in zip(names, cells, strict=True) if c})


def open_table(
    path: Path,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    chunk_rows: int = 10_000,
) -> Table:
    """Open a CSV or Excel file, read its header and match it to the API's fields."""
    path = Path(path)
    suffix = path.suffix.lower()
    reader: _Reader
    if suffix in CSV_SUFFIXES:
        reader = _CsvReader.open(path, encoding)
    elif suffix in XLSX_SUFFIXES:
        reader = _XlsxReader.open(path, sheet)
    else:
        hint = "save it as .xlsx or CSV UTF-8" if suffix in {".xls", ".ods", ".numbers"} else ""
        raise InputFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; "
            "bulk-import reads .csv, .txt, .tsv, .xlsx and .xlsm",
            hint=hint or None,
        )
    columns, ignored = _match_columns(path, reader.header, mapping or {})
    return Table(path, reader.header, columns, ignored, max(1, chunk_rows), reader)


def _match_columns(
    path: Path, header: list[str], mapping: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Pair headers with fields: ``--map`` first, then automatic matching."""
    owner: dict[str, str] = {}  # JSON field -> header
    mapped: set[str] = set()
    for wanted, name in mapping.items():
        field_name = match_header(name)
        if field_name is None:
            raise UsageError(f"--map {wanted}={name}: {name!r} is not a field", hint=_FIELDS_HINT)
        written = _find_header(header, wanted)
        if written is None:
            raise InputFileError(
                f"{path}: --map names a column {wanted!r} that is not in the header; "
                f"the header has: {', '.join(repr(h) for h in header if h) or '(none)'}"
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


class _Reader:
    """What ``Table`` needs from a file kind: its header and a stream of raw frames."""

    header: list[str]

    def frames(self, table: Table) -> Iterator[pd.DataFrame]:
        raise NotImplementedError


def _shape(columns: list[list[Any]], first_row: int, positions: dict[str, int]) -> pd.DataFrame:
    """Positional columns of cells -> a ``chunks()`` frame: trimmed, blank rows dropped.

    Plain lists, not pandas' ``.str`` methods: these run per cell in Python either way,
    and lists are several times faster.
    """
    size = len(columns[0]) if columns else 0
    trimmed = {
        pos: _trim(columns[pos]) if pos < len(columns) else [""] * size
        for pos in set(positions.values())
    }
    keep = [any(cells) for cells in zip(*trimmed.values(), strict=True)] or [False] * size
    others = [column for pos, column in enumerate(columns) if pos not in trimmed]
    for i in (i for i, kept in enumerate(keep) if not kept and others):
        keep[i] = any(_trim([column[i]])[0] for column in others)  # a cell elsewhere
    rows = [first_row + i for i, kept in enumerate(keep) if kept]
    frame = pd.DataFrame({"row": pd.Series(rows, dtype="int64")})
    for name, pos in positions.items():
        frame[name] = pd.Series(list(compress(trimmed[pos], keep)), dtype=object)
    return frame


def _trim(cells: list[Any]) -> list[str]:
    try:
        return [c.strip() for c in cells]
    except AttributeError:  # a missing cell (NaN/None) among them
        return [c.strip() if isinstance(c, str) else "" for c in cells]


def _positions(table: Table) -> dict[str, int]:
    index = {h: i for i, h in reversed(list(enumerate(table.header)))}
    return {json_name: index[h] for json_name, h in table.columns.items()}


# --- CSV -----------------------------------------------------------------------------


@dataclass
class _CsvReader(_Reader):
    path: Path
    encoding: str
    delimiter: str
    skip: int  # blank lines before the header
    header: list[str]

    @classmethod
    def open(cls, path: Path, encoding: str | None) -> _CsvReader:
        try:
            if encoding is not None:
                try:
                    codecs.lookup(encoding)
                except LookupError:
                    raise UsageError(f"unknown encoding {encoding!r}") from None
            else:
                encoding = _detect_encoding(path)
            skip, first_line = _leading_blank_lines(path, encoding)
            if first_line is None:
                raise InputFileError(
                    f"{path}: has no header row (the file is empty)",
                    hint="the first row must name the columns, e.g. use samples/template.csv",
                )
            delimiter = _sniff(path, encoding, first_line)
            header = _read_header(path, encoding, delimiter, skip)
        except (OSError, UnicodeError, ValueError, csv.Error) as exc:
            # pandas' ParserError and EmptyDataError are ValueErrors
            raise _csv_error(path, exc, encoding) from exc
        if not any(header):
            raise InputFileError(f"{path}: has no header row (its first line has no names)")
        return cls(path, encoding, delimiter, skip, header)

    def frames(self, table: Table) -> Iterator[pd.DataFrame]:
        positions = _positions(table)
        first_row = self.skip + 2
        try:
            reader = pd.read_csv(
                self.path,
                sep=self.delimiter,
                header=0,
                skiprows=self.skip,
                index_col=False,  # never take a first column as the index
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,  # blank lines count for the row numbers
                encoding=self.encoding,
                encoding_errors="strict",
                chunksize=table.chunk_rows,
            )
            with reader:
                while (raw := _next_chunk(reader)) is not None:
                    columns = [raw.iloc[:, i].tolist() for i in range(raw.shape[1])]
                    yield _shape(columns, first_row, positions)
                    first_row += len(raw)
        except pd.errors.ParserWarning as exc:  # the first data row is too long
            raise InputFileError(
                f"{self.path}: line {self.skip + 2} has more cells than the header has "
                f"({len(self.header)})",
                hint="check the delimiter, or quote cells that contain it",
            ) from exc
        except (OSError, UnicodeError, ValueError) as exc:  # pandas' ParserError: ValueError
            raise _csv_error(self.path, exc, self.encoding, len(self.header)) from exc


def _next_chunk(reader: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """The next chunk, or None; pandas' warning that it would drop cells is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return next(reader, None)


def _detect_encoding(path: Path) -> str:
    """UTF-8 (``utf-8-sig`` with a BOM), UTF-16 with a BOM, else Windows-1252."""
    with path.open("rb") as stream:
        head = stream.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        if head.startswith(b"PK\x03\x04"):
            raise InputFileError(
                f"{path}: looks like an Excel workbook, not text",
                hint="rename it to .xlsx, or save it from Excel as CSV UTF-8",
            )
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        utf8 = True
        cp1252 = True
        offset = 0
        while block := stream.read(_SCAN_BLOCK):
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
            if cp1252 and any(b in block for b in _CP1252_UNDEFINED):
                cp1252 = False
            offset += len(block)
            if not utf8 and not cp1252:
                break
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    if cp1252:
        return "cp1252"
    raise InputFileError(
        f"{path}: is neither UTF-8 nor Windows-1252 text (is it a text file at all?)",
        hint="save it as CSV UTF-8, or name its encoding with --encoding",
    )


def _leading_blank_lines(path: Path, encoding: str) -> tuple[int, str | None]:
    """How many blank lines precede the header, and the header line itself."""
    count = 0
    with path.open("r", encoding=encoding, newline="") as stream:
        for line in stream:
            if line.strip(" \r\n" + DELIMITERS):
                return count, line
            count += 1
    return count, None


def _sniff(path: Path, encoding: str, header_line: str) -> str:
    """The delimiter: csv.Sniffer on the start of the file, checked against the header."""
    if path.suffix.lower() == ".tsv":
        fallback = "\t"
    else:
        counts = {d: header_line.count(d) for d in DELIMITERS}
        fallback = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    with path.open("r", encoding=encoding, errors="replace", newline="") as stream:
        sample = stream.read(SNIFF_BYTES)
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


def _read_header(path: Path, encoding: str, delimiter: str, skip: int) -> list[str]:
    """The header cells exactly as written (pandas would rename duplicates)."""
    first = pd.read_csv(
        path,
        sep=delimiter,
        header=None,
        skiprows=skip,
        nrows=1,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=encoding,
        encoding_errors="strict",
    )
    return [str(v).strip() for v in first.iloc[0].tolist()] if len(first) else []


_FIELDS_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


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
    if isinstance(exc, pd.errors.EmptyDataError):
        return InputFileError(f"{path}: has no header row (the file is empty)")
    text = str(exc)
    match = _FIELDS_RE.search(text)
    if match:
        expected, line, saw = match.groups()
        return InputFileError(
            f"{path}: line {line} has {saw} cells but the header has {width or expected}",
            hint="check the delimiter, or quote cells that contain it",
        )
    if "EOF inside string" in text:
        return InputFileError(
            f'{path}: a quote (") opened in a cell is never closed ({text.strip()})',
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


# --- Excel ---------------------------------------------------------------------------


@dataclass
class _XlsxReader(_Reader):
    path: Path
    sheet: str
    header_row: int
    header: list[str]

    @classmethod
    def open(cls, path: Path, sheet: str | None) -> _XlsxReader:
        with _workbook_errors(path):
            book = _load_workbook(path)
            try:
                names = [ws.title for ws in book.worksheets]
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
                for number, values in _sheet_rows(book, sheet):
                    header = [_cell_text(v) for v in values]
                    if any(header):
                        while header and not header[-1]:
                            header.pop()
                        return cls(path, sheet, number, header)
            finally:
                book.close()
        raise InputFileError(
            f"{path}: has no header row (sheet {sheet!r} is empty)",
            hint="the first row must name the columns, or choose another sheet with --sheet",
        )

    def frames(self, table: Table) -> Iterator[pd.DataFrame]:
        positions = _positions(table)
        width = len(self.header)
        with _workbook_errors(self.path):
            book = _load_workbook(self.path)
            try:
                batch: list[list[str]] = []
                first = self.header_row + 1
                for number, values in _sheet_rows(book, self.sheet):
                    if number <= self.header_row:
                        continue
                    cells = [_cell_text(v) for v in values[:width]]
                    batch.append(cells + [""] * (width - len(cells)))
                    if len(batch) >= table.chunk_rows:
                        yield _shape(_transpose(batch, width), first, positions)
                        first += len(batch)
                        batch = []
                if batch:
                    yield _shape(_transpose(batch, width), first, positions)
            finally:
                book.close()


def _transpose(batch: list[list[str]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*batch, strict=True)] if batch else [[]] * width


def _load_workbook(path: Path) -> Any:
    from openpyxl import load_workbook

    return load_workbook(path, read_only=True, data_only=True)


def _sheet_rows(book: Any, sheet: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(sheet row number, cell values) for every row, empty rows included as ``()``."""
    worksheet = book[sheet]
    worksheet.reset_dimensions()  # a wrong <dimension> in the file must not truncate it
    yield from enumerate(worksheet.iter_rows(values_only=True), start=1)


@contextmanager
def _workbook_errors(path: Path) -> Iterator[None]:
    """Turn whatever openpyxl, zipfile or the XML parser raise into an InputFileError."""
    try:
        yield
    except InputFileError:
        raise
    except OSError as exc:
        raise _os_error(path, exc) from exc
    except Exception as exc:  # a damaged workbook can raise almost anything
        raise InputFileError(
            f"{path}: cannot be read as an Excel workbook ({type(exc).__name__}: {exc})",
            hint="is it really an Excel file? open it in Excel and save it as .xlsx, "
            "or export it as CSV UTF-8",
        ) from exc


def _cell_text(value: Any) -> str:
    """An Excel cell value as text: number cells as their digits, never ``1.4E10``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()
