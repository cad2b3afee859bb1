"""spreadsheet: the account as a spreadsheet (``export``), and an empty one (``template``).

``export_account`` lists every number of the account (all pages, each page retried and
rate-limited like any request) and writes them sorted by number in the import's columns,
so that the file is a valid input for ``update`` as it is.  ``write_template`` writes the
header row of an import file, required fields first (never over a file
that has something in it, unless forced).  Both write ``.csv`` or ``.xlsx``;
in a workbook the phone columns are text, so Excel keeps the ``+``.  Each file is built
beside its path and moved over it once complete (never half a file).  The API never
returns trunk credentials, so an export can't hold any.  ``export`` takes ``run``'s options
that apply, checked the same way (``ExportOptions.check``), and shows the numbers listed so
far as it goes (``progress``), a start and an end line in ``log_file``, and a summary in
``summary_json`` (``rows`` the numbers written).
"""

from __future__ import annotations

import asyncio
import csv
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .config import DEFAULT_BASE_URL, check_base_url, check_sending
from .defaults import CONCURRENCY, MAX_ATTEMPTS, TIMEOUT
from .errors import BulkImportError, ResultsFileError, UsageError
from .models import FIELDS
from .outputs import Kind, Output, check_outputs, describe, new_file_beside, report_outputs
from .record import defuse

EXPORT_COLUMNS = (
    "phoneNumber",
    "friendlyName",
    "terminationSipURI",
    "inboundAgentId",
    "outboundAgentId",
    "outboundPhoneNumber",
    "active",
)
#: The template's header: required fields first, in field order, then the optional ones.
TEMPLATE_COLUMNS = tuple(f.json for f in FIELDS if f.required) + tuple(
    f.json for f in FIELDS if not f.required
)
_PHONE_COLUMNS = frozenset(f.json for f in FIELDS if f.phone)


@dataclass
class ExportOptions:
    """What ``export`` needs: ``run``'s options that apply to reading the account.

    The pages of a list are read one after another (each names the next), so
    ``concurrency`` only bounds the connections; it is checked like ``run``'s.
    """

    out: Path
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    rate: float | None = None
    max_attempts: int = MAX_ATTEMPTS
    timeout: float = TIMEOUT
    sandbox: bool = False
    allow_insecure_http: bool = False
    concurrency: int = CONCURRENCY
    summary_json: Path | None = None
    log_file: Path | None = None
    #: A progress bar on stderr (plain lines when stderr is not a terminal).
    progress: bool = False
    #: Watching (watch.py): a Prometheus textfile, its labels, a health-check URL.
    metrics_file: Path | None = None
    metrics_labels: dict[str, str] = field(default_factory=dict)
    ping_url: str | None = field(default=None, repr=False)

    def check(self) -> None:
        """Raise ``UsageError`` for an option that can't be used (as ``RunOptions.check``)."""
        check_sending(self.concurrency, self.rate, self.max_attempts, self.timeout)
        if not self.sandbox:
            check_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)
            if not self.api_key:
                raise UsageError(
                    "api_key is required to read the account",
                    hint="or sandbox=True for a demo",
                    param="api_key",
                )

    def outputs(self) -> list[Output]:
        """Every file the export writes, for ``check_outputs``."""
        return [
            Output("OUT", self.out, Kind.REPLACED),
            *report_outputs(self.summary_json, self.log_file),
        ]


def _check_out(path: Path, outputs: Sequence[Output] = ()) -> None:
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise UsageError(f"{path}: write a .csv or an .xlsx file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name")
    if not path.parent.exists():
        raise UsageError(f"{path}: the folder {path.parent} does not exist")
    # no link, not a journal, writable
    check_outputs(list(outputs) or [Output("OUT", path, Kind.REPLACED)])


def write_template(out: Path, *, force: bool = False) -> None:
    """An empty import file: the header row only.  A file already at ``out`` that has
    anything in it (a filled spreadsheet, most likely) is replaced only with ``force``."""
    _check_out(out)
    if not force:
        try:
            size = out.stat().st_size
        except FileNotFoundError:
            size = 0
        except OSError as exc:
            raise UsageError(f"{out}: can't be checked: {describe(exc)}") from exc
        if size:
            raise UsageError(
                f"{out} exists and is not empty: a template would replace what it holds",
                hint="force=True replaces it; or give another file name",
                param="force",
            )
    write_table(out, TEMPLATE_COLUMNS, [])


def export_account(opts: ExportOptions, *, say: Callable[[str], None] | None = None) -> int:
    """Write the account's numbers to ``opts.out``; returns how many."""
    return asyncio.run(aexport_account(opts, say=say))


async def aexport_account(opts: ExportOptions, *, say: Callable[[str], None] | None = None) -> int:
    """``export_account``, awaited inside a running event loop."""
    from .watch import watched_export

    return await watched_export(opts, _export_logged(opts, say), say or (lambda _text: None))


async def _export_logged(opts: ExportOptions, say: Callable[[str], None] | None) -> int:
    """The export, with its options checked, its log lines, progress and summary."""
    opts.check()
    _check_out(opts.out, opts.outputs())
    from .progress import Progress
    from .record import RunLog

    started, t0 = _now(), time.monotonic()
    facts = _Facts()
    with RunLog(opts.log_file) as log, Progress(None, enabled=opts.progress, unit="number") as bar:
        shown = "(sandbox)" if opts.sandbox else opts.base_url.split("@")[-1]
        log.line(f"start export out={opts.out} base_url={shown}")

        def on_page(count: int, sent: int) -> None:
            facts.requests += sent
            bar.advance(count)

        try:
            count = await _export(opts, on_page, say)
        except BulkImportError as exc:
            facts.aborted, facts.exit_code = str(exc), exc.exit_code
            log.line(f"end export aborted: {exc} (exit {exc.exit_code})")
            _summary(opts, facts, 0, started, t0)
            raise
        elapsed = time.monotonic() - t0
        log.line(f"end exported {count} numbers in {elapsed:.1f}s, {facts.requests} requests")
    _summary(opts, facts, count, started, t0)
    return count


@dataclass
class _Facts:
    requests: int = 0
    aborted: str | None = None
    exit_code: int = 0


async def _export(
    opts: ExportOptions, on_page: Callable[[int, int], None], say: Callable[[str], None] | None
) -> int:
    if opts.sandbox:
        from .sandbox import SandboxConfig, SandboxServer

        key = secrets.token_urlsafe(24)
        with SandboxServer(SandboxConfig(api_key=key)) as server:
            if say:
                say(f"sandbox: exporting from a local emulator of the API at {server.url}")
            return _write_export(opts, await _list(opts, server.url, key, on_page))
    assert opts.api_key is not None  # ``check`` says so
    return _write_export(opts, await _list(opts, opts.base_url, opts.api_key, on_page))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _summary(opts: ExportOptions, facts: _Facts, count: int, started: str, t0: float) -> None:
    """``summary_json``: the summary of ``run`` (docs/contract.md, "Outcome"), for an
    export: ``rows`` the numbers written, no statuses, ``results`` the file written."""
    if opts.summary_json is None:
        return
    from .record import Summary, write_summary_json

    summary = Summary(
        rows=count,
        counts={},
        results=str(opts.out),
        exit_code=facts.exit_code,
        started_at=started,
        finished_at=_now(),
        duration_seconds=round(time.monotonic() - t0, 3),
        requests=facts.requests,
        rate_ceiling=opts.rate,
        aborted=facts.aborted,
        command="export",
    )
    write_summary_json(summary, opts.summary_json)


def _write_export(opts: ExportOptions, records: list[dict[str, str | None]]) -> int:
    rows = []
    for record in sorted(records, key=lambda r: r.get("phoneNumber") or ""):
        rows.append([record.get(name) or "" for name in EXPORT_COLUMNS])
    write_table(opts.out, EXPORT_COLUMNS, rows)
    return len(rows)


async def _list(
    opts: ExportOptions, base_url: str, api_key: str, on_page: Callable[[int, int], None]
) -> list[dict[str, str | None]]:
    from .actions import list_account
    from .api import SigmaMindAPI
    from .ratelimit import RateLimiter
    from .retry import RetryPolicy

    async with SigmaMindAPI(
        base_url, api_key, timeout=opts.timeout, max_connections=opts.concurrency
    ) as api:
        return await list_account(
            api, RateLimiter(opts.rate), RetryPolicy(max_attempts=opts.max_attempts), on_page
        )


def write_table(out: Path, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``columns`` and ``rows`` as a CSV or a workbook at ``out``, atomically."""
    tmp: Path | None = None
    try:
        f, tmp = new_file_beside(out)  # our own new file (O_EXCL), renamed over ``out``
        with f:
            if out.suffix.lower() != ".xlsx":
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows([defuse(cell) for cell in row] for row in rows)
        if out.suffix.lower() == ".xlsx":
            _write_xlsx(tmp, columns, rows)
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise ResultsFileError(f"can't write {out}: {describe(exc)}") from exc


def _write_xlsx(path: Path, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "numbers"
    sheet.append(list(columns))
    for row in rows:
        sheet.append([defuse(cell) for cell in row])
    for i, name in enumerate(columns, start=1):
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = max(14, len(name) + 2)
        if name in _PHONE_COLUMNS:
            # Text format ("@") on the column and on each cell: Excel keeps the "+".
            sheet.column_dimensions[letter].number_format = "@"
            last = len(rows) + 1 if rows else 1000  # a template: rows to be typed in
            for (cell,) in sheet.iter_rows(min_col=i, max_col=i, min_row=1, max_row=last):
                cell.number_format = "@"
    sheet.freeze_panes = "A2"
    book.save(path)
