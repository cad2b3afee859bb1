"""record: outcomes -> the journal, the results file and the summary.

Three things live on disk beside each other, all created owner-only (0600), never written
through a link (``outputs`` opens them):

- ``<results>.journal``: a SQLite database in WAL mode.  Every finished row is committed
  the moment it finishes (so ``kill -9`` loses nothing finished), every request is marked
  "in doubt" before it is sent (so a resume knows which numbers may have been stored by a
  request whose answer was lost), and the done rows of earlier runs are kept for
  ``--resume``.
- ``<results>``: the results CSV.  During a run each finished row is appended and flushed;
  at the end the file is rewritten atomically in input order from the journal.
- the summary: one line on stderr, and the same as JSON with ``--summary-json``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from . import interrupts
from .errors import ResultsFileError, WriteError
from .figures import Second
from .guard import RISKY_LINE
from .guard import defuse as defuse  # the formula guard, imported from here too
from .models import ResultColumns, ResultLines, RowResult, Status
from .outputs import (
    describe,
    new_file_beside,
    open_append,
    open_stream,
)
from .outputs import journal_path as journal_path  # the journal is named here too

RESULT_COLUMNS = (
    "row",
    "phone_number",
    "status",
    "sip_phone_number",
    "http_status",
    "attempts",
    "error",
)
#: The column after the seven for plan, update and ``run --on-existing update``.
CHANGES_COLUMN = "changes"


#: HTTP statuses that are a definitive answer about a row: after one of them, the row is
#: no longer "in doubt" (the API told us what happened to it).
_DEFINITIVE = frozenset({200, 201, 202, 204, 400, 401, 403, 404, 409, 422})


def result_cells(result: RowResult, *, changes: bool = False) -> list[str]:
    """The CSV cells of one results line, defused (with the ``changes`` cell if asked)."""
    cells = [
        str(result.row),
        defuse(result.phone_number),
        result.status.value,
        defuse(result.sip_phone_number),
        "" if result.http_status is None else str(result.http_status),
        str(result.attempts),
        defuse(" ".join(result.error.split())),
    ]
    if changes:
        cells.append(defuse(" ".join(result.changes.split())))
    return cells


class ResultsWriter:
    """The results CSV: rows appended as they finish, rewritten in row order at the end.

    The file is a new one from the start (made beside ``path`` and renamed over it), so an
    earlier results file, or whatever ``path`` names, is replaced and never written into.
    """

    def __init__(self, path: Path, *, changes: bool = False) -> None:
        self.path = path
        self.changes = changes
        self.columns = (*RESULT_COLUMNS, CHANGES_COLUMN) if changes else RESULT_COLUMNS
        self._file: TextIO | None = None
        self._held: list[RowResult] | None = None  # rows waiting for the ledger's commit
        tmp: Path | None = None
        try:
            file, tmp = new_file_beside(path)
            self._file = file
            self._csv = csv.writer(file, lineterminator="\n")
            self._csv.writerow(self.columns)
            file.flush()
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise ResultsFileError(
                f"can't write the results file {path}: {describe(exc)}",
                hint="choose another place with output",
                param="output",
            ) from exc

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, result: RowResult) -> None:
        """Append one finished row and hand it to the OS (survives a killed process)."""
        if self._file is None:
            return
        if self._held is not None:
            self._held.append(result)
            return
        try:
            self._csv.writerow(result_cells(result, changes=self.changes))
            self._file.flush()
        except OSError as exc:
            raise WriteError(f"can't write the results file {self.path}: {describe(exc)}") from exc

    def hold(self) -> None:
        """From now on a row appended waits until ``release``: the ledger's commit of it
        (docs/architecture.md, "Exactly once": the file never shows a row the ledger lacks)."""
        if self._held is None:
            self._held = []

    def release(self, *, holding: bool = True, write: bool = True) -> None:
        """Append the rows held (unless not ``write``), in one write; then go on holding
        rows, or not."""
        held = self._held
        self._held = [] if holding else None
        if not held or not write or self._file is None:
            return
        changes = self.changes
        try:
            self._csv.writerows([result_cells(r, changes=changes) for r in held])
            self._file.flush()
        except OSError as exc:
            raise WriteError(f"can't write the results file {self.path}: {describe(exc)}") from exc

    def finalize(self, results: Iterable[RowResult]) -> None:
        """Replace the file, atomically, by ``results`` (already in row order)."""
        self.close()
        tmp: Path | None = None
        try:
            out, tmp = new_file_beside(self.path)
            with out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(self.columns)
                writer.writerows(result_cells(r, changes=self.changes) for r in results)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise WriteError(
                f"can't rewrite the results file {self.path} in row order: {describe(exc)} "
                "(its rows so far are there, in the order they finished)"
            ) from exc

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:  # the last flush, on a full disk
                raise WriteError(
                    f"can't write the results file {self.path}: {describe(exc)}"
                ) from exc


def read_results_csv(path: Path, *, strict: bool = False) -> Iterator[RowResult]:
    """Read a results file written by an earlier run, tolerating a torn last line.

    ``strict``: a file without the results columns is an error (``not_results``), not a
    file with no rows.
    """
    try:
        f = path.open(encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        raise ResultsFileError(f"can't read the earlier results file {path}: {exc}") from exc
    with f:
        reader = csv.DictReader(f)
        missing = [name for name in KEY_COLUMNS if name not in (reader.fieldnames or ())]
        if strict and missing:
            raise not_results(path, missing)
        for record in reader:
            try:
                status = Status(record.get("status") or "")
                row = int(record.get("row") or "")
            except ValueError:
                continue  # a torn or foreign line: the row is simply sent again
            http = record.get("http_status") or ""
            attempts = record.get("attempts") or ""
            yield RowResult(
                row=row,
                phone_number=(record.get("phone_number") or "").lstrip("'"),
                status=status,
                sip_phone_number=(record.get("sip_phone_number") or "").lstrip("'"),
                http_status=int(http) if http.isdigit() else None,
                attempts=int(attempts) if attempts.isdigit() else 0,
                error=record.get("error") or "",
                changes=record.get(CHANGES_COLUMN) or "",
            )


#: The columns without which a file is not a results file.
KEY_COLUMNS = RESULT_COLUMNS[:3]


def not_results(path: Path, missing: list[str]) -> ResultsFileError:
    """The error for a file given as a results file that is not one (``undo numbers.csv``)."""
    return ResultsFileError(
        f"{path} is not the results file of a run: it has no "
        + ", ".join(repr(name) for name in missing)
        + " column(s)",
        hint="give the file a run wrote: numbers.results.csv, or the output it was given",
    )


@dataclass
class Summary:
    """What a run did, for the summary line and ``--summary-json``."""

    rows: int
    counts: dict[str, int]
    results: str
    exit_code: int
    started_at: str
    finished_at: str
    duration_seconds: float
    #: the rows this run finished (``counts`` less the rows ``--resume`` found done
    #: earlier); None means the same as ``counts``
    this_run: dict[str, int] | None = None
    dry_run: bool = False
    requests: int = 0
    #: requests per second achieved: ``requests`` over the time spent sending
    achieved_rate: float | None = None
    throttled: int = 0
    #: the rate in force at the end: the limit the rate controller found, else ``--rate``
    settled_rate: float | None = None
    #: ``--rate`` (a ceiling, not a limit found)
    rate_ceiling: float | None = None
    aborted: str | None = None
    interrupted: bool = False
    command: str = "run"
    #: rows an earlier, unfinished run of the same results file left not done, whose
    #: results this run (without ``--resume``) replaced
    replaced_unfinished: int = 0
    #: the requests' latency percentiles in seconds (``p50``, ``p95``, ``p99``), the
    #: requests by HTTP status (``"none"``: no answer), and one entry per second of sending
    #: (figures.py); what the metrics file, the ping and the report render from
    latency: dict[str, float] | None = None
    responses: dict[str, int] = field(default_factory=dict)
    timeline: list[Second] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.this_run is None:
            self.this_run = dict(self.counts)

    @property
    def done_earlier(self) -> int:
        """Rows counted in ``counts`` that an earlier run finished (``--resume``)."""
        this_run = self.this_run if self.this_run is not None else self.counts
        return sum(self.counts.values()) - sum(this_run.values())

    def line(self) -> str:
        if self.command == "plan":
            return self._plan_line()
        this_run = self.this_run if self.this_run is not None else self.counts
        parts = [f"{n} {status}" for status, n in this_run.items() if n]
        if self.done_earlier:
            parts.append(f"{self.done_earlier} done earlier")
        what = ", ".join(parts) if parts else "nothing to do"
        rate = ""
        if self.requests:
            achieved = f"{self.achieved_rate:.1f}" if self.achieved_rate is not None else "?"
            rate = f", {self.requests} {_plural(self.requests, 'request')} at {achieved} req/s"
            found = self.throttled or self.settled_rate != self.rate_ceiling
            if self.settled_rate and found:
                rate += f" (limit settled at {self.settled_rate:.0f} req/s)"
        if self.aborted:
            what += " (it stopped sending; the rows already in flight finished)"
        replaced = ""
        if self.replaced_unfinished:
            replaced = (
                f"; an earlier run of it had left {self.replaced_unfinished} "
                f"{_plural(self.replaced_unfinished, 'row')} unfinished: this is a new batch "
                "(the earlier one, if it sent anything, is kept beside it; --resume would "
                "have continued it)"
            )
        return (
            f"bulk-import: {self.rows} {_plural(self.rows, 'row')}: {what} in "
            f"{self.duration_seconds:.1f}s{rate}; results: {self.results}{replaced} "
            f"(exit {self.exit_code})"
        )

    def _plan_line(self) -> str:
        """A plan reads like one: "would import 812, update 40, leave 148 unchanged; ..."."""
        n = self.counts.get
        would = [f"import {n('would_import', 0)}", f"update {n('would_update', 0)}"]
        if n("unchanged", 0):
            would.append(f"leave {n('unchanged', 0)} unchanged")
        if n("already_exists", 0):
            would.append(f"skip {n('already_exists', 0)} that exist")
        rest = [
            f"{count} {status}"
            for status, count in self.counts.items()
            if count
            and status not in ("would_import", "would_update", "unchanged", "already_exists")
        ]
        tail = f"; {', '.join(rest)}" if rest else ""
        return (
            f"bulk-import: plan for {self.rows} rows: would {', '.join(would)}{tail}; "
            f"nothing was changed; plan: {self.results} (exit {self.exit_code})"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def write_summary_json(summary: Summary, path: Path) -> None:
    """Write the summary as JSON: a new file renamed over ``path``, or written as it is to
    ``/dev/stdout``, a FIFO or a device (never truncated, its mode never changed)."""
    tmp: Path | None = None
    try:
        stream = open_stream(path)
        if stream is not None:
            with stream:
                stream.write(summary.to_json() + "\n")
            return
        out, tmp = new_file_beside(path)
        with out:
            out.write(summary.to_json() + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise WriteError(f"can't write the summary {path}: {describe(exc)}") from exc


class RunLog:
    """``--log-file``: a start line, one line per finished row, an end line; timestamped.

    Appends (a cron job's log grows run after run); never a password or key: rows carry
    only the number, status, HTTP status, attempts and the already-scrubbed error.
    """

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __init__(self, path: Path | None) -> None:
        self._file: TextIO | None = None
        if path is not None:
            try:
                self._file = open_append(path)  # never through a link; a FIFO is fine
            except OSError as exc:
                raise ResultsFileError(f"can't write the log {path}: {describe(exc)}") from exc
        self.path = path

    def line(self, text: str) -> None:
        if self._file is not None:
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            try:
                self._file.write(f"{stamp} {' '.join(text.split())}\n")
                self._file.flush()
            except OSError as exc:
                raise WriteError(f"can't write the log {self.path}: {describe(exc)}") from exc

    def row(self, r: RowResult) -> None:
        if self._file is not None:
            http = "" if r.http_status is None else r.http_status
            self.line(
                f"row={r.row} number={r.phone_number} status={r.status.value} http={http} "
                f"attempts={r.attempts} error={json.dumps(r.error, ensure_ascii=False)}"
            )

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                raise WriteError(f"can't write the log {self.path}: {describe(exc)}") from exc


def write_results_columns(
    path: Path, chunks: Iterable[ResultColumns | ResultLines]
) -> dict[str, int]:
    """Write results lines given column-wise as the results file; return each status's count.

    The chunks are what ``Validator.check_chunk`` gives (or lines already written out,
    with their counts: ``split.py``).  The lines are exactly those
    ``csv.writer`` writes for ``result_cells`` (defused, ``error`` on one line), with the
    per-cell work done only on the cells that may need it.  The file is built beside
    ``path`` as ``.<name>.<random>.tmp`` (owner-only, ``O_EXCL``) and moved over ``path``
    once complete: a run killed midway leaves the earlier results file (or none), never a
    half one.
    """
    counts = {s.value: 0 for s in Status}
    out: TextIO | None = None
    tmp: Path | None = None

    def failed(exc: OSError) -> ResultsFileError:
        return ResultsFileError(
            f"can't write the results file {path}: {describe(exc)}",
            hint="free some space, or choose another place with output",
            param="output",
        )

    try:
        try:
            with interrupts.held():  # an interrupt once ``tmp`` is known: it is removed
                out, tmp = new_file_beside(path)
            out.write(",".join(RESULT_COLUMNS) + "\n")
        except OSError as exc:
            raise failed(exc) from exc
        with out:
            for chunk in chunks:
                lines = chunk.text if isinstance(chunk, ResultLines) else _csv_lines(chunk)
                try:
                    out.write(lines)
                except OSError as exc:
                    raise failed(exc) from exc
                got = chunk.counts if isinstance(chunk, ResultLines) else Counter(chunk.status)
                for status, n in got.items():
                    counts[status] += n
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise failed(exc) from exc
        os.replace(tmp, path)
    except BaseException:
        with interrupts.held():  # a second interrupt: once it is removed
            if out is not None:
                with contextlib.suppress(OSError):
                    out.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        raise
    return counts


def _csv_lines(chunk: ResultColumns) -> str:
    """The results lines of ``chunk``, each as ``csv.writer`` writes ``result_cells``."""
    errors = [defuse(" ".join(e.split())) if e else e for e in chunk.error]
    columns = [  # numbers never need quoting; the text columns may
        list(map(str, chunk.row)),
        _csv_quoted(_defused(chunk.phone_number)),
        _csv_quoted(chunk.status),
        _csv_quoted(_defused(chunk.sip_phone_number)),
        _csv_quoted(chunk.http_status),
        _texts(chunk.attempts),
        _csv_quoted(errors),
    ]
    lines = "\n".join(map(",".join, zip(*columns, strict=True)))
    return lines + "\n" if lines else ""


_NEEDS_QUOTES = ',"\r\n'  # what may make csv quote a cell (a superset)


def _defused(cells: list[str]) -> list[str]:
    """``defuse`` each cell; one regex scan of the column when no cell can need it."""
    if not any(cells):
        return cells
    joined = "\n".join(cells)
    if joined.count("\n") == len(cells) - 1 and not RISKY_LINE.search(joined):
        return cells
    return [defuse(c) for c in cells]


def _texts(values: list[int]) -> list[str]:
    """``str`` of each value, computed once per distinct value (``attempts`` is mostly 0)."""
    text = {value: str(value) for value in set(values)}
    return [text[value] for value in values]


def _csv_quoted(cells: list[str]) -> list[str]:
    """Each cell as it stands in a ``csv.writer`` line, quoted where csv would quote it."""
    joined = "".join(cells)
    if not any(ch in joined for ch in _NEEDS_QUOTES):
        return cells
    return [_csv_cell(c) if c and any(ch in c for ch in _NEEDS_QUOTES) else c for c in cells]


def _csv_cell(cell: str) -> str:
    """``cell`` as ``csv.writer`` writes it within a line (its own rules, so they agree)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow((cell, ""))
    return buffer.getvalue()[: -len(",\n")]
