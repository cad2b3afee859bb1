"""spreadsheet: the account as a spreadsheet (``export``), and an empty one (``template``).

``export_account`` lists every number of the account (all pages, each page retried and
rate-limited like any request) and writes them sorted by number in the import's columns,
so that the file is a valid input for ``update`` as it is.  ``write_template`` writes the
header row of an import file, required fields first.  Both write ``.csv`` or ``.xlsx``;
in a workbook the phone columns are text, so Excel keeps the ``+``.  Each file is built
beside its path and moved over it once complete (never half a file).  The API never
returns trunk credentials, so an export can't hold any.
"""

from __future__ import annotations

import asyncio
import csv
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import DEFAULT_BASE_URL, check_base_url
from .defaults import MAX_ATTEMPTS, TIMEOUT
from .errors import ResultsFileError, UsageError
from .models import FIELDS
from .outputs import Kind, Output, check_outputs, describe, new_file_beside
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
    out: Path
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    rate: float | None = None
    max_attempts: int = MAX_ATTEMPTS
    timeout: float = TIMEOUT
    sandbox: bool = False
    allow_insecure_http: bool = False
    #: Watching (watch.py): a Prometheus textfile, its labels, a health-check URL.
    metrics_file: Path | None = None
    metrics_labels: dict[str, str] = field(default_factory=dict)
    ping_url: str | None = field(default=None, repr=False)


def _check_out(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise UsageError(f"{path}: write a .csv or an .xlsx file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name")
    if not path.parent.exists():
        raise UsageError(f"{path}: the folder {path.parent} does not exist")
    check_outputs([Output("OUT", path, Kind.REPLACED)])  # no link, not a journal, writable


def write_template(out: Path) -> None:
    """An empty import file: the header row only."""
    _check_out(out)
    write_table(out, TEMPLATE_COLUMNS, [])


def export_account(opts: ExportOptions, *, say: Callable[[str], None] | None = None) -> int:
    """Write the account's numbers to ``opts.out``; returns how many."""
    return asyncio.run(aexport_account(opts, say=say))


async def aexport_account(opts: ExportOptions, *, say: Callable[[str], None] | None = None) -> int:
    """``export_account``, awaited inside a running event loop."""
    from .watch import watched_export

    return await watched_export(opts, _export(opts, say), say or (lambda _text: None))


async def _export(opts: ExportOptions, say: Callable[[str], None] | None) -> int:
    _check_out(opts.out)
    if opts.sandbox:
        from .sandbox import SandboxConfig, SandboxServer

        key = secrets.token_urlsafe(24)
        with SandboxServer(SandboxConfig(api_key=key)) as server:
            if say:
                say(f"sandbox: exporting from a local emulator of the API at {server.url}")
            return _write_export(opts, await _list(opts, server.url, key))
    check_base_url(opts.base_url, allow_insecure_http=opts.allow_insecure_http)
    if not opts.api_key:
        raise UsageError(
            "api_key is required to read the account",
            hint="or sandbox=True for a demo",
            param="api_key",
        )
    return _write_export(opts, await _list(opts, opts.base_url, opts.api_key))


def _write_export(opts: ExportOptions, records: list[dict[str, str | None]]) -> int:
    rows = []
    for record in sorted(records, key=lambda r: r.get("phoneNumber") or ""):
        rows.append([record.get(name) or "" for name in EXPORT_COLUMNS])
    write_table(opts.out, EXPORT_COLUMNS, rows)
    return len(rows)


async def _list(opts: ExportOptions, base_url: str, api_key: str) -> list[dict[str, str | None]]:
    from .actions import list_account
    from .api import SigmaMindAPI
    from .ratelimit import RateLimiter
    from .retry import RetryPolicy

    async with SigmaMindAPI(base_url, api_key, timeout=opts.timeout) as api:
        return await list_account(
            api, RateLimiter(opts.rate), RetryPolicy(max_attempts=opts.max_attempts)
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
