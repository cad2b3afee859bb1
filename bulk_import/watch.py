"""watch: what a scheduled run leaves for the people and systems watching it.

Wraps one command's steps (runner.py) with the three renderings of its summary
(docs/architecture.md, "Watching a run"):

- ``--ping-url``: ``URL/start`` before the first request, ``URL/<exit code>`` at the end
  (ping.py), also when the run ends in an error (a bad option is exit 2);
- ``--metrics-file``: the Prometheus textfile (metrics.py), written atomically;
- ``--report``: the HTML page (report.py), written at the end (also by ``--resume``,
  which renders the whole results file again).

The rows the ping and the report list are read back from the results file the run has just
written (the whole batch, with ``--resume`` the rows done earlier too), so they say what the
file says.  None of the three fails the run: a write that fails is a warning to ``say``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .defaults import EXIT_ERROR, EXIT_INTERRUPTED
from .errors import BulkImportError, UsageError
from .models import OK_BY_COMMAND, RowResult, Status
from .outputs import Kind, Output, check_outputs, describe, new_file_beside

if TYPE_CHECKING:
    from .record import Summary
    from .runner import RunOptions
    from .spreadsheet import ExportOptions

S = TypeVar("S")
R = TypeVar("R")


def check(opts: RunOptions | ExportOptions) -> None:
    """The watching options of ``opts``, before anything is done."""
    from .metrics import check_labels

    check_labels(opts.metrics_labels)
    if opts.ping_url is not None:
        from .ping import check_ping_url

        check_ping_url(opts.ping_url, allow_insecure_http=opts.allow_insecure_http)
    report = getattr(opts, "report", None)
    if report is not None and report.suffix.lower() not in (".html", ".htm"):
        raise UsageError("report must name an .html file", param="report")


def outputs(opts: RunOptions | ExportOptions) -> list[Output]:
    """The files the watching options write, for ``check_outputs``."""
    out = []
    if opts.metrics_file is not None:
        out.append(Output("--metrics-file", opts.metrics_file, Kind.REPLACED))
    report = getattr(opts, "report", None)
    if report is not None:
        out.append(Output("--report", report, Kind.REPLACED))
    return out


def watched(
    opts: RunOptions,
    steps: Generator[S, R, Summary],
    say: Callable[[str], None],
    options: dict[str, str],
) -> Generator[S, R, Summary]:
    """``steps`` (a run, as runner's generator of steps), pinged, measured and reported."""
    if not (opts.ping_url or opts.metrics_file or opts.report):
        return (yield from steps)
    pinger = None
    if opts.ping_url is not None:
        from .ping import Pinger

        check(opts)  # a bad ping URL is never pinged
        pinger = Pinger(opts.ping_url, say)
        pinger.start()
    try:
        summary = yield from steps
    except BulkImportError as exc:
        _ended_early(opts, exc.exit_code, f"bulk-import: error: {exc}", pinger, say)
        raise
    except KeyboardInterrupt:
        _ended_early(opts, EXIT_INTERRUPTED, "bulk-import: interrupted", pinger, say)
        raise
    except Exception as exc:
        _ended_early(
            opts, EXIT_ERROR, f"bulk-import: internal error: {type(exc).__name__}", pinger, say
        )
        raise
    finished(opts, summary, say, options, pinger)
    return summary


def finished(
    opts: RunOptions,
    summary: Summary,
    say: Callable[[str], None],
    options: dict[str, str],
    pinger: Any = None,
) -> None:
    """The end of a run that has a summary: metrics, report, end ping, in that order."""
    now = time.time()
    if opts.metrics_file is not None:
        _write_metrics(opts, summary, now, say)
    problems: list[RowResult] = []
    changes: list[RowResult] = []
    if opts.report is not None or pinger is not None:
        try:
            # a ping alone needs only the first rows (its body is BODY_LIMIT bytes at most)
            problems, changes = _rows(opts, summary, first=None if opts.report else 2000)
        except (BulkImportError, OSError) as exc:
            say(f"warning: the rows of {opts.results_path} could not be read back: {exc}")
    if opts.report is not None:
        from .report import render

        shown = {**options, **_watch_options(opts)}
        title = f"bulk-import {summary.command}{' (dry run)' if summary.dry_run else ''}: "
        title += opts.file.name
        try:
            text = render(
                summary,
                problems=problems,
                changes=changes if opts.shows_changes else None,
                options=shown,
                title=title,
            )
        except Exception as exc:  # noqa: BLE001 - the run is done: a report is not worth failing it
            say(f"warning: --report {opts.report} not written: {type(exc).__name__}: {exc}")
        else:
            _write(opts.report, text, "--report", say, mode=0o600)  # its rows are the results'

    if pinger is not None:
        from .ping import end_body

        lines = [_row_line(r) for r in problems]
        ok = OK_BY_COMMAND.get(summary.command, OK_BY_COMMAND["run"])
        total = sum(n for s, n in summary.counts.items() if s not in {o.value for o in ok})
        body = end_body(summary.line(), lines, header=_ROW_HEADER, total=total)
        pinger.end(summary.exit_code, _masked(body, opts))


_ROW_HEADER = "row,phone_number,status,http_status,attempts,error"


def _row_line(r: RowResult) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(
        [r.row, r.phone_number, r.status.value, r.http_status or "", r.attempts, r.error]
    )
    return out.getvalue()


def _masked(text: str, opts: RunOptions | ExportOptions) -> str:
    """A last guard: the key and a trunk password given as an option never leave in a ping
    (the rows' errors are already scrubbed of every secret sent, by api.py)."""
    defaults: dict[str, str] = getattr(opts, "defaults", {})
    for secret in (opts.api_key, defaults.get("trunkPassword")):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _watch_options(opts: RunOptions) -> dict[str, str]:
    shown = {}
    if opts.metrics_file is not None:
        shown["metrics file"] = str(opts.metrics_file)
    if opts.metrics_labels:
        shown["metrics labels"] = ", ".join(f"{k}={v}" for k, v in opts.metrics_labels.items())
    if opts.ping_url is not None:
        from .ping import shown as shown_url

        shown["ping url"] = shown_url(opts.ping_url)
    return shown


async def watched_export(
    opts: ExportOptions, export: Coroutine[Any, Any, int], say: Callable[[str], None]
) -> int:
    """``export``, pinged and measured: ``bulk_import_rows{command="export",status="exported"}``."""
    if not (opts.ping_url or opts.metrics_file):
        return await export
    pinger = None
    try:
        check(opts)
        if opts.metrics_file is not None:
            check_outputs(outputs(opts))
    except BaseException:
        export.close()
        raise
    if opts.ping_url is not None:
        from .ping import Pinger

        pinger = Pinger(opts.ping_url, say)
        pinger.start()
    t0 = time.monotonic()
    try:
        count = await export
    except BulkImportError as exc:
        _ended_early(opts, exc.exit_code, f"bulk-import: error: {exc}", pinger, say, "export")
        raise
    except KeyboardInterrupt:
        _ended_early(opts, EXIT_INTERRUPTED, "bulk-import: interrupted", pinger, say, "export")
        raise
    except Exception as exc:
        why = f"bulk-import: internal error: {type(exc).__name__}"
        _ended_early(opts, EXIT_ERROR, why, pinger, say, "export")
        raise
    from .record import Summary

    now = time.time()
    summary = Summary(
        rows=count,
        counts={"exported": count},
        results=str(opts.out),
        exit_code=0,
        started_at="",
        finished_at="",
        duration_seconds=round(time.monotonic() - t0, 3),
        command="export",
    )
    if opts.metrics_file is not None:
        _write_metrics(opts, summary, now, say)
    if pinger is not None:
        pinger.end(0, f"bulk-import: exported {count} number(s) to {opts.out}\n")
    return count


def _ended_early(
    opts: RunOptions | ExportOptions,
    code: int,
    why: str,
    pinger: Any,
    say: Callable[[str], None],
    command: str | None = None,
) -> None:
    """A run that ended without a summary (an error, exit 2/75): metrics and end ping say
    so; the metrics file only where it may be written."""
    if opts.metrics_file is not None:
        try:
            check_outputs(outputs(opts)[:1])
        except BulkImportError:
            pass
        else:
            from .record import Summary

            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now))
            summary = Summary(
                rows=0,
                counts={},
                results=str(getattr(opts, "out", None) or getattr(opts, "results_path", "")),
                exit_code=code,
                started_at=stamp,
                finished_at=stamp,
                duration_seconds=0.0,
                command=command or str(getattr(opts, "command", "run")),
            )
            _write_metrics(opts, summary, now, say)
    if pinger is not None:
        pinger.end(code, _masked(why + "\n", opts))


def _write_metrics(
    opts: RunOptions | ExportOptions, summary: Summary, now: float, say: Callable[[str], None]
) -> None:
    from .metrics import render

    assert opts.metrics_file is not None
    previous = None
    try:
        previous = opts.metrics_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        previous = None
    text = render(summary, opts.metrics_labels, now=now, previous=previous)
    _write(opts.metrics_file, text, "--metrics-file", say, mode=0o644)  # for the collector


def _rows(
    opts: RunOptions, summary: Summary, *, first: int | None = None
) -> tuple[list[RowResult], list[RowResult]]:
    """The rows of the results file that need a person, and those with a change (the
    ``first`` rows that need a person only, if given: the file is read no further)."""
    from .outputs import is_workbook_path
    from .record import read_results_csv
    from .sheets import read_results_xlsx

    path = opts.results_path
    ok = OK_BY_COMMAND.get(summary.command, OK_BY_COMMAND["run"])
    problems: list[RowResult] = []
    changes: list[RowResult] = []
    if not path.exists():
        return problems, changes
    results: Iterator[RowResult] = (
        read_results_xlsx(path) if is_workbook_path(path) else read_results_csv(path)
    )
    try:
        _collect(results, ok, problems, changes, first)
    finally:
        close = getattr(results, "close", None)  # a file read only in part: closed at once
        if close is not None:
            close()
    return problems, changes


def _collect(
    results: Iterator[RowResult],
    ok: frozenset[Status],
    problems: list[RowResult],
    changes: list[RowResult],
    first: int | None,
) -> None:
    for r in results:
        if r.status not in ok:
            problems.append(r)
            if first is not None and len(problems) >= first:
                break
        if r.changes:
            changes.append(r)


def _write(path: Path, text: str, flag: str, say: Callable[[str], None], *, mode: int) -> None:
    """``text`` to a new file beside ``path``, renamed over it (readers never see half of
    it); a failure is a warning: the run's own results are already written."""
    tmp: Path | None = None
    try:
        out, tmp = new_file_beside(path)
        with out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        say(f"warning: {flag} {path} not written: {describe(exc)}")
