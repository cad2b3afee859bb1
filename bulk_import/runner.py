"""runner: one run of one file, stage by stage; everything the CLI does, callable.

    load -> validate -> submit -> record

``run_import(options)`` holds the results-file lock, streams rows from the file through
validation into the submit stage, records every outcome as it finishes (and gives it to
``options.on_row``), and returns the ``Summary`` (whose ``exit_code`` the CLI exits with).
``arun_import`` is the same, awaited inside a running event loop.

Quiet unless asked: it prints nothing (notes go to ``say``, none by default), shows no
progress bar (``progress``), installs no signal handler (``handle_signals``) and reads no
environment variable; the CLI asks for all of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import interrupts, watch
from .collector import fewer_collections
from .config import DEFAULT_BASE_URL, check_base_url, check_sending
from .decide import changed_fields
from .defaults import (
    CONCURRENCY,
    EXIT_ABORTED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS,
    MAX_ATTEMPTS,
    TIMEOUT,
)
from .errors import (
    ApiError,
    AuthError,
    BulkImportError,
    InputChangedError,
    LockedError,
    MissingColumnsError,
    ResultsFileError,
    UsageError,
    WriteError,
)
from .figures import Figures, RequestLog, empty_figures
from .firstrows import FirstRows
from .ledger import Account, Journal, NumberFacts, batch_started, unfinished_rows
from .load import Table, open_table
from .lock import RunLock
from .models import (
    DONE_STATUSES,
    E164_RE,
    OK_BY_COMMAND,
    Action,
    FailureLimit,
    Job,
    Kept,
    OnExisting,
    Record,
    ResultColumns,
    RowResult,
    Status,
)
from .outputs import (
    Kind,
    Output,
    check_outputs,
    is_workbook_path,
    remove_leftovers,
    results_outputs,
)
from .progress import Progress
from .record import (
    ResultsWriter,
    RunLog,
    Summary,
    journal_path,
    read_results_csv,
    write_results_columns,
    write_summary_json,
)
from .validate import Validator, check_columns, shape

if TYPE_CHECKING:
    from .api import SigmaMindAPI
    from .ratelimit import RateLimiter
    from .retry import RetryPolicy
    from .sheets import XlsxResults
    from .submit import SubmitReport

#: The error of a row whose request was cut in flight (a second interrupt).
CUT = "interrupted in flight: may have been stored; --resume checks"
#: The signals that stop a run like Ctrl-C: the first drains, the second cuts.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Rows a sending run reads at once (the dry run reads ``Table.chunk_rows``).
SEND_CHUNK_ROWS = 2_500


@dataclass
class RunOptions:
    """Everything one run needs; the CLI fills it from flags and the environment.

    The defaults are a library's: no progress bar, and nothing read from the environment
    (``api_key`` and ``base_url`` are what is given here, nothing else).
    """

    file: Path
    output: Path | None = None
    sheet: str | None = None
    header_row: int | None = None
    failed_rows: Path | None = None
    encoding: str | None = None
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = CONCURRENCY
    rate: float | None = None
    max_attempts: int = MAX_ATTEMPTS
    timeout: float = TIMEOUT
    dry_run: bool = False
    resume: bool = False
    on_existing: OnExisting = "skip"
    max_failures: FailureLimit | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict, repr=False)
    default_region: str | None = None
    summary_json: Path | None = None
    log_file: Path | None = None
    #: A progress bar on stderr (plain lines when stderr is not a terminal).
    progress: bool = False
    allow_insecure_http: bool = False
    sandbox: bool = False
    #: ``run``, ``plan``, ``update`` or ``undo`` (``file`` is then a results file).
    command: str = "run"
    #: undo: go ahead without asking.
    yes: bool = False
    #: undo, --resume: act although the batch was sent to another base URL or key.
    other_account: bool = False
    #: undo: delete and restore numbers changed since the batch too (``changed_since``).
    force: bool = False
    #: undo on a terminal: asked with what will be done; True to go ahead.
    confirm: Callable[[str], bool] | None = field(default=None, repr=False)
    #: Given each row this run finishes (``RowResult``), as it is recorded: invalid rows,
    #: done rows, failed and not attempted ones alike; the rows ``Summary.this_run``
    #: counts.  Rows that ``resume`` finds done by an earlier run are not given again.
    #: If it raises, the run stops as on any error and the exception propagates.
    on_row: Callable[[RowResult], None] | None = field(default=None, repr=False, compare=False)
    #: Watching (watch.py): a Prometheus textfile, its extra labels, a health-check URL
    #: pinged at the start and the end, and an HTML report of the run.
    metrics_file: Path | None = None
    metrics_labels: dict[str, str] = field(default_factory=dict)
    ping_url: str | None = field(default=None, repr=False)
    report: Path | None = None

    @property
    def results_path(self) -> Path:
        if self.output is not None:
            return self.output
        suffix = {"plan": "plan", "undo": "undo", "update": "update"}.get(self.command, "results")
        return self.file.with_name(f"{self.file.stem}.{suffix}.csv")

    @property
    def partial(self) -> bool:
        """Only ``phoneNumber`` is required: an update, or an import that may update."""
        return self.command == "update" or self.on_existing == "update"

    @property
    def shows_changes(self) -> bool:
        # undo's ``changes`` say what changed since the batch (``changed_since``)
        return self.command in ("plan", "update", "undo") or (
            self.command == "run" and self.on_existing == "update"
        )

    def check(self) -> None:
        if not self.file.name:  # ".", "/", "": a directory (or an unset variable)
            raise UsageError(
                f"file {str(self.file)!r} names a directory, not a file",
                hint="give the spreadsheet's path (is a variable in the command unset?)",
                param="file",
            )
        check_sending(self.concurrency, self.rate, self.max_attempts, self.timeout)
        if self.encoding is not None:
            try:
                "".encode(self.encoding)  # a text encoding, not a codec such as rot13
            except LookupError:
                raise UsageError(
                    f"encoding {self.encoding!r} is not a text encoding",
                    hint="e.g. utf-8, cp1252, latin-1, utf-16",
                    param="encoding",
                ) from None
        if self.failed_rows is not None and self.failed_rows.suffix.lower() not in {
            ".csv",
            ".xlsx",
        }:
            raise UsageError("failed_rows must name a .csv or .xlsx file", param="failed_rows")
        watch.check(self)
        if self.command == "plan" and self.dry_run:
            raise UsageError("plan never writes; it has no dry_run (it is one)", param="dry_run")
        if not self.dry_run and not self.sandbox:
            check_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)
            if not self.api_key:
                raise UsageError(
                    "api_key is required to send anything",
                    hint="or dry_run=True to check the file, or sandbox=True for a demo",
                    param="api_key",
                )

    def outputs(self) -> list[Output]:
        """Every file this run writes, for ``check_outputs`` (before anything is touched)."""
        outputs = results_outputs(self.results_path, journal=not self.dry_run)
        if self.summary_json is not None:
            outputs.append(Output("--summary-json", self.summary_json, Kind.REPLACED, streams=True))
        if self.log_file is not None:
            outputs.append(Output("--log-file", self.log_file, Kind.APPENDED, streams=True))
        if self.failed_rows is not None:
            outputs.append(Output("--failed-rows", self.failed_rows, Kind.REPLACED))
        if self.command == "undo" and not self.dry_run:  # the batch's ledger is marked
            outputs.append(Output("the journal of RESULTS", journal_path(self.file), Kind.DATABASE))
        return outputs + watch.outputs(self)

    @property
    def account(self) -> Account | None:
        """Where this run sends (recorded in, and checked against, the batch's ledger)."""
        return Account(self.base_url, self.api_key) if self.api_key else None


class _Run:
    """The state of one run: where each finished row goes."""

    def __init__(
        self,
        opts: RunOptions,
        journal: Journal,
        writer: ResultsWriter | _XlsxWriter,
        log: RunLog,
        progress: Progress,
        say: Callable[[str], None],
    ) -> None:
        self.opts = opts
        self.journal = journal
        self.writer = writer
        self.log = log
        self.progress = progress
        self.pending: dict[int, Job] = {}
        self.say = say
        self.input_changed: InputChangedError | None = None
        self.earlier: Counter[str] = Counter()  # rows --resume found done by earlier runs
        #: Requests that may store, by row in flight (for a cut row's attempts); a row's
        #: count goes when it finishes, so this holds at most ``concurrency`` rows.
        self.sent: Counter[int] = Counter()
        self.reporter = _Reporter(opts.on_row)
        #: undo: the ledger of the batch being undone (each number put back is marked).
        self.batch: Journal | None = None
        #: Told of each page of the account's list read while sending, and of its end.
        self.pages = asyncio.Condition()
        #: The API rejected the key when the account was listed: no write may leave.
        self.key_rejected: AuthError | None = None
        self.requests = RequestLog()  # every request's status and time, for the summary

    def finish(
        self,
        result: RowResult,
        *,
        durable: bool = True,
        earlier: bool = False,
        fingerprint: dict[str, str] | None = None,
        created: dict[str, str] | None = None,
    ) -> None:
        self.sent.pop(result.row, None)
        self.journal.record(result, durable=durable, fingerprint=fingerprint, created=created)
        self.writer.append(result)
        self.progress.update(result)
        if earlier:
            self.earlier[result.status.value] += 1
        else:
            self.log.row(result)
            self.reporter.report(result)

    # -- the submit.JournalProtocol: the journal's, counting the requests each row sent
    def sending(self, job: Job) -> None:
        self.journal.sending(job)
        self.sent[job.row] += 1

    async def marks_durable(self) -> None:
        await self.journal.marks_durable()

    def in_doubt(self, job: Job) -> bool:
        return self.journal.in_doubt(job)

    def keep_before(self, phone: str, record: Record, sent: Record, changed: list[str]) -> None:
        self.journal.keep_before(phone, record, sent, changed)

    def before_of(self, phone: str) -> Kept | None:
        return self.journal.before_of(phone)

    def existed(self, phone: str) -> str:
        return self.journal.existed(phone)

    def ready_now(self, phone: str) -> bool:
        return self.key_rejected is None and self.journal.knows(phone)

    async def ready(self, phone: str) -> None:
        """Wait until the account's list (read while sending) has shown ``phone`` or has
        ended: only then may its first write leave (the ledger's proof of creation).
        Raises the listing's ``AuthError`` once the API has rejected the key."""
        if not self.journal.knows(phone):
            async with self.pages:
                await self.pages.wait_for(lambda: self.journal.knows(phone))
        if self.key_rejected is not None:
            raise self.key_rejected

    def created(self, phone: str, fields: Record) -> None:
        self.journal.created(phone, fields)

    def tell(self, text: str) -> None:
        """A message while the progress bar may be showing: printed above it."""
        self.progress.write(text, self.say)

    def on_result(self, result: RowResult) -> None:
        job = self.pending.pop(result.row, None)
        keeps = self.opts.command in ("run", "update")
        fingerprint: dict[str, str] | None = None
        created: dict[str, str] | None = None
        if job is not None and keeps and result.status in DONE_STATUSES:
            phone = job.phone_number
            edited_import = result.status in (Status.UPDATED, Status.UNCHANGED)
            if edited_import and self.journal.is_created(phone):
                # An edited row resumed, PATCHed onto the number this batch created: it is
                # still this batch's import (undo deletes it).
                result = dataclasses.replace(result, status=Status.IMPORTED)
            fields = job.fields()  # the request's body (a model's dump): made once here
            fingerprint = self.journal.fingerprint(fields)
            created = fields if result.status is Status.IMPORTED else None
            if phone != result.phone_number:  # not so today: each kept under its own number
                self.journal.keep_fingerprint(phone, fingerprint)
                if created is not None:
                    self.journal.created(phone, created)
                fingerprint = created = None
        if self.batch is not None and result.status in _UNDONE:
            # Marked in the batch's ledger first: a kill between the two leaves the number
            # "undone" there, so no later undo of the batch can touch it again.
            self.batch.mark_undone(result.phone_number, result.status.value)
        # The fingerprint and what was created go into the ledger with the row's result
        # (one statement), in the transaction that commits it.
        self.finish(result, fingerprint=fingerprint, created=created)

    def jobs(self, rows: Iterable[RowResult | Job]) -> Iterator[Job]:
        """The valid rows still to send; every other row is recorded on the way.

        An input file that changes under the run ends the rows here (``input_changed``):
        the rows in flight finish, and the run ends aborted, saying where it stopped.
        """
        try:
            yield from self._jobs(rows)
        except InputChangedError as exc:
            self.input_changed = exc
            self.say(f"stopping: {exc}")

    def _jobs(self, rows: Iterable[RowResult | Job]) -> Iterator[Job]:
        for checked in rows:
            if isinstance(checked, RowResult):
                if self.opts.resume and checked.status is Status.ALREADY_UNDONE:
                    # undone by the run this one resumes: shown as that run did it
                    earlier = self.journal.done_before(checked.phone_number, checked.row)
                    if earlier is not None:
                        self.finish(earlier, durable=False, earlier=True)
                        continue
                    what = self.batch.undone_of(checked.phone_number) if self.batch else None
                    sent = Job(checked.row, None, Action.DELETE, number=checked.phone_number)
                    if what and self.journal.was_sent(sent):
                        # ... killed after the batch's ledger was marked, before its own
                        # journal had the row: its write of it is still marked there
                        self.finish(RowResult(checked.row, checked.phone_number, Status(what)))
                        continue
                self.finish(checked, durable=False)
                continue
            if self.opts.resume:
                earlier = self.journal.done_before(checked.phone_number, checked.row)
                if earlier is not None:
                    edited = self.edited(checked)
                    if not edited:
                        self.finish(earlier, durable=False, earlier=True)
                        continue
                    if self.opts.on_existing != "update":
                        note = (
                            f"changed since it was done: {', '.join(edited)} "
                            "(not applied; --on-existing update applies it)"
                        )
                        # Its status stays what the batch did to it: an imported number
                        # is still this batch's to undo.
                        self.finish(
                            dataclasses.replace(earlier, error=note),
                            durable=False,
                            earlier=True,
                        )
                        continue
            self.pending[checked.row] = checked
            yield checked

    def edited(self, job: Job) -> list[str]:
        """The fields of ``job`` that differ from the request of the run that did it."""
        if job.action is not Action.IMPORT and job.action is not Action.UPDATE:
            return []
        earlier = self.journal.fingerprint_of(job.phone_number)
        if earlier is None:
            return []
        return changed_fields(earlier, self.journal.fingerprint(job.fields()))

    def not_attempted(self, jobs: Iterator[Job], why: str) -> None:
        """Mark what was never sent or never reached ``not_attempted``, and a row cut in
        flight (its request may have left) ``failed``, in doubt: ``--resume`` checks it.

        The progress bar stops where it is: these rows are not done.  A failing ``on_row``
        does not stop this (it is raised once the results file is complete).
        """
        self.reporter.closing = True
        self.progress.close()
        for job in sorted(self.pending.values(), key=lambda j: j.row):
            if self.journal.was_sent(job):
                tries = self.sent[job.row]
                cut = RowResult(
                    job.row,
                    job.phone_number,
                    Status.FAILED,
                    attempts=tries,
                    error=CUT,
                    in_doubt=True,
                )
                self.finish(cut)
            else:
                self.finish(RowResult(job.row, job.phone_number, Status.NOT_ATTEMPTED, error=why))
        self.pending.clear()
        for job in jobs:
            self.pending.pop(job.row, None)
            self.finish(RowResult(job.row, job.phone_number, Status.NOT_ATTEMPTED, error=why))


class _Reporter:
    """Gives each finished row to ``on_row``; after it first raises, to nobody.

    While the run is closing (marking rows not attempted, finishing the results file) its
    exception is kept, not raised, and ``raise_kept`` raises it once the file is complete.
    """

    def __init__(self, on_row: Callable[[RowResult], None] | None) -> None:
        self.on_row = on_row
        self.closing = False
        self.failed: Exception | None = None

    def report(self, result: RowResult) -> None:
        if self.on_row is None or self.failed is not None:
            return
        try:
            self.on_row(result)
        except Exception as exc:
            self.failed = exc
            if not self.closing:
                raise

    def raise_kept(self) -> None:
        if self.failed is not None:
            raise self.failed


#: What the run's one asynchronous step (sending) gives back: the report, and whether it
#: was interrupted.
_Sent = tuple["SubmitReport | None", bool]
#: A run as a generator: everything synchronous is done in it, and the one asynchronous
#: step (sending) is handed out to the caller, who runs it (``asyncio.run``, or ``await``
#: inside a running loop) and sends its result back in.  Its return value is the summary.
_Steps = Generator[Callable[[], Awaitable[_Sent]], _Sent, Summary]


def run_import(
    opts: RunOptions,
    *,
    say: Callable[[str], None] | None = None,
    handle_signals: bool = False,
) -> Summary:
    """Run one import (or dry run) and return its summary; raises ``BulkImportError``.

    ``say`` gets notes meant for a person (a warning about an ignored column, say); none
    are shown without it.  ``handle_signals`` makes SIGINT/SIGTERM/SIGHUP stop the run
    cleanly (the first drains the rows in flight, the second cuts them); the CLI asks for
    it, a library caller owns its process's signals and leaves it off.  It runs its own
    event loop: inside a running one, await ``arun_import`` instead.

    With ``opts.sandbox`` an emulator of the API is started in this process for the run.
    """
    steps = watch.watched(
        opts,
        _import_steps(opts, say or _silent, handle_signals),
        say or _silent,
        _shown_options(opts),
    )
    try:
        step = next(steps)
        while True:
            try:
                sent = _in_a_loop(_awaited(step()))
            except BaseException as exc:  # noqa: BLE001 - the run cleans up, then re-raises
                step = steps.throw(exc)
            else:
                step = steps.send(sent)
    except StopIteration as done:
        summary: Summary = done.value
        return summary


async def arun_import(
    opts: RunOptions,
    *,
    say: Callable[[str], None] | None = None,
    handle_signals: bool = False,
) -> Summary:
    """``run_import``, awaited inside a running event loop (the requests are sent on it).

    Reading the file and writing the results are done on the loop's thread, as the rows
    go; a dry run sends nothing and does all its work before it returns.
    """
    steps = watch.watched(
        opts,
        _import_steps(opts, say or _silent, handle_signals),
        say or _silent,
        _shown_options(opts),
    )
    try:
        step = next(steps)
        while True:
            try:
                sent = await step()
            except BaseException as exc:  # noqa: BLE001 - the run cleans up, then re-raises
                step = steps.throw(exc)
            else:
                step = steps.send(sent)
    except StopIteration as done:
        summary: Summary = done.value
        return summary


async def _awaited(step: Awaitable[_Sent]) -> _Sent:
    return await step


def _in_a_loop(coro: Coroutine[object, object, _Sent]) -> _Sent:
    """``asyncio.run(coro)`` without its SIGINT handler: a library leaves its caller's
    signals alone (Ctrl-C raises ``KeyboardInterrupt`` as anywhere else in Python)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _import_steps(opts: RunOptions, say: Callable[[str], None], handle_signals: bool) -> _Steps:
    opts.check()
    # Every output is checked before the first request, and before anything is truncated,
    # replaced or deleted (an earlier results file, its journal).
    check_outputs(opts.outputs(), inputs=[("the input file", opts.file)])
    if opts.sandbox and not opts.dry_run:
        from .sandbox import SandboxConfig, SandboxServer

        key = secrets.token_urlsafe(24)
        with SandboxServer(SandboxConfig(api_key=key)) as server:
            doing = "importing into" if opts.command == "run" else f"{opts.command} against"
            say(f"sandbox: {doing} a local emulator of the API at {server.url}")
            local = dataclasses.replace(opts, base_url=server.url, api_key=key, sandbox=False)
            return (yield from _run_import(local, say, handle_signals))
    return (yield from _run_import(opts, say, handle_signals))


def _run_import(opts: RunOptions, say: Callable[[str], None], handle_signals: bool) -> _Steps:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    results_path = opts.results_path
    with _locked(opts, results_path), ExitStack() as files:
        for leftover in remove_leftovers(results_path):  # a killed run's half-written file
            say(f"note: removed {leftover.name}, left by an earlier run that was killed")
        table: Table | None = None
        batch: Journal | None = None
        if opts.command == "undo":
            # The run that wrote RESULTS, or its --resume, must not go on meanwhile.
            files.enter_context(RunLock(opts.file))
            batch = _open_batch(opts)
            if batch is not None:
                files.callback(batch.close)
            rows: Iterable[RowResult | Job] = _undo_rows(opts, say, batch)
            total: int | None = None
        else:
            table = open_table(
                opts.file,
                sheet=opts.sheet,
                mapping=opts.mapping,
                encoding=opts.encoding,
                header_row=opts.header_row,
                # A sending run is paced by the API, not by reading: smaller chunks keep its
                # memory near flat (docs/architecture.md, "One pipeline for every command").
                chunk_rows=Table.chunk_rows if opts.dry_run else SEND_CHUNK_ROWS,
            )
            files.callback(table.close)
            try:
                if opts.partial:
                    required = ("phoneNumber",)
                    check_columns(table.columns, opts.defaults.keys(), table.header, required)
                else:
                    check_columns(table.columns, opts.defaults.keys(), table.header)
            except MissingColumnsError as exc:
                exc.message += f"; {table.header_note(exc.missing)}"
                raise
            # An export's own "active" column is not an input field, and not a surprise.
            table.ignored = [h for h in table.ignored if h.strip().lower() != "active"]
            if table.ignored:
                say(
                    f"warning: ignoring {table.ignored_summary()} (no field of that name; "
                    "map one with --map)"
                )
            validator = Validator(
                defaults=opts.defaults,
                default_region=opts.default_region,
                partial=opts.partial,
                # A sending run keeps its numbers compact (memory flat in the rows); the dry
                # run's column-wise checks want a dict's speed.
                seen=None if opts.dry_run else FirstRows(),
            )
            if opts.dry_run:
                try:
                    return _dry_run(opts, table, validator, say, started, t0, handle_signals)
                except WriteError as exc:  # a full disk; a dry run sends nothing
                    raise ResultsFileError(exc.message, hint=exc.hint, param=exc.param) from exc
            rows = (validator.check(raw) for raw in table.rows())
            if opts.command == "update":  # only ever a PATCH: never a POST (not_found)
                rows = (_as_update(checked) for checked in rows)
            counted = opts.progress or opts.command in ("plan", "run")
            total = table.estimated_rows() if counted else None
        # An earlier run's rows left unfinished, for the summary (its batch is kept).
        unfinished = 0 if opts.resume else unfinished_rows(journal_path(results_path))
        if not opts.resume and opts.command != "plan":
            _keep_earlier_batch(results_path, say)
        with ExitStack() as stack:
            had_journal = journal_path(results_path).exists()
            replaced = unfinished
            journal = stack.enter_context(
                Journal(
                    journal_path(results_path),
                    resume=opts.resume,
                    account=opts.account,
                    command=opts.command,
                    other_account=opts.other_account,
                )
            )
            stack.push(_nothing_sent_if_unmarked(journal))  # a full disk before any request
            if opts.resume and not had_journal:
                # The journal has every done row; without it, the results file is what is left.
                if results_path.exists():
                    from .sheets import read_results_xlsx  # a workbook's reader: only here

                    earlier = (
                        read_results_xlsx(results_path)
                        if is_workbook_path(results_path)
                        else read_results_csv(results_path)
                    )
                    journal.import_previous(earlier)
                    say(
                        f"note: --resume without the journal {journal_path(results_path).name}: "
                        "rows done earlier are taken from the results file, and a row "
                        "edited since can't be told from the one that was done"
                    )
                else:
                    say(f"note: --resume: no earlier results at {results_path}; sending every row")
            writer: ResultsWriter | _XlsxWriter
            if is_workbook_path(results_path):
                writer = stack.enter_context(_XlsxWriter(results_path, changes=opts.shows_changes))
            else:
                writer = stack.enter_context(
                    ResultsWriter(results_path, changes=opts.shows_changes)
                )
            log = stack.enter_context(RunLog(opts.log_file))
            progress = stack.enter_context(Progress(total, enabled=opts.progress))
            run = _Run(opts, journal, writer, log, progress, say)
            run.batch = batch
            log.line(
                f"start command={opts.command} file={opts.file} results={results_path} "
                f"dry_run={opts.dry_run} resume={opts.resume} on_existing={opts.on_existing}"
            )
            jobs = run.jobs(rows)
            report: SubmitReport | None = None
            interrupted = False
            sending = time.monotonic()
            try:
                report, interrupted = yield lambda: _send(opts, jobs, run, handle_signals, total)
            finally:
                sending = time.monotonic() - sending
                aborted: ApiError | InputChangedError | None = (
                    report.aborted if report is not None else None
                )
                if aborted is None and run.input_changed is not None:
                    aborted = run.input_changed
                why = (
                    "interrupted before this row was sent"
                    if interrupted
                    else f"not sent: the run stopped ({aborted})"
                    if aborted
                    else "not sent"
                )
                run.not_attempted(jobs, why)
                progress.close()
                writer.finalize(journal.results_in_order())
                counts = _counts(journal)
                if opts.failed_rows is not None and table is not None:
                    _failed_rows(opts.failed_rows, table, journal.results_in_order(), say)
            run.reporter.raise_kept()
            this_run = {status: n - run.earlier[status] for status, n in counts.items()}
            if batch is not None and not opts.dry_run and report is not None:
                ok = OK_BY_COMMAND["undo"]
                if (
                    not aborted
                    and not interrupted
                    and all(n == 0 or Status(st) in ok for st, n in counts.items())
                ):
                    batch.finish_undo()
            summary = _summarize(
                opts,
                log,
                counts,
                started,
                t0,
                report=report,
                aborted=aborted,
                interrupted=interrupted,
                this_run=this_run,
                sending_seconds=sending,
                replaced_unfinished=replaced,
                figures=run.requests.figures(),
            )
            if isinstance(writer, _XlsxWriter):
                writer.finish(summary, _shown_options(opts))
            return summary


class _XlsxWriter:
    """``--output X.xlsx`` during a run: nothing row by row (the journal has every finished
    row); at the end the workbook is rendered from the journal, its summary sheet last."""

    def __init__(self, path: Path, *, changes: bool = False) -> None:
        self.path = path
        self.changes = changes
        self._book: XlsxResults | None = None

    def __enter__(self) -> _XlsxWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop a workbook begun but never finished (the journal still has every row)."""
        if self._book is not None:
            self._book.abandon()
            self._book = None

    def append(self, result: RowResult) -> None:
        """Nothing: the journal holds the row."""

    def hold(self) -> None:
        """Nothing: no row is written before the end."""

    def release(self, *, holding: bool = True, write: bool = True) -> None:
        """Nothing: no row is written before the end."""

    def finalize(self, results: Iterator[RowResult]) -> None:
        from .sheets import XlsxResults

        self._book = XlsxResults(self.path, changes=self.changes)
        try:
            self._book.write(results)
        except BaseException:
            self._book.abandon()
            raise

    def finish(self, summary: Summary, options: dict[str, str]) -> None:
        if self._book is not None:
            book, self._book = self._book, None
            book.finish(summary, options)


def _shown_options(opts: RunOptions) -> dict[str, str]:
    """The run's settings for a summary sheet: never the key or a trunk password."""
    shown = {
        "file": str(opts.file),
        "sheet": opts.sheet or "",
        "header row": "" if opts.header_row is None else str(opts.header_row),
        "base url": "(sandbox)" if opts.sandbox else opts.base_url.split("@")[-1],
        "concurrency": str(opts.concurrency),
        "rate": "" if opts.rate is None else str(opts.rate),
        "max attempts": str(opts.max_attempts),
        "timeout": str(opts.timeout),
        "dry run": str(opts.dry_run),
        "resume": str(opts.resume),
        "on existing": opts.on_existing,
        "map": "; ".join(f"{k}={v}" for k, v in opts.mapping.items()),
        "defaults": ", ".join(k for k in opts.defaults if k != "trunkPassword"),
        "default region": opts.default_region or "",
    }
    return {k: v for k, v in shown.items() if v}


def _failed_rows(
    path: Path, table: Table, results: Iterator[RowResult], say: Callable[[str], None]
) -> None:
    """``--failed-rows``: written at the end; a failure to write it is said, not raised
    (the results file and the journal already hold every row)."""
    from .sheets import write_failed_rows

    try:
        count = write_failed_rows(path, table, results)
    except BulkImportError as exc:
        say(f"warning: --failed-rows {path} not written: {exc}")
        return
    if count:
        say(f"failed rows: {count} row(s) to fix and run again are in {path}")


def _nothing_sent_if_unmarked(journal: Journal) -> Callable[..., bool]:
    """An exit callback: a ``WriteError`` (a full disk) before this run marked any request
    in doubt is a ``ResultsFileError`` (exit 2: nothing was sent)."""

    def on_exit(
        exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if isinstance(exc, WriteError) and not journal.marked:
            raise ResultsFileError(exc.message, hint=exc.hint, param=exc.param) from exc
        return False

    return on_exit


#: Statuses only a plan or a dry run writes: such a file is not one undo can take.
_PLAN_STATUSES = frozenset(
    {Status.WOULD_IMPORT, Status.WOULD_UPDATE, Status.WOULD_DELETE, Status.WOULD_RESTORE}
)


#: The undo statuses that put a number back as it was before the batch (or found it gone).
_UNDONE = frozenset({Status.DELETED, Status.RESTORED, Status.NOT_FOUND})


def _as_update(checked: Job | RowResult) -> Job | RowResult:
    """``update FILE``: a row's job is a read and a PATCH of what differs, whatever columns
    the row has (a number the account does not hold is ``not_found``, never created)."""
    if isinstance(checked, RowResult):
        return checked
    return Job(
        checked.row,
        None,
        Action.UPDATE,
        wanted=checked.fields(),
        number=checked.phone_number,
    )


def _keep_earlier_batch(results: Path, say: Callable[[str], None]) -> None:
    """A plain re-run keeps the earlier batch at ``results`` (its results and journal,
    renamed with its start time beside them) so that it can still be undone; a journal
    that never marked a write (a plan, a run that sent nothing) is simply replaced."""
    journal = journal_path(results)
    started = batch_started(journal)
    if started is None:
        return
    for n in range(1, 100):
        stamp = started if n == 1 else f"{started}-{n}"
        kept = results.with_name(f"{results.stem}.{stamp}{results.suffix}")
        kept_journal = journal_path(kept)
        if not any(p.exists() or p.is_symlink() for p in (kept, kept_journal)):
            break
    else:  # pragma: no cover - a hundred batches of the same second
        raise ResultsFileError(f"can't keep the earlier batch of {results}: too many kept")
    try:
        for suffix in ("-wal", "-shm"):  # SQLite's side files go with their database
            side = Path(f"{journal}{suffix}")
            if side.exists():
                os.rename(side, f"{kept_journal}{suffix}")
        os.rename(journal, kept_journal)
        if results.exists():
            os.rename(results, kept)
    except OSError as exc:
        raise ResultsFileError(
            f"can't keep the earlier batch of {results} beside it: {exc}",
            hint="move it away yourself, or give --resume to go on with it",
            param="output",
        ) from exc
    say(
        f"note: the earlier batch of {results.name} is kept as {kept.name} (and its "
        f"journal): `undo {kept}` still undoes it"
    )


def _open_batch(opts: RunOptions) -> Journal | None:
    """The ledger of the batch ``undo`` undoes (beside RESULTS), checked against the
    account this undo sends to; None when there is none (or for a dry run's look)."""
    path = journal_path(opts.file)
    if not path.exists():
        return None
    return Journal(
        path,
        resume=True,
        account=opts.account,
        command="undo",
        other_account=opts.other_account or opts.dry_run,  # a dry run sends nothing
        reopen=True,
    )


def _undo_rows(
    opts: RunOptions, say: Callable[[str], None], batch: Journal | None
) -> list[RowResult | Job]:
    """The work of ``undo RESULTS``, from the batch's ledger: each row RESULTS lists as
    ``imported`` (DELETE) or ``updated`` (PATCH back the record from before) that the
    ledger agrees with; every other row is left alone, unlisted (docs/contract.md, "A
    batch is a ledger").

    Says how many of each and where before anything is sent, and asks (``confirm``) unless
    ``yes``; refuses when it can't ask.
    """
    source = opts.file
    if not source.exists():
        raise UsageError(
            f"no results file at {source}",
            hint="give the results file of a run (.csv, or the .xlsx of --output)",
            param="file",
        )
    from .sheets import read_results_xlsx

    results = (
        read_results_xlsx(source, strict=True)
        if is_workbook_path(source)
        else read_results_csv(source, strict=True)
    )
    if batch is None:
        say(
            f"note: no journal beside {source} ({journal_path(source).name}): undo acts on "
            "the results file alone, only on rows whose number is a valid E.164 number, "
            "and can't check that each is this batch's"
        )
    facts = batch.facts() if batch is not None else None
    finished = batch is not None and batch.meta("undo_finished") is not None
    rows: list[RowResult | Job] = []
    deletes = restores = 0
    # A line repeated (or pasted) in RESULTS is acted on once: its number or row seen
    # again is left alone (docs/contract.md, "A batch is a ledger").
    seen_rows: set[int] = set()
    acted: dict[str, int] = {}
    for result in results:
        if result.status in _PLAN_STATUSES:
            raise UsageError(
                f"{source} is what plan (or a dry run) would do: nothing in it was done, "
                "so there is nothing to undo",
                hint="give the results file of the run or update that made the changes",
                param="file",
            )
        if result.row in seen_rows:  # its result would take the first one's place
            say(f"note: row {result.row} is listed twice in {source.name}: the second is left")
            continue
        seen_rows.add(result.row)
        phone, said = result.phone_number, result.status.value
        if result.status not in (Status.IMPORTED, Status.UPDATED):
            doubt = facts.get(phone) if facts is not None and not finished else None
            if doubt is not None and doubt.pending is not None and not doubt.undone:
                # A write of this batch whose answer was lost: it may have created or
                # changed the number, and only the input file can tell (docs/contract.md,
                # "Proof of creation"): left alone, and the row says how to settle it.
                rows.append(_skip(result, Status.SKIPPED, _IN_DOUBT))
            continue
        if phone in acted:
            why = f"listed again in the results file (row {acted[phone]}): left alone"
            rows.append(_skip(result, Status.SKIPPED, why))
            continue
        acted[phone] = result.row
        if not (E164_RE.match(phone) and phone.isascii()):
            shown = phone if not phone else shape(phone)
            rows.append(
                RowResult(
                    result.row,
                    shown,
                    Status.SKIPPED,
                    error=f"phone_number: {shown or 'empty'} is not a valid E.164 number: "
                    "nothing sent for it",
                )
            )
            continue
        if finished:
            rows.append(_skip(result, Status.ALREADY_UNDONE, "undone earlier"))
            continue
        fact = facts.get(phone) if facts is not None else None
        if facts is not None:
            why = _disagreement(said, fact)
            if why:
                rows.append(_skip(result, Status.SKIPPED, why))
                continue
            assert fact is not None
            if fact.undone:
                rows.append(_skip(result, Status.ALREADY_UNDONE, f"undone earlier ({fact.undone})"))
                continue
        if result.status is Status.IMPORTED:
            expected = dict(fact.sent) if fact is not None else None
            rows.append(Job(result.row, None, Action.DELETE, number=phone, expected=expected))
            deletes += 1
            continue
        if fact is None or fact.before is None:
            rows.append(
                RowResult(
                    result.row,
                    phone,
                    Status.FAILED,
                    error=f"no record of its old values: the journal "
                    f"{journal_path(source)} has none; restore it by hand",
                )
            )
            continue
        rows.append(
            Job(
                result.row,
                None,
                Action.RESTORE,
                number=phone,
                before=fact.before,
                changed=tuple(fact.changed),
                expected=dict(fact.sent),
            )
        )
        restores += 1
    where = "(dry run: nothing is sent)" if opts.dry_run else f"at {opts.base_url}"
    what = f"undo: will delete {deletes} number(s) and restore {restores} {where}"
    say(what)
    if not opts.dry_run and deletes + restores and not opts.yes:
        if opts.confirm is None:
            raise UsageError(
                f"{what}: not confirmed; nothing was sent",
                hint="yes=True goes ahead, or give confirm a function that asks",
                param="yes",
            )
        if not opts.confirm(what):
            raise UsageError("undo cancelled: nothing was sent")
    return rows


def _disagreement(said: str, fact: NumberFacts | None) -> str:
    """Why a results row and the ledger disagree about a number ("" when they agree)."""
    if fact is None or fact.status is None:
        return f"the results file says {said}, the journal has no such row: left alone"
    if fact.status != said:
        return f"the results file says {said}, the journal says {fact.status}: left alone"
    if said == Status.IMPORTED.value and not fact.created:
        return "the journal does not show that this batch created it: left alone"
    return ""


_IN_DOUBT = (
    "this batch's write to it is in doubt (its answer was lost), so it may have been "
    "created or changed: left alone; run the batch again with --resume (it checks each "
    "such number against the file), then undo"
)


def _skip(result: RowResult, status: Status, why: str) -> RowResult:
    return RowResult(result.row, result.phone_number, status, error=why)


def _dry_run(
    opts: RunOptions,
    table: Table,
    validator: Validator,
    say: Callable[[str], None],
    started: datetime,
    t0: float,
    handle_signals: bool = True,
) -> Summary:
    """The dry run, column-wise: chunks -> ``Validator.check_chunk`` -> the results file.

    Called with the lock held.  No journal, no request, no progress bar and no per-row log
    line (``--log-file`` gets the start and end lines): the results file has every row.
    ``--resume`` is ignored (every row is checked; nothing would be sent anyway).
    """
    from . import split  # imported here: no other run needs it

    if opts.resume:
        say("note: --resume is ignored by --dry-run: every row is checked")
    failed: list[RowResult] = []
    xlsx: XlsxResults | None = None
    with RunLog(opts.log_file) as log:
        log.line(f"start file={opts.file} results={opts.results_path} dry_run=True")
        try:
            with _interrupting(handle_signals), fewer_collections():
                checked: Iterable[ResultColumns]
                plain_csv = opts.on_row is None and opts.failed_rows is None
                if plain_csv and not is_workbook_path(opts.results_path) and split.worth_it(table):
                    # a big CSV into a CSV results file: its second part read in a child
                    counts = write_results_columns(
                        opts.results_path, split.checked(table, validator)
                    )
                else:
                    checked = map(validator.check_chunk, table.chunks())
                    if opts.on_row is not None:
                        checked = _reported(checked, _Reporter(opts.on_row))
                    if opts.failed_rows is not None:
                        checked = (_keep_invalid(chunk, failed) for chunk in checked)
                    if is_workbook_path(opts.results_path):
                        from .sheets import XlsxResults

                        xlsx = XlsxResults(opts.results_path)
                        xlsx.write_columns(checked)
                        counts = xlsx.counts
                    else:
                        counts = write_results_columns(opts.results_path, checked)
                if opts.failed_rows is not None:
                    _failed_rows(opts.failed_rows, table, iter(failed), say)
        except BaseException:
            if xlsx is not None:
                xlsx.abandon()
            raise
        summary = _summarize(opts, log, counts, started, t0)
    if xlsx is not None:
        xlsx.finish(summary, _shown_options(opts))
    return summary


def _keep_invalid(chunk: ResultColumns, into: list[RowResult]) -> ResultColumns:
    """Pass ``chunk`` on, keeping its invalid rows (row and error) for ``--failed-rows``."""
    for row, status, error in zip(chunk.row, chunk.status, chunk.error, strict=True):
        if status == Status.INVALID.value:
            into.append(RowResult(row, "", Status.INVALID, error=error))
    return chunk


def _reported(chunks: Iterable[ResultColumns], reporter: _Reporter) -> Iterator[ResultColumns]:
    """``chunks``, each one's rows given to ``reporter`` once it has been written."""
    for chunk in chunks:
        yield chunk
        for result in chunk.results():
            reporter.report(result)


@contextlib.contextmanager
def _interrupting(enabled: bool) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` in the body, so that it
    cleans up (no half-written file is left) and the CLI exits 130; the handler is
    ``interrupts.interrupt``, so that ``interrupts.held()`` can hold it back over the lines
    that make a file and keep its name (docs/architecture.md, "Interrupts")."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupts.interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _summarize(
    opts: RunOptions,
    log: RunLog,
    counts: dict[str, int],
    started: datetime,
    t0: float,
    *,
    report: SubmitReport | None = None,
    aborted: ApiError | InputChangedError | None = None,
    interrupted: bool = False,
    this_run: dict[str, int] | None = None,
    sending_seconds: float = 0.0,
    replaced_unfinished: int = 0,
    figures: Figures | None = None,
) -> Summary:
    """The run's summary: built once, logged as the end line, and written as JSON."""
    figures = figures or empty_figures()
    exit_code = _exit_code(counts, aborted, interrupted, OK_BY_COMMAND[opts.command])
    requests = report.requests if report else 0
    summary = Summary(
        rows=sum(counts.values()),
        counts=counts,
        this_run=this_run,
        results=str(opts.results_path),
        exit_code=exit_code,
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        duration_seconds=round(time.monotonic() - t0, 3),
        dry_run=opts.dry_run,
        command=opts.command,
        requests=requests,
        achieved_rate=round(requests / sending_seconds, 1)
        if requests and sending_seconds
        else None,
        throttled=report.throttled if report else 0,
        settled_rate=report.settled_rate if report else None,
        rate_ceiling=opts.rate,
        aborted=str(aborted) if aborted else None,
        interrupted=interrupted,
        replaced_unfinished=replaced_unfinished,
        latency=figures["latency"],
        responses=figures["responses"],
        timeline=figures["timeline"],
    )
    if aborted is not None:
        log.line(f"aborted: {aborted}")
    log.line(f"end exit={exit_code} {summary.line()}")
    log.close()
    if opts.summary_json is not None:
        write_summary_json(summary, opts.summary_json)
    return summary


async def _send(
    opts: RunOptions,
    jobs: Iterator[Job],
    run: _Run,
    handle_signals: bool,
    total: int | None = None,
) -> tuple[SubmitReport | None, bool]:
    """Submit ``jobs``; the first SIGINT/SIGTERM/SIGHUP drains in-flight rows, the second
    cuts them."""
    # Imported here: a dry run never loads the HTTP stack.
    from .api import PAGE_SIZE, SigmaMindAPI
    from .ratelimit import RateLimiter
    from .retry import RetryPolicy
    from .submit import SubmitOptions, submit

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with SigmaMindAPI(
        opts.base_url, opts.api_key or "", timeout=opts.timeout, max_connections=opts.concurrency
    ) as api:
        limiter = RateLimiter(opts.rate)
        retry = RetryPolicy(max_attempts=opts.max_attempts)
        writes = not (opts.command == "plan" or opts.dry_run)

        async def read_then_send() -> SubmitReport:
            """What is read of the account before sending, then the sending (one task,
            so that a signal meanwhile is handled like one during the sending)."""
            snapshot = None
            if opts.command == "plan" and (total is None or total > PAGE_SIZE):
                # A list of the whole account costs a request per PAGE_SIZE numbers, a GET
                # per row one per row: for more rows than a page holds, listing is cheaper.
                from .actions import list_account

                listed = await list_account(api, limiter, retry)
                snapshot = {r["phoneNumber"] or "": r for r in listed}
                run.say(f"plan: read {len(snapshot)} number(s) of the account")
            reads = [0]
            todo: Iterator[Job] = jobs
            listing: asyncio.Future[None] | None = None
            if opts.command == "run" and writes:
                first = next(jobs, None)  # nothing left to send (a resume): nothing to read
                if first is not None:
                    todo = itertools.chain([first], jobs)
                    run.journal.listing()
                    listing = asyncio.ensure_future(
                        _list_account_meanwhile(api, limiter, retry, run, total, reads)
                    )
            try:
                report = await submit(
                    todo,
                    api,
                    SubmitOptions(
                        concurrency=opts.concurrency,
                        retry=retry,
                        on_existing=opts.on_existing,
                        max_failures=opts.max_failures,
                        writes=writes,
                        snapshot=snapshot,
                        force=opts.force,
                    ),
                    journal=run,
                    on_result=run.on_result,
                    limiter=limiter,
                    stop=stop,
                    recorder=run.requests,
                )
            finally:
                if listing is not None and not listing.done():
                    listing.cancel()  # nothing is left that would need it
                    await asyncio.gather(listing, return_exceptions=True)
            report.requests += reads[0]
            return report

        # Rows and in-doubt marks are committed once a turn of the loop (ledger.py), the
        # results file's rows after the commit that holds them.
        run.writer.hold()
        run.journal.group_commits(loop, after_commit=run.writer.release)
        try:
            return await _sending(read_then_send(), run, loop, stop, handle_signals)
        finally:
            try:
                run.journal.group_commits(None)
            except WriteError:
                run.writer.release(holding=False, write=False)  # the ledger lacks them
                raise
            run.writer.release(holding=False)


async def _sending(
    sending: Coroutine[object, object, SubmitReport],
    run: _Run,
    loop: asyncio.AbstractEventLoop,
    stop: asyncio.Event,
    handle_signals: bool,
) -> tuple[SubmitReport | None, bool]:
    """Run ``sending``; the first SIGINT/SIGTERM/SIGHUP drains in-flight rows (``stop``),
    the second cuts them."""
    signals = 0
    task = asyncio.ensure_future(sending)

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            stop.set()
            run.tell(
                f"stopping: letting {len(run.pending)} in-flight row(s) finish; "
                "press Ctrl-C again to stop at once"
            )
        else:
            task.cancel()

    installed = _install(loop, on_signal) if handle_signals else []
    try:
        report = await task
    except asyncio.CancelledError:
        if signals < 2:
            raise
        return None, True
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return report, signals > 0


#: The least pages read of the account before a run, whatever its size.
LISTING_PAGES = 20


async def _list_account_meanwhile(
    api: SigmaMindAPI,
    limiter: RateLimiter,
    retry: RetryPolicy,
    run: _Run,
    total: int | None,
    sent: list[int],
) -> None:
    """Read which numbers the account holds while the run sends, so that a POST whose
    answer is lost can be told apart from a number that existed (the ledger's proof of
    creation; ledger.py says how a page read after our first write of a number counts).
    Only a row whose POST was in doubt waits for it.  One request a page, counted in
    ``sent``: up to ``LISTING_PAGES``, or twice the pages the file's rows would fill,
    whichever is more; past that, the numbers not seen are "not known".  An error ends
    the listing, never the run (a rejected key stops the sending on its own).
    """
    from .actions import list_pages
    from .api import PAGE_SIZE

    def counted(_numbers: int, requests: int) -> None:
        sent[0] += requests

    async def told() -> None:
        async with run.pages:
            run.pages.notify_all()

    def page(records: list[Record]) -> None:
        numbers = ("+" + "".join(filter(str.isdigit, r.get("phoneNumber") or "")) for r in records)
        run.journal.listed(numbers)
        told_tasks.append(asyncio.ensure_future(told()))

    told_tasks: list[asyncio.Future[None]] = []
    budget = max(LISTING_PAGES, 2 * -(-(total or 0) // PAGE_SIZE))
    complete = False
    try:
        listing = await list_pages(
            api,
            limiter,
            retry,
            max_pages=budget,
            on_page=counted,
            recorder=run.requests,
            on_records=page,
        )
        complete = listing.complete
        if not complete:
            run.tell(
                f"note: only {len(listing.records)} number(s) of the account were read "
                "(it holds more, or a page of its list could not be read): a lost answer "
                "about another number is 'not known'"
            )
    except AuthError as exc:
        run.key_rejected = exc  # every write waiting for the list stops the run (exit 3)
    except ApiError as exc:  # no list endpoint, or it is down: every number is unknown
        run.tell(f"note: the account's numbers could not be listed: {exc}")
    finally:
        run.journal.listed_all(complete=complete)
        await asyncio.gather(*told_tasks, return_exceptions=True)
        async with run.pages:
            run.pages.notify_all()


def _install(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> list[int]:
    if threading.current_thread() is not threading.main_thread():
        return []
    installed: list[int] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    return installed


def _counts(journal: Journal) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    counts.update(journal.counts())
    return counts


def _exit_code(
    counts: dict[str, int],
    aborted: ApiError | InputChangedError | None,
    interrupted: bool,
    ok_statuses: frozenset[Status] = OK_BY_COMMAND["run"],
) -> int:
    if aborted is not None:
        return EXIT_ABORTED
    if interrupted:
        return EXIT_INTERRUPTED
    ok = {s.value for s in ok_statuses}
    return EXIT_OK if all(n == 0 or s in ok for s, n in counts.items()) else EXIT_ROWS


@contextlib.contextmanager
def _locked(opts: RunOptions, results: Path) -> Iterator[None]:
    """Hold the lock on ``results`` for the body.  A run refused because another holds it
    says so in its log first (``log_file``): a cron job's log shows why it did nothing."""
    lock = RunLock(results)
    try:
        lock.acquire()
    except LockedError as exc:
        with contextlib.suppress(BulkImportError), RunLog(opts.log_file) as log:
            log.line(
                f"refused command={opts.command} file={opts.file}: {exc.message} "
                f"(exit {exc.exit_code})"
            )
        raise
    try:
        yield
    finally:
        lock.release()


def _silent(_text: str) -> None:
    """The library's ``say``: a library caller is told nothing it did not ask for."""
