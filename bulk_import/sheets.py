"""sheets: the outputs people open in a spreadsheet: ``--output X.xlsx`` and ``--failed-rows``.

* ``XlsxResults``: the results as a workbook.  During a run nothing is written to it row by
  row: the journal (``<results>.journal``) is the durable record of every finished row, and
  the workbook is rendered from it at the end (and again by ``--resume``).  Sheet
  ``results`` has the results file's columns (``changes`` too, where the CSV has it), every
  cell text (phone numbers stay text), one fill per status, the header frozen, a filter
  on, widths fitted; sheet ``summary`` has the counts, times, requests and options (never a
  secret).  ``xlsxstream`` writes it in
  batches of rows through a temporary file, so a million rows take no more memory than a
  few (and a few seconds, where a call per cell took ~20 s).
* ``write_failed_rows``: the rows that ended ``invalid``, ``failed`` or ``not_attempted``,
  in the input's own columns and order, ``error`` first: fix them and run that file.  It
  copies input cells as they are (trunk passwords too), so it is owner-only (0600).

Both are built in a new owner-only file beside the target (``mkstemp``: never through a
planted link) and moved over it when complete.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import interrupts
from .errors import ResultsFileError
from .models import ResultColumns, RowResult, Status
from .outputs import is_workbook_path
from .record import CHANGES_COLUMN, KEY_COLUMNS, RESULT_COLUMNS, not_results
from .xlsxstream import StreamingWorkbook

if TYPE_CHECKING:
    from .load import Table
    from .record import Summary

#: The results workbook's sheet of rows (its other sheet is ``summary``).
RESULTS_SHEET = "results"
FAILED_STATUSES = frozenset({Status.INVALID, Status.FAILED, Status.NOT_ATTEMPTED})

#: Fill colour per status (green for done, red for refused, amber for not sent ...).
STATUS_FILLS: dict[str, str] = {
    "imported": "#C6EFCE",
    "updated": "#C6EFCE",
    "valid": "#C6EFCE",
    "already_exists": "#DDEBF7",
    "invalid": "#FFC7CE",
    "failed": "#FF9999",
    "not_attempted": "#FFEB9C",
}
_OTHER_FILL = "#EDEDED"
_HEADER_FILL = "#D9D9D9"
_MAX_WIDTH = 60


@contextlib.contextmanager
def _replacing(path: Path, what: str) -> Iterator[Path]:
    """A new owner-only temporary file beside ``path``, moved over it if all goes well."""
    tmp: Path | None = None
    try:
        with interrupts.held():  # an interrupt once ``tmp`` is known: it is removed
            try:
                fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            except OSError as exc:
                raise ResultsFileError(
                    f"can't write the {what} {path}: {exc.strerror}", hint="choose another path"
                ) from exc
            os.close(fd)
            tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)  # replaces a link itself, never what it points to
    except BaseException:
        if tmp is not None:
            with interrupts.held():  # a second interrupt: once it is removed
                tmp.unlink(missing_ok=True)
        raise


class XlsxResults:
    """The results workbook: ``write`` the rows (in row order), then ``finish(summary)``."""

    def __init__(self, path: Path, *, changes: bool = False) -> None:
        self.path = path
        #: The ``changes`` column after the seven (plan, update, ``--on-existing update``).
        self.changes = changes
        self.counts: dict[str, int] = {s.value: 0 for s in Status}
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(_replacing(path, "results workbook"))
        self._book = StreamingWorkbook(
            self._tmp,
            sheet=RESULTS_SHEET,
            header=(*RESULT_COLUMNS, CHANGES_COLUMN) if changes else RESULT_COLUMNS,
            kinds=("number", "text", "styled", "text", "text", "number", "text")
            + (("text",) if changes else ()),
            fills=STATUS_FILLS,
            other_fill=_OTHER_FILL,
            header_fill=_HEADER_FILL,
            summary_sheet="summary",
            max_width=_MAX_WIDTH,
        )

    def write(self, results: Iterable[RowResult]) -> None:
        batch: list[RowResult] = []
        for result in results:
            batch.append(result)
            if len(batch) == 10_000:
                self._rows(_columns(batch, self.changes))
                batch = []
        self._rows(_columns(batch, self.changes))

    def write_columns(self, chunks: Iterable[ResultColumns]) -> None:
        """``write`` for the dry run's lines, given column-wise."""
        for chunk in chunks:
            columns: list[list[Any]] = list(chunk)
            columns[6] = [" ".join(e.split()) if e else e for e in chunk.error]
            if self.changes:  # a dry run changes nothing: the column is empty
                columns.append([""] * len(columns[0]))
            self._rows(columns)

    def _rows(self, columns: list[list[Any]]) -> None:
        """Rows given column-wise; ``row`` and ``attempts`` numbers, the rest text.

        Every text cell is written as text, never a number: Excel must not retype a phone
        number.  The status cell carries the status's fill.
        """
        if not columns[0]:
            return
        counts = self.counts
        for status, n in Counter(columns[2]).items():
            counts[status] = counts.get(status, 0) + n
        self._book.rows(columns)

    def finish(self, summary: Summary, options: dict[str, str]) -> None:
        """Write the summary sheet, close the workbook and move it into place."""
        try:
            rows: list[tuple[str, Any]] = [("status", "rows")]
            rows += [(status, n) for status, n in summary.counts.items() if n]
            rows += [
                ("rows", summary.rows),
                ("started", summary.started_at),
                ("finished", summary.finished_at),
                ("duration (s)", summary.duration_seconds),
                ("requests", summary.requests),
                ("429 answers", summary.throttled),
                ("settled rate (req/s)", summary.settled_rate or ""),
                ("aborted", summary.aborted or ""),
                ("exit code", summary.exit_code),
                ("results", summary.results),
            ]
            rows += [(f"option {name}", value) for name, value in options.items()]
            self._book.close(rows)
        except BaseException:
            self._stack.__exit__(*_current())
            raise
        self._stack.close()

    def abandon(self) -> None:
        """Drop the half-written workbook (the journal still has every row)."""
        with contextlib.suppress(Exception):
            self._book.abandon()
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("abandoned"), None)


def read_results_xlsx(path: Path, *, strict: bool = False) -> Iterator[RowResult]:
    """The rows of an earlier results workbook (``--resume`` when its journal is gone,
    ``undo``).  ``strict``: a workbook that is not a results workbook is an error (for
    ``undo``), not a workbook with no rows (for ``--resume``, which then sends every row).
    """
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = list(book.sheet_names)
        if strict and RESULTS_SHEET not in names:
            raise not_results(path, list(KEY_COLUMNS))
        rows = book.get_sheet_by_name(RESULTS_SHEET).iter_rows()
        header = [str(c) for c in next(rows, [])]
    except ResultsFileError:
        raise
    except Exception as exc:  # a damaged or foreign workbook
        raise ResultsFileError(
            f"can't read the earlier results workbook {path}: {type(exc).__name__}: {exc}",
            hint="give the workbook a run wrote"
            if strict
            else "delete it (every row is then sent again; the API answers 409 for the "
            "numbers it has), or give another --output",
        ) from exc
    index = {name: i for i, name in enumerate(header)}
    missing = [name for name in RESULT_COLUMNS if name not in index]
    if missing:
        if strict:
            raise not_results(path, missing)
        return
    for values in rows:
        cells = {name: _text(values[i]) for name, i in index.items() if i < len(values)}
        try:
            status = Status(cells.get("status", ""))
            row = int(cells.get("row", ""))
        except ValueError:
            continue
        http, attempts = cells.get("http_status", ""), cells.get("attempts", "")
        yield RowResult(
            row=row,
            phone_number=cells.get("phone_number", ""),
            status=status,
            sip_phone_number=cells.get("sip_phone_number", ""),
            http_status=int(http) if http.isdigit() else None,
            attempts=int(attempts) if attempts.isdigit() else 0,
            error=cells.get("error", ""),
            changes=cells.get(CHANGES_COLUMN, ""),
        )


def _text(value: object) -> str:
    """A results-workbook cell as text (its numbers are whole: ``2.0`` -> ``2``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _columns(results: list[RowResult], changes: bool = False) -> list[list[Any]]:
    columns: list[list[Any]] = [
        [r.row for r in results],
        [r.phone_number for r in results],
        [r.status.value for r in results],
        [r.sip_phone_number for r in results],
        ["" if r.http_status is None else str(r.http_status) for r in results],
        [r.attempts for r in results],
        [" ".join(r.error.split()) for r in results],
    ]
    if changes:
        columns.append([" ".join(r.changes.split()) for r in results])
    return columns


def _current() -> tuple[Any, Any, Any]:
    import sys

    return sys.exc_info()


def write_failed_rows(path: Path, table: Table, results: Iterable[RowResult]) -> int:
    """Write the rows of ``results`` that did not go through, as the input has them.

    ``results`` must be in row order (as the journal and the dry run give them); the input
    is read once more alongside it.  Returns how many rows were written.
    """
    header = list(table.header)
    skip_first = bool(header) and header[0].strip().casefold() == "error"  # a fed-back file
    if skip_first:
        header = header[1:]
    failed = ((r.row, r.error) for r in results if r.status in FAILED_STATUSES)
    lines = _join(failed, table.records(), skip_first, len(header))
    count = 0
    xlsx = is_workbook_path(path)
    with _replacing(path, "failed-rows file") as tmp:
        if xlsx:
            import xlsxwriter

            book = xlsxwriter.Workbook(str(tmp), {"constant_memory": True})
            sheet = book.add_worksheet("failed rows")
            bold = book.add_format({"bold": True})
            for col, name in enumerate(["error", *header]):
                sheet.write_string(0, col, name, bold)
            for count, cells in enumerate(lines, start=1):
                for col, cell in enumerate(cells):
                    if cell:
                        sheet.write_string(count, col, cell)
            sheet.freeze_panes(1, 0)
            book.close()
        else:
            with tmp.open("w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(["error", *header])
                for count, cells in enumerate(lines, start=1):  # noqa: B007
                    writer.writerow(cells)
    return count


def _join(
    failed: Iterator[tuple[int, str]],
    records: Iterator[tuple[int, list[str]]],
    skip_first: bool,
    width: int,
) -> Iterator[list[str]]:
    """The input row of each failed result (both in row order), ``error`` first."""
    wanted = next(failed, None)
    for row, cells in records:
        while wanted is not None and wanted[0] < row:
            wanted = next(failed, None)
        if wanted is None:
            return
        if wanted[0] == row:
            own = cells[1:] if skip_first else list(cells)
            own += [""] * (width - len(own))
            yield [" ".join(wanted[1].split()), *own]
            wanted = next(failed, None)
