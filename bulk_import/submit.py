"""Submit: jobs in, one ``RowResult`` per started job out, each number imported exactly once.

``submit`` runs ``concurrency`` workers; each pulls the next job from the (lazy) iterator
only when it is free, so memory stays flat whatever the number of jobs.  Every request
(POST, GET, PATCH and their retries) first takes a token from the shared ``RateLimiter``.

One job (``_process_job``):

1. POST, retried on 429, 500/502/503/504 and connection failures (``RetryPolicy``).
2. 2xx -> ``imported``.  400/404/422 -> ``failed`` with the API's message.  A 2xx whose
   record names a different number is not taken at its word: a GET of the number sent
   decides (stored as sent -> ``imported``, with a note; 404 -> ``failed``).
3. 409 (or "already exists"): if the row is *in doubt* -- an earlier attempt of this run
   got no answer or a 5xx, or ``journal.in_doubt`` says an earlier run sent it unanswered --
   the ledger decides: a number known absent before the batch's first POST of it was
   created by that lost attempt (``imported``); one that existed before is never
   ``imported``; one the ledger can't tell about is ``already_exists`` "may have been
   created by this run: not known".  Otherwise ``--on-existing``: skip ->
   ``already_exists``, fail -> ``failed``, update -> PATCH -> ``updated``.
4. Retries exhausted -> ``failed`` ("no answer after 5 attempts: ..." /
   "HTTP 503 after 5 attempts: ...").

The run stops starting jobs and requests (in-flight requests finish and report) when:

- the API rejects the key (401/403): the job is ``failed`` "API key rejected" and the
  report's ``aborted`` is an ``AuthError``; with concurrency N at most N requests are sent;
- the API looks down (``UnreachableError``): a request ran out of attempts while no request
  got a usable (non-transient) answer, and either it could not even connect, or it is
  the third request in a row to run out of attempts (one bad row alone does not abort);
- ``options.max_failures`` is reached: that many rows (or that share of the rows
  answered) ended ``failed``; the report's ``aborted`` is a ``TooManyFailures`` naming
  the last error;
- ``stop`` is set (SIGINT/SIGTERM).

A started job cut short that way is ``not_attempted`` if no request of it left, ``failed``
if one got an answer, or left unanswered (it may have been stored: ``--resume`` checks).
``attempts`` counts the tries of the import request that left (a refused connection is not
one), so it never exceeds ``max_attempts``; a GET check or PATCH is counted in
``requests`` only.  Jobs never
started are not reported: the caller marks them ``not_attempted``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import actions
from .api import Answer, AnswerKind, SigmaMindAPI, check_number
from .decide import record_fields
from .defaults import CONCURRENCY
from .errors import (
    ApiError,
    AuthError,
    ConnectionFailed,
    NotANumberError,
    TooManyFailures,
    UnreachableError,
)
from .figures import RequestLog
from .ledger import ABSENT, UNKNOWN
from .models import (
    Action,
    FailureLimit,
    Job,
    Kept,
    OnExisting,
    Record,
    RowResult,
    Status,
    same_number,
)
from .ratelimit import RateLimiter
from .retry import RetryPolicy, Transient

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Added to the error of a row whose request may have been stored without an answer.
IN_DOUBT = ": may have been stored; --resume checks"
#: The error of an ``already_exists`` row whose lost POST may have created it, when the
#: ledger can't tell whether the number existed before the batch.
NOT_KNOWN = (
    "may have been created by this run: not known (the account's list did not show "
    "whether it existed before); undo leaves it"
)
FAILING_STREAK = 3  # requests out of attempts, with no usable answer between: API down


class JournalProtocol(Protocol):
    """The caller's durable record of rows sent without an answer.

    A journal that commits its marks later than ``sending`` returns (a turn of the event
    loop later: ledger.py) also has ``async marks_durable()``, awaited after ``sending``
    and before the request leaves.
    """

    def sending(self, job: Job) -> None:
        """Called right before every POST/PATCH for ``job``: mark the row "in doubt"."""

    def in_doubt(self, job: Job) -> bool:
        """True if an earlier run sent this row and never got an answer."""
        ...

    def keep_before(self, phone: str, record: Record, sent: Record, changed: list[str]) -> None:
        """Called before a PATCH: durably keep the record as it was, and what is sent."""

    def before_of(self, phone: str) -> Kept | None:
        """What ``keep_before`` kept for ``phone`` (this run or an earlier one)."""
        ...

    def existed(self, phone: str) -> str:
        """Whether ``phone`` existed before the batch's first write of it (``ledger``'s
        ``ABSENT``, ``PRESENT`` or ``UNKNOWN``)."""
        ...

    def ready_now(self, phone: str) -> bool:
        """True when a write of ``phone`` may leave without waiting (``ready``)."""
        ...

    async def ready(self, phone: str) -> None:
        """Returns once a write of ``phone`` may leave: the account's list, read while
        sending, has said whether it existed before (raises ``AuthError`` if the list was
        refused the key)."""

    def created(self, phone: str, fields: Record) -> None:
        """This batch created ``phone``, and the account shows ``fields`` for it (the first
        time is kept: what the batch created, for undo to compare)."""


@dataclass(frozen=True)
class SubmitOptions:
    concurrency: int = CONCURRENCY
    #: How many attempts per request, and the waits between them.
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    on_existing: OnExisting = "skip"
    max_failures: FailureLimit | None = None  # stop sending once rows keep failing
    #: False for a plan (or undo's dry run): reads are sent, every write becomes the
    #: status saying what it would have done.
    writes: bool = True
    #: The account's records by number, listed beforehand: read instead of a GET per row.
    snapshot: dict[str, dict[str, str | None]] | None = None
    #: undo: delete and restore even a number changed since the batch (``changed_since``).
    force: bool = False


@dataclass
class SubmitReport:
    aborted: ApiError | None = None  # AuthError / UnreachableError when the run stopped early
    requests: int = 0  # requests attempted, every kind and retry
    throttled: int = 0  # 429 answers
    settled_rate: float | None = None  # the limiter's rate at the end
    started: int = 0  # jobs started (each got exactly one RowResult)
    interrupted: bool = False  # ``stop`` was set


class _Halted(Exception):
    """No new request may start: the run is stopping."""


@dataclass
class _Row:
    """What one job has seen so far."""

    job: Job
    in_doubt: bool
    attempts: int = 0  # tries of the import (POST) that left: at most max_attempts
    counting: bool = True  # False once past the POST: a GET check or PATCH is extra
    http_status: int | None = None
    answered: bool = False
    last_error: str = ""
    maybe_stored: bool = False  # a request that may store it got no answer, this run
    #: A write of it (this run's, or an earlier run's: ``in_doubt``) left and no definitive
    #: answer or read has settled it yet: the journal keeps the row in doubt.
    unresolved: bool = False

    def result(
        self, status: Status, *, error: str = "", sip: str | None = None, changes: str = ""
    ) -> RowResult:
        return RowResult(
            row=self.job.row,
            phone_number=self.job.phone_number,
            status=status,
            sip_phone_number=sip or "",
            http_status=self.http_status,
            attempts=self.attempts,
            error=error,
            changes=changes,
            in_doubt=self.unresolved,
        )

    def settled(self) -> None:
        """What the row's writes did is known now (an answer, or a read that shows it)."""
        self.unresolved = False


async def submit(
    jobs: Iterable[Job],
    api: SigmaMindAPI,
    options: SubmitOptions,
    *,
    journal: JournalProtocol,
    on_result: Callable[[RowResult], None],
    limiter: RateLimiter | None = None,
    stop: asyncio.Event | None = None,
    recorder: RequestLog | None = None,
) -> SubmitReport:
    """Send every job (see the module docstring); returns the run's report.

    ``recorder`` is told of every request counted in ``SubmitReport.requests``: its status
    (None: no answer) and how long it took (figures.py).
    """
    run = _Submission(
        api,
        options,
        journal,
        limiter if limiter is not None else RateLimiter(None),
        options.retry,
        stop if stop is not None else asyncio.Event(),
    )
    run.recorder = recorder
    return await run.run(iter(jobs), on_result)


class _Submission:
    """One submit call: the worker pool, the shared counters and the halt switch."""

    def __init__(
        self,
        api: SigmaMindAPI,
        options: SubmitOptions,
        journal: JournalProtocol,
        limiter: RateLimiter,
        policy: RetryPolicy,
        stop: asyncio.Event,
    ) -> None:
        self.api = api
        self.options = options
        self.journal = journal
        self.limiter = limiter
        self.policy = policy
        self.stop = stop
        self.report = SubmitReport()
        self.halt_reason = ""
        self.good_answers = 0  # non-transient HTTP answers so far (the API is working)
        self.failing_streak = 0  # requests out of attempts since the last such answer
        self.rows_failed = 0  # rows that ended ``failed`` ...
        self.rows_answered = 0  # ... of the rows that ended with the API's answer
        self._halt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fatal: BaseException | None = None
        #: The tasks awaiting in ``unless_halted``, and whether a halt has cancelled each.
        self._waiting: dict[asyncio.Task[Any], bool] = {}
        self.recorder: RequestLog | None = None
        self._marks_durable: Callable[[], Awaitable[None]] | None = getattr(
            journal, "marks_durable", None
        )

    async def run(
        self, jobs: Iterator[Job], on_result: Callable[[RowResult], None]
    ) -> SubmitReport:
        relay = asyncio.ensure_future(self._relay_stop())
        try:
            async with asyncio.TaskGroup() as workers:
                for _ in range(max(1, self.options.concurrency)):
                    workers.create_task(self._worker(jobs, on_result))
        finally:
            relay.cancel()
        if self._fatal is not None:
            raise self._fatal
        self.report.settled_rate = self.limiter.current_rate
        return self.report

    async def _worker(self, jobs: Iterator[Job], on_result: Callable[[RowResult], None]) -> None:
        try:
            while not self.halted():
                job = next(jobs, None)
                if job is None:
                    return
                self.report.started += 1
                result = await _process_job(self, job)
                on_result(result)
                self._count_failure(result)
        except Exception as exc:  # noqa: BLE001 - iterator/journal/on_result failed: re-raised
            if self._fatal is None:
                self._fatal = exc
            self._set_halt("stopped by an error")

    def _count_failure(self, result: RowResult) -> None:
        """Stop sending once ``max_failures`` rows (or share of rows) ended ``failed``."""
        limit = self.options.max_failures
        if limit is None or self.halted() or result.status is Status.NOT_ATTEMPTED:
            return
        self.rows_answered += 1
        if result.status is Status.FAILED:
            self.rows_failed += 1
            if limit.tripped(self.rows_failed, self.rows_answered):
                status = f"HTTP {result.http_status}: " if result.http_status else ""
                error = TooManyFailures(
                    f"stopped sending: {self.rows_failed} of {self.rows_answered} rows "
                    f"answered failed (limit: {limit.describe()}); "
                    f"last error: row {result.row}: {status}{result.error}"
                )
                self.abort(error, "run aborted: too many rows failed")

    # -- halting ----------------------------------------------------------------------

    def halted(self) -> bool:
        if self.stop.is_set() and not self._halt.done():
            self._on_stop()
        return self._halt.done()

    async def _relay_stop(self) -> None:
        await self.stop.wait()
        self._on_stop()

    def _on_stop(self) -> None:
        self.report.interrupted = True
        self._set_halt("interrupted")

    def abort(self, error: ApiError, reason: str) -> None:
        if self.report.aborted is None:
            log.error("aborting: %s", error)
            self.report.aborted = error
        self._set_halt(reason)

    def _set_halt(self, reason: str) -> None:
        if not self._halt.done():
            self.halt_reason = reason
            self._halt.set_result(None)
            for task in self._waiting:  # those in ``unless_halted``: cut short
                self._waiting[task] = True
                task.cancel()

    async def unless_halted(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable``, or raise ``_Halted`` as soon as the run halts.

        Awaited in the worker's own task (no task of its own): a halt cancels the tasks
        waiting here (``_set_halt``), and that cancellation becomes ``_Halted``.
        """
        if self.halted():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise _Halted
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always called from a worker's task
            return await awaitable
        self._waiting[task] = False
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self._waiting.get(task):
                raise  # cancelled by someone else (the task group, a second Ctrl-C)
            task.uncancel()
            raise _Halted from None
        finally:
            self._waiting.pop(task, None)

    async def _sleep(self, seconds: float) -> None:
        await self.unless_halted(self.policy.sleep(seconds))

    # -- requests ---------------------------------------------------------------------

    async def request(
        self, row: _Row, send: Callable[[], Awaitable[Answer]], *, stores: bool
    ) -> Answer:
        """One request, retried: its final (non-transient) answer.

        Raises the last ``Transient``/``ConnectionFailed`` when attempts run out (after
        checking whether that means the API is unreachable), or ``_Halted``.
        """
        good_before = self.good_answers
        try:
            return await self.policy.run(
                lambda: self._attempt(row, send, stores=stores), sleep=self._sleep
            )
        except (Transient, ConnectionFailed) as exc:
            self._out_of_attempts(exc, answered_meanwhile=self.good_answers != good_before)
            raise

    def _out_of_attempts(
        self, exc: Transient | ConnectionFailed, *, answered_meanwhile: bool
    ) -> None:
        """Abort when attempts ran out because the API is down, not because of this row.

        That is: no request got a usable answer while these attempts ran, and either they
        could not even connect (no row can cause that), or ``FAILING_STREAK`` requests in a
        row have now run out of attempts.
        """
        self.failing_streak += 1
        could_not_connect = isinstance(exc, ConnectionFailed) and not exc.maybe_sent
        if answered_meanwhile or not (could_not_connect or self.failing_streak >= FAILING_STREAK):
            return
        what = "kept failing" if isinstance(exc, Transient) else "did not answer"
        self.abort(
            UnreachableError(
                f"the API at {self.api.base_url} {what}: {_exhausted(exc, self.policy)}",
                hint="check --base-url, the network and the API's status",
            ),
            "run aborted: the API is unreachable",
        )

    async def _attempt(
        self, row: _Row, send: Callable[[], Awaitable[Answer]], *, stores: bool
    ) -> Answer:
        if stores and not self.journal.ready_now(row.job.phone_number):
            # a write waits for the account's list to say what was there before
            try:
                await self.unless_halted(self.journal.ready(row.job.phone_number))
            except AuthError as exc:  # the list was refused the key: nothing is written
                self.abort(exc, "run aborted: the API key was rejected")
                raise _Halted from None
        sent_at = await self.unless_halted(self.limiter.acquire())
        if self.halted():
            raise _Halted
        unresolved = row.unresolved
        if stores:
            self.journal.sending(row.job)
            row.unresolved = True
            if self._marks_durable is not None:  # the mark is committed before it leaves
                await self._marks_durable()
        row.attempts += row.counting  # counted before: a cut request may have left
        self.report.requests += 1
        recorder = self.recorder
        began = recorder.started() if recorder is not None else 0.0
        try:
            answer = await send()
        except ConnectionFailed as exc:
            if not exc.maybe_sent:  # it never left (refused): not an attempt
                row.attempts -= row.counting
                self.report.requests -= 1
                row.unresolved = unresolved
            elif recorder is not None:
                recorder.record(None, began)
            row.maybe_stored = row.maybe_stored or (stores and exc.maybe_sent)
            row.in_doubt = row.in_doubt or row.maybe_stored
            row.last_error = exc.message
            log.debug("row %d: %s", row.job.row, exc.message)
            raise
        row.http_status, row.answered = answer.status, True
        if recorder is not None:
            recorder.record(answer.status, began)
        if answer.rate_limit is not None:
            self.limiter.observe(answer.rate_limit, sent_at=sent_at)
        if answer.kind is AnswerKind.THROTTLED:
            self.report.throttled += 1
            self.limiter.on_throttled(answer.retry_after, sent_at=sent_at)
        else:
            self.limiter.on_success(sent_at=sent_at)
        if not answer.ok:
            row.last_error = f"HTTP {answer.status}: {answer.message}"
        if answer.retryable:
            row.in_doubt = row.in_doubt or (stores and answer.kind is AnswerKind.SERVER)
            log.debug("row %d: %s", row.job.row, row.last_error)
            raise Transient(answer.message, status=answer.status, retry_after=answer.retry_after)
        self.good_answers += 1
        self.failing_streak = 0
        # A definitive answer to the write: applied, or not at all.  But a 409 to a row in
        # doubt says nothing of what the lost attempt did: the reconciliation that follows
        # settles it.
        doubtful = row.in_doubt and answer.kind is AnswerKind.EXISTS
        if stores and answer.kind is not AnswerKind.AUTH and not doubtful:
            row.settled()
        if answer.kind is AnswerKind.AUTH:
            self.abort(
                AuthError(
                    f"the API rejected the key (HTTP {answer.status}): "
                    "check SIGMAMIND_API_KEY or --api-key-file"
                ),
                "run aborted: the API key was rejected",
            )
        return answer


# -- one job -------------------------------------------------------------------------


async def _process_job(run: _Submission, job: Job) -> RowResult:
    """The whole life of one job, as exactly one ``RowResult``."""
    earlier = run.journal.in_doubt(job)
    row = _Row(job, in_doubt=earlier, unresolved=earlier)
    try:
        check_number(job.phone_number)  # a number that is not E.164 is never sent
        if job.action is not Action.IMPORT or job.importable is None or not run.options.writes:
            return await actions.process(run, row)
        return await _import(run, row)
    except (Transient, ConnectionFailed) as exc:
        if not row.answered and not row.attempts and not row.in_doubt:
            # no request of this row ever left: it was not sent, it did not fail
            return row.result(
                Status.NOT_ATTEMPTED, error=f"not sent: {_exhausted(exc, run.policy)}"
            )
        # a write of this row that may have stored it stays in doubt, whatever the last
        # try then got (a 500 after a lost answer): docs/contract.md, "Proof of creation"
        doubt = IN_DOUBT if row.maybe_stored else ""
        return row.result(Status.FAILED, error=_exhausted(exc, run.policy) + doubt)
    except NotANumberError as exc:
        return row.result(Status.FAILED, error=str(exc))
    except _Halted:
        reason = run.halt_reason
        if not row.answered and row.in_doubt:  # a request left and got no answer
            return row.result(
                Status.FAILED,
                error=f"{reason} after {row.attempts} unanswered attempt(s){IN_DOUBT}",
            )
        if not row.answered:
            return row.result(Status.NOT_ATTEMPTED, error=f"{reason} before this row was sent")
        return row.result(Status.FAILED, error=f"{reason} (last: {row.last_error})")


async def _import(run: _Submission, row: _Row) -> RowResult:
    req = row.job.request
    answer = await run.request(row, lambda: run.api.create(req), stores=True)
    if answer.kind is AnswerKind.OK:
        if (
            answer.record is not None
            and answer.record.sip_phone_number
            and not same_number(answer.record.sip_phone_number, req.phone_number)
        ):
            return await _other_number(run, row, answer)
        return row.result(Status.IMPORTED, sip=_sip(answer))
    if answer.kind is AnswerKind.EXISTS:
        return await _existing(run, row)
    if answer.kind is AnswerKind.AUTH:
        return row.result(Status.FAILED, error="API key rejected")
    return row.result(Status.FAILED, error=answer.message)


async def _existing(run: _Submission, row: _Row) -> RowResult:
    """The number exists: ours from a lost attempt (-> imported), or --on-existing."""
    req = row.job.request
    row.counting = False  # ``attempts`` counts the POST's tries only
    note = ""
    if row.in_doubt:
        # A kept record from before means what was in doubt is a PATCH: reconcile it as
        # one, so a PATCH that landed is ``updated``, never ``imported``.
        patched = run.journal.before_of(req.phone_number) is not None
        if patched and run.options.on_existing == "update":
            return await actions.update_existing(run, row, None)
        existed = run.journal.existed(req.phone_number)
        if not patched and existed != ABSENT:
            row.settled()  # it was there before (or that can't be known): no lost POST of ours
        if not patched and existed == ABSENT:
            # Known absent before this batch's first POST of it: that lost POST made it
            # (docs/contract.md, "Proof of creation").  With the values of that POST,
            # which an edited row may no longer give: the record says which.
            found = await run.request(row, lambda: run.api.get(req.phone_number), stores=False)
            if found.kind is AnswerKind.AUTH:
                return row.result(Status.FAILED, error="API key rejected")
            if found.kind is AnswerKind.OK and found.record is not None:
                run.journal.created(req.phone_number, record_fields(found.record))
                if run.options.on_existing == "update":  # the row's values, if edited since
                    return await actions.update_existing(run, row, found)
            row.settled()
            return row.result(Status.IMPORTED, sip=_sip(found) or req.phone_number)
        if not patched and existed == UNKNOWN:
            note = NOT_KNOWN
    mode = run.options.on_existing
    if mode == "skip":  # the number that exists is the one sent, if no answer named it
        return row.result(Status.ALREADY_EXISTS, sip=req.phone_number, error=note)
    if mode == "fail":
        error = "already exists (--on-existing fail)" + (f"; {note}" if note else "")
        return row.result(Status.FAILED, error=error)
    return await actions.update_existing(run, row, None)


async def _other_number(run: _Submission, row: _Row, created: Answer) -> RowResult:
    """A 2xx that names another number: what the API holds for the number sent decides."""
    req = row.job.request
    said = f"HTTP {created.status} named {_shown(created)}, not this number"
    found = await run.request(row, lambda: run.api.get(req.phone_number), stores=False)
    if found.kind is AnswerKind.OK and found.record is not None and found.record.matches(req):
        return row.result(
            Status.IMPORTED, sip=_sip(found), error=f"note: {said}; GET shows it stored as sent"
        )
    if found.kind is AnswerKind.NOT_FOUND:
        return row.result(
            Status.FAILED,
            error=f"{said}, and GET finds no such number: not imported; check the account",
        )
    if found.kind is AnswerKind.OK:
        return row.result(
            Status.FAILED,
            error=f"{said}; GET shows this number with other values: check the account",
        )
    return row.result(
        Status.FAILED, error=f"{said}; GET could not check it: {found.message}{IN_DOUBT}"
    )


def _shown(answer: Answer) -> str:
    """The number an answer names, if it looks like one (it is never a secret then)."""
    number = answer.record.sip_phone_number if answer.record is not None else None
    if number and _NUMBER_LIKE.match(number):
        return repr(number)
    return "a value that is not a phone number"


_NUMBER_LIKE = re.compile(r"^\+?[0-9][0-9 ().-]{3,24}$")


def _sip(answer: Answer) -> str | None:
    return answer.record.sip_phone_number if answer.record is not None else None


def _exhausted(exc: Transient | ConnectionFailed, policy: RetryPolicy) -> str:
    n = policy.max_attempts
    attempts = f"{n} attempt" if n == 1 else f"{n} attempts"
    if isinstance(exc, Transient):
        return f"HTTP {exc.status} after {attempts}: {exc.message}"
    if not exc.maybe_sent:  # none of them left: tries, not attempts
        return f"{exc.message} ({n} {'try' if n == 1 else 'tries'})"
    return f"no answer after {attempts}: {exc.message}"
