"""actions: the "act" step for every action but a plain import, on submit's engine.

``submit`` runs each job through its worker pool, rate limiter, retries and in-doubt
journal marks; for a job that is not a plain POST it calls ``process`` here, which reads
what it must, decides (``decide``: plain data) and sends through the same ``run.request``:

- ``Action.UPDATE`` (``update FILE``) and a row without every field needed to create its
  number (``run --on-existing update``): read the number (a GET, or the account listed
  beforehand), then PATCH only what differs, or nothing (``unchanged``).  The record as it
  was is kept in the journal before the PATCH is sent.
- ``Action.DELETE`` / ``Action.RESTORE`` (``undo``): DELETE the number, or PATCH back the
  fields an update changed.
- With ``writes`` off (``plan``, ``--dry-run`` of undo), every write is replaced by the
  status saying what it would have done; reads still happen.

Reconciling a request whose answer was lost depends only on its action: a POST is done
when the number now exists as sent (``submit``), a PATCH when the record now equals what
was sent, a DELETE when the number is gone (404).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .api import Answer, AnswerKind, Pager, SigmaMindAPI
from .decide import (
    SECRET_FIELDS,
    Decision,
    decide_update,
    describe,
    diff,
    drift,
    matches_body,
    not_restorable,
    record_fields,
    restore_body,
)
from .errors import ApiError, AuthError, ConnectionFailed, UnreachableError
from .models import Action, Record, RowResult, Status
from .ratelimit import RateLimiter
from .retry import RetryPolicy, Transient

if TYPE_CHECKING:
    from .figures import RequestLog
    from .submit import _Row, _Submission

_AUTH = "API key rejected"
_NOT_RESTORABLE = "can't be put back (the API never returns its old value)"


class _Unreadable(Exception):
    """The number's record could not be read; ``result`` says why."""

    def __init__(self, result: RowResult) -> None:
        super().__init__(result.error)
        self.result = result


class _ChangedSince(Exception):
    """Undo's second look, after a lost answer, found the record changed since the batch."""

    def __init__(self, changes: str, record: Record | None) -> None:
        super().__init__(changes)
        self.changes = changes
        self.record = record


async def process(run: _Submission, row: _Row) -> RowResult:
    """One job whose action is not a plain POST (see the module docstring)."""
    action = row.job.action
    try:
        if action is Action.DELETE:
            return await _delete(run, row)
        if action is Action.RESTORE:
            return await _restore(run, row)
        if action is Action.UPDATE:
            return await _update(run, row, missing=Status.NOT_FOUND)
        if not run.options.writes:
            return await _plan_import(run, row)
        return await _update(run, row, missing=Status.INVALID)
    except _Unreadable as exc:
        return exc.result


async def update_existing(run: _Submission, row: _Row, found: Answer | None) -> RowResult:
    """``run --on-existing update``: the POST found the number; PATCH what differs."""
    try:
        record = _record_of(row, found) if found is not None else await _read(run, row)
        if record is None:
            return row.result(Status.FAILED, error="the API says it exists, but GET finds none")
        return await _patch_towards(run, row, record)
    except _Unreadable as exc:
        return exc.result


# -- reading -------------------------------------------------------------------------


async def _read(run: _Submission, row: _Row) -> Record | None:
    """The account's record of the row's number (None: it has none)."""
    number = row.job.phone_number
    if run.options.snapshot is not None:
        return run.options.snapshot.get(number)
    counting, row.counting = row.counting, False  # ``attempts`` counts the write's tries
    try:
        answer = await run.request(row, lambda: run.api.get(number), stores=False)
    finally:
        row.counting = counting
    return _record_of(row, answer)


def _record_of(row: _Row, answer: Answer) -> Record | None:
    if answer.kind is AnswerKind.NOT_FOUND:
        return None
    if answer.kind is AnswerKind.OK:
        record = record_fields(answer.record)
        record.setdefault("phoneNumber", row.job.phone_number)
        return record
    if answer.kind is AnswerKind.AUTH:
        raise _Unreadable(row.result(Status.FAILED, error=_AUTH))
    raise _Unreadable(row.result(Status.FAILED, error=f"reading the number: {answer.message}"))


# -- import (plan), update -------------------------------------------------------------


def _missing(row: _Row) -> RowResult:
    fields = row.job.missing_for_create()
    error = "; ".join(f"{name}: required to import a new number" for name in fields)
    return row.result(Status.INVALID, error=error)


async def _plan_import(run: _Submission, row: _Row) -> RowResult:
    """What ``run`` would do with this row, read from the account; sends no write."""
    record = await _read(run, row)
    if record is None:
        if row.job.importable is None:
            return _missing(row)
        return row.result(Status.WOULD_IMPORT)
    mode = run.options.on_existing
    if mode == "skip":
        return row.result(Status.ALREADY_EXISTS, sip=record.get("phoneNumber"))
    if mode == "fail":
        return row.result(Status.FAILED, error="already exists (--on-existing fail)")
    return await _patch_towards(run, row, record)


async def _update(run: _Submission, row: _Row, *, missing: Status) -> RowResult:
    record = await _read(run, row)
    if record is None:
        row.settled()  # no such number: no write of ours is left to wonder about
        if missing is Status.INVALID:
            if row.job.importable is not None:  # pragma: no cover - submit POSTs these
                return row.result(Status.FAILED, error="not found")
            return _missing(row)
        return row.result(Status.NOT_FOUND, error="no such number in the account")
    return await _patch_towards(run, row, record)


async def _patch_towards(run: _Submission, row: _Row, record: Record) -> RowResult:
    """PATCH ``record`` to what the row wants (only what differs), or nothing."""
    job = row.job
    wanted = job.fields()
    sip = record.get("phoneNumber")
    if row.in_doubt:
        earlier = run.journal.before_of(job.phone_number)
        if earlier is not None and matches_body(record, earlier[1]) and earlier[1]:
            # An earlier run's PATCH, answer lost, did land: this row is updated.
            changes = describe(diff(wanted, earlier[0]))
            row.settled()
            return row.result(Status.UPDATED, sip=sip, changes=changes)
    decision = decide_update(wanted, record)
    if not decision.body:
        row.settled()  # the record shows what the row wants: nothing is in doubt
        return row.result(Status.UNCHANGED, sip=sip)
    if not run.options.writes:
        return row.result(Status.WOULD_UPDATE, sip=sip, changes=decision.changes_text)
    _keep_before(run, row, decision)
    answer = await run.request(
        row,
        lambda: run.api.patch(job.phone_number, decision.body, secret=job.secret),
        stores=True,
    )
    if answer.kind is AnswerKind.OK:
        return row.result(Status.UPDATED, sip=sip, changes=decision.changes_text)
    if answer.kind is AnswerKind.NOT_FOUND:
        return row.result(Status.NOT_FOUND, error="the number was deleted meanwhile")
    if answer.kind is AnswerKind.AUTH:
        return row.result(Status.FAILED, error=_AUTH)
    return row.result(
        Status.FAILED, error=f"update failed: {answer.message}", changes=decision.changes_text
    )


def _keep_before(run: _Submission, row: _Row, decision: Decision) -> None:
    sent = {k: (None if k in SECRET_FIELDS else v) for k, v in decision.body.items()}
    changed = [c.field for c in decision.changes]
    run.journal.keep_before(row.job.phone_number, decision.before, sent, changed)


# -- undo ------------------------------------------------------------------------------


async def _check_unchanged(run: _Submission, row: _Row) -> RowResult | Record:
    """Undo's look before it writes back: the record, if it still shows what the batch
    left (``job.expected``); else the row's result (gone, or ``changed_since``)."""
    record = await _read(run, row)
    if record is None:
        if row.in_doubt and row.job.action is Action.DELETE:  # our lost DELETE did it
            row.settled()
            return row.result(Status.DELETED)
        row.settled()
        return row.result(Status.NOT_FOUND, error="already gone")
    expected = row.job.expected or {}
    if row.in_doubt and row.job.action is Action.RESTORE:
        body = restore_body(row.job.before, row.job.changed)
        if body and matches_body(record, body):  # our lost PATCH back did it
            row.settled()
            return row.result(Status.RESTORED)
    changed = drift(expected, record)
    if changed and not run.options.force:
        row.settled()
        return row.result(
            Status.CHANGED_SINCE,
            sip=record.get("phoneNumber"),
            error="changed since the batch: left as it is (--force to undo it anyway)",
            changes=describe(changed),
        )
    return record


async def _delete(run: _Submission, row: _Row) -> RowResult:
    number = row.job.phone_number
    if row.job.expected is not None and run.options.writes:
        checked = await _check_unchanged(run, row)
        if isinstance(checked, RowResult):
            return checked
    if not run.options.writes:
        return row.result(Status.WOULD_DELETE)

    async def send() -> Answer:
        seen = await _look_again(run, row, lambda record: False)
        return seen if seen is not None else await run.api.delete(number)

    try:
        answer = await run.request(row, send, stores=True)
    except _ChangedSince as exc:
        return _changed_since(row, exc)
    if answer.kind is AnswerKind.OK:
        return row.result(Status.DELETED)
    if answer.kind is AnswerKind.NOT_FOUND:
        if row.in_doubt:  # an earlier attempt, answer lost, deleted it
            return row.result(Status.DELETED)
        return row.result(Status.NOT_FOUND, error="already gone")
    if answer.kind is AnswerKind.AUTH:
        return row.result(Status.FAILED, error=_AUTH)
    return row.result(Status.FAILED, error=f"delete failed: {answer.message}")


async def _restore(run: _Submission, row: _Row) -> RowResult:
    job = row.job
    body = restore_body(job.before, job.changed)
    lost = not_restorable(job.before, job.changed)
    note = "; ".join(f"{name}: {_NOT_RESTORABLE}" for name in lost)
    if job.expected is not None and run.options.writes:
        checked = await _check_unchanged(run, row)
        if isinstance(checked, RowResult):
            return dataclasses.replace(checked, error=checked.error or note)
    if not run.options.writes:
        return row.result(Status.WOULD_RESTORE, error=note)
    if not body:
        return row.result(Status.RESTORED, error=note)

    async def send() -> Answer:
        seen = await _look_again(run, row, lambda record: matches_body(record, body))
        return seen if seen is not None else await run.api.patch(job.phone_number, body)

    try:
        answer = await run.request(row, send, stores=True)
    except _ChangedSince as exc:
        result = _changed_since(row, exc)
        return dataclasses.replace(
            result, error=f"{result.error}; {note}" if note else result.error
        )
    if answer.kind is AnswerKind.OK:
        return row.result(Status.RESTORED, error=note)
    if answer.kind is AnswerKind.NOT_FOUND:
        return row.result(Status.NOT_FOUND, error="already gone")
    if answer.kind is AnswerKind.AUTH:
        return row.result(Status.FAILED, error=_AUTH)
    return row.result(Status.FAILED, error=f"restore failed: {answer.message}")


async def _look_again(
    run: _Submission, row: _Row, landed: Callable[[Record], bool]
) -> Answer | None:
    """Before undo's write is sent again after its answer was lost: the read that settles
    it, never a resend unseen (docs/contract.md, "A batch is a ledger").  The GET's answer
    when it settles the row (404; the record as the lost write ``landed`` it; a transient
    answer, tried again), ``_ChangedSince`` when the record no longer shows what the batch
    left, None to send the write again.  ``attempts`` counts only the writes that left."""
    if not row.maybe_stored:
        return None
    number = row.job.phone_number
    row.attempts -= row.counting
    try:
        seen = await run.api.get(number)
    except ConnectionFailed as exc:
        if not exc.maybe_sent:  # submit takes a refused one off itself
            row.attempts += row.counting
        raise
    if seen.kind is not AnswerKind.OK:
        return seen
    record = _record_of(row, seen) or {}
    if landed(record):
        return seen
    changed = drift(row.job.expected or {}, record)
    if changed and not run.options.force:
        raise _ChangedSince(describe(changed), record)
    row.attempts += row.counting
    return None


def _changed_since(row: _Row, exc: _ChangedSince) -> RowResult:
    row.settled()
    return row.result(
        Status.CHANGED_SINCE,
        sip=(exc.record or {}).get("phoneNumber"),
        error="changed since the batch: left as it is (--force to undo it anyway)",
        changes=exc.changes,
    )


# -- the whole account -------------------------------------------------------------------


async def list_account(
    api: SigmaMindAPI,
    limiter: RateLimiter,
    policy: RetryPolicy,
    on_page: Callable[[int, int], None] | None = None,
) -> list[Record]:
    """Every number of the account (all pages), each page retried and rate-limited;
    ``on_page(0, 1)`` before each request, ``on_page(new numbers, 0)`` after each page."""
    return (await list_pages(api, limiter, policy, on_page=on_page)).records


class Listing(NamedTuple):
    """The account's numbers as listed: ``complete`` False when the listing stopped at
    its page budget or a page could not be read; ``requests`` sent, retries included."""

    records: list[Record]
    complete: bool
    requests: int


async def list_pages(
    api: SigmaMindAPI,
    limiter: RateLimiter,
    policy: RetryPolicy,
    *,
    max_pages: int | None = None,
    on_page: Callable[[int, int], None] | None = None,
    recorder: RequestLog | None = None,
    on_records: Callable[[list[Record]], None] | None = None,
) -> Listing:
    """The account's numbers, at most ``max_pages`` pages of them (``on_page``: as
    ``list_account``'s; ``recorder`` is told of each request, as ``submit``'s is;
    ``on_records`` is given each page's records as soon as it is read)."""
    try:
        return await _list_account(api, limiter, policy, max_pages, on_page, recorder, on_records)
    except (Transient, ConnectionFailed) as exc:
        what = f"HTTP {exc.status}" if isinstance(exc, Transient) else "no answer"
        raise UnreachableError(
            f"listing the account's numbers at {api.base_url} failed ({what}: {exc.message})",
            hint="check --base-url, the network and the API's status",
        ) from exc


async def _list_account(
    api: SigmaMindAPI,
    limiter: RateLimiter,
    policy: RetryPolicy,
    max_pages: int | None,
    on_page: Callable[[int, int], None] | None,
    recorder: RequestLog | None = None,
    on_records: Callable[[list[Record]], None] | None = None,
) -> Listing:
    pager = Pager()
    records: list[Record] = []
    pages = requests = 0
    while (step := pager.next_request()) is not None:
        if max_pages is not None and pages >= max_pages:
            return Listing(records, False, requests)
        pages += 1
        url, params = step

        async def one_page(url: str | None = url, params: dict[str, str] | None = params) -> object:
            nonlocal requests
            sent_at = await limiter.acquire()
            requests += 1
            if on_page is not None:
                on_page(0, 1)  # counted before: a request cut short may have left
            began = recorder.started() if recorder is not None else 0.0
            try:
                answer, data = await api.list_page(url, params)
            except ConnectionFailed as exc:
                if recorder is not None and exc.maybe_sent:
                    recorder.record(None, began)
                raise
            if recorder is not None:
                recorder.record(answer.status, began)
            if answer.rate_limit is not None:
                limiter.observe(answer.rate_limit, sent_at=sent_at)
            if answer.kind is AnswerKind.THROTTLED:
                limiter.on_throttled(answer.retry_after, sent_at=sent_at)
            else:
                limiter.on_success(sent_at=sent_at)
            if answer.retryable:
                raise Transient(
                    answer.message, status=answer.status, retry_after=answer.retry_after
                )
            if answer.kind is AnswerKind.AUTH:
                raise AuthError(
                    f"the API rejected the key (HTTP {answer.status}): "
                    "check SIGMAMIND_API_KEY or --api-key-file"
                )
            if not answer.ok:
                raise ApiError(
                    f"listing the account's numbers failed: HTTP {answer.status}: {answer.message}"
                )
            return data

        data = await policy.run(one_page)
        page = [record_fields(record) for record in pager.take(data)]
        records.extend(page)
        if on_records is not None:
            on_records(page)
        if on_page is not None:
            on_page(len(page), 0)
    return Listing(records, pager.understood, requests)
