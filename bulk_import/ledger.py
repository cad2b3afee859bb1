"""ledger: the one durable record of what a batch did to which account (SQLite, WAL).

A results file is a report a person may edit; the journal beside it (``<results>.journal``)
is the truth that ``undo``, ``update`` and ``--resume`` act on (docs/contract.md, "A batch
is a ledger").  It holds:

- ``meta``: the account (base URL, and a fingerprint of the API key that can't be turned
  back into it), the command, when the batch started, the salt of its fingerprints;
- ``numbers``: per number the batch touched, the facts no edit of the results file can
  change: whether it existed before the batch's first write of it (``existed``), whether
  this batch created it (``created``), the record before the batch first changed it
  (``before``, kept once), the visible fields the batch set (``sent``), the fields it
  changed, the write in flight without an answer (``pending``: the in-doubt mark), the
  batch's status for it, the fingerprint of the row that did it, and what an ``undo``
  did to it (``undone``);
- ``results`` / ``changes``: this run's results lines, the results file's source;
  ``previous``: the done rows of earlier runs of the batch (``--resume``).

Every finished row is committed the moment it finishes (``kill -9`` loses nothing
finished), and every write is marked pending, committed in one transaction with what the
ledger learns of the number, before it leaves.  While a run sends (``group_commits``),
"the moment" is the end of the event loop's turn in which the row finished or the mark
was made: one commit then holds every row and mark of that turn, no request leaves before
the commit that holds its mark (``marks_durable``), and nothing is told of the rows (the
results file, ``after_commit``) before the commit that holds them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from .decide import SECRET_FIELDS, fingerprint
from .errors import ResultsFileError, UsageError, WriteError
from .models import DONE_STATUSES, Job, Kept, Record, RowResult, Status
from .outputs import DATABASE_SIDE_SUFFIXES, prepare_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    row INTEGER PRIMARY KEY, phone TEXT NOT NULL, status TEXT NOT NULL, sip TEXT NOT NULL,
    http_status INTEGER, attempts INTEGER NOT NULL, error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS previous (
    phone TEXT PRIMARY KEY, status TEXT NOT NULL, sip TEXT NOT NULL,
    http_status INTEGER, attempts INTEGER NOT NULL, error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (row INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS numbers (
    phone TEXT PRIMARY KEY,
    existed TEXT,
    created INTEGER NOT NULL DEFAULT 0,
    before TEXT,
    sent TEXT,
    changed TEXT,
    pending TEXT,
    status TEXT,
    fingerprint TEXT,
    undone TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_DONE_SQL = ", ".join(f"'{s.value}'" for s in sorted(DONE_STATUSES))
#: The tables of a release-2 journal, folded into ``numbers`` when one is resumed.
_OLD_TABLES = ("in_doubt", "before", "fingerprints")
#: What ``existed`` says of a number before the batch's first write of it.
ABSENT, PRESENT, UNKNOWN = "absent", "present", "unknown"
#: Iterations of the key fingerprint's PBKDF2 (a guess at the key costs this much).
_KDF_ROUNDS = 20_000


@dataclass(frozen=True, slots=True)
class Account:
    """Where a batch's requests go: the base URL and the API key (never stored)."""

    base_url: str
    api_key: str

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/")


def key_fingerprint(api_key: str, salt: bytes) -> str:
    """A fingerprint of the API key that can't be turned back into it (salted PBKDF2)."""
    # The rounds make each guess at a weak key expensive to check against a journal.
    salted = b"bulk-import/account/" + salt
    return hashlib.pbkdf2_hmac("sha256", api_key.encode(), salted, _KDF_ROUNDS).hex()[:32]


def _fingerprint_key(api_key: str, salt: bytes) -> bytes:
    """The key of the fields' fingerprints: derived from the API key, never stored, so a
    journal alone can't be used to guess a trunk password offline."""
    return hmac.new(api_key.encode(), b"bulk-import/fingerprint/" + salt, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class NumberFacts:
    """What the ledger knows of one number of the batch (``Ledger.facts``)."""

    phone: str
    status: str | None
    created: bool
    before: Record | None
    sent: Record
    changed: list[str]
    pending: str | None
    undone: str | None


class Journal:
    """The batch's ledger (see the module docstring).

    ``resume=False`` starts a new batch at ``path`` (whatever was there is replaced: the
    runner first moves an earlier batch aside, ``keep_aside``); ``resume=True`` goes on
    with the batch there.  ``account`` is where this run sends: a new batch records it,
    a resumed one must match it unless ``other_account``.
    """

    _BATCH = 2000

    def __init__(
        self,
        path: Path,
        *,
        resume: bool,
        account: Account | None = None,
        command: str = "run",
        other_account: bool = False,
        reopen: bool = False,
    ) -> None:
        self.path = path
        self._reopen = reopen
        try:
            if not resume:
                for p in (path, *(Path(f"{path}{s}") for s in DATABASE_SIDE_SUFFIXES)):
                    p.unlink(missing_ok=True)
            prepare_database(path)  # SQLite follows links: the files are made ours first
        except OSError as exc:
            raise ResultsFileError(
                f"the journal {path} can't be used: {_describe(exc)}",
                hint="choose another place with output",
                param="output",
            ) from exc
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN IMMEDIATE")
            self._migrate()
            if not reopen:
                # Done rows of earlier runs move to `previous` (merged), so this run's
                # `results` starts empty and is keyed by this run's row numbers.
                self._db.execute(
                    "INSERT OR REPLACE INTO previous "  # noqa: S608 - our own constants
                    "SELECT phone, status, sip, http_status, attempts, error FROM results "
                    f"WHERE status IN ({_DONE_SQL})"
                )
                self._db.execute("DELETE FROM results")
                self._db.execute("DELETE FROM changes")
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (os.urandom(16).hex(),)
            )
            self.salt = bytes.fromhex(self.meta("salt") or "")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._close_quietly()
            raise ResultsFileError(
                f"the journal {path} can't be used: {exc}",
                hint="if it is damaged, delete it and run without resume=True",
            ) from exc
        self._pending = 0
        self._in_tx = False
        #: While a run sends: the loop whose turn ends a group of commits (``group_commits``).
        self._group: asyncio.AbstractEventLoop | None = None
        self._commit_due = False  # a commit at the end of this turn is scheduled
        self._waiting: list[asyncio.Future[None]] = []  # requests waiting for their mark
        self._after_commit: Callable[[], None] | None = None
        self.marked = 0  # requests this run marked in doubt (so they may have been sent)
        self._broken: WriteError | None = None
        self._prior_doubt = {r[0] for r in self._db.execute(_PENDING)}
        self._key = b""
        self._present: set[str] = set()  # the account's numbers, as listed so far
        self._listing: str = "none"  # "none" (not listed), "going", "complete", "partial"
        try:
            self._claim(account, command, other_account=other_account, resume=resume)
        except BaseException:
            self._close_quietly()
            raise

    # -- the account --------------------------------------------------------------------
    def _claim(
        self, account: Account | None, command: str, *, other_account: bool, resume: bool
    ) -> None:
        if account is None:
            self._key = self.salt  # a library caller without a key: the salt alone
            return
        self._key = _fingerprint_key(account.api_key, self.salt)
        mine = key_fingerprint(account.api_key, self.salt)
        url, key = self.meta("base_url"), self.meta("account")
        if url is not None and key is not None:
            if (url, key) != (account.url, mine) and not other_account:
                other_key = "" if key == mine else " with another API key"
                raise UsageError(
                    f"the batch in {self.path} was sent to {url}; this run would send to "
                    f"{account.url}{other_key}",
                    hint="other_account goes on anyway, if that is what is meant",
                    param="other_account",
                )
            return
        touched = self._db.execute("SELECT 1 FROM numbers LIMIT 1").fetchone()
        if (resume or self._reopen) and touched and not other_account:
            # a journal of release 2 says no account
            raise UsageError(
                f"the journal {self.path} does not say which account its batch was sent to",
                hint="other_account goes on against this one, if that is what is meant",
                param="other_account",
            )
        if self._reopen:
            return  # another command's look at the batch: it is not claimed for it
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [
                    ("base_url", account.url),
                    ("account", mine),
                    ("command", command),
                    ("started_at", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")),
                ],
            )

    # The account is listed while the run sends (runner._list_account_meanwhile), and a
    # number's first write waits until the list has shown it or has ended (``knows``), so
    # that what ``existed`` records at that write is what the account held before it.
    def listing(self) -> None:
        """The account is being listed from now on (``listed`` pages, then ``listed_all``)."""
        self._listing = "going"

    def listed(self, numbers: Iterable[str]) -> None:
        """The numbers of one page of the account's list."""
        self._present.update(numbers)

    def listed_all(self, *, complete: bool) -> None:
        """The listing ended: with every number (``complete``), or not (a page budget, an
        answer that could not be read, an error: numbers not seen are then UNKNOWN)."""
        self._listing = "complete" if complete else "partial"

    def knows(self, phone: str) -> bool:
        """True when the listing can say whether ``phone`` existed before (or none goes on)."""
        return self._listing != "going" or phone in self._present

    def existed(self, phone: str) -> str:
        """Whether ``phone`` existed before the batch's first write of it: ``ABSENT``,
        ``PRESENT`` or ``UNKNOWN``."""
        hit = self._db.execute("SELECT existed FROM numbers WHERE phone = ?", (phone,)).fetchone()
        if hit is not None and hit[0]:
            return cast(str, hit[0])
        return self._existed_now(phone)

    def _existed_now(self, phone: str) -> str:
        if phone in self._present:
            return PRESENT
        return ABSENT if self._listing == "complete" else UNKNOWN

    # -- resume ---------------------------------------------------------------------------
    def import_previous(self, results: Iterable[RowResult]) -> int:
        """Take the done rows of an earlier results file (when its journal is gone)."""
        rows = [
            (r.phone_number, r.status.value, r.sip_phone_number, r.http_status, r.attempts, r.error)
            for r in results
            if r.status in DONE_STATUSES and r.phone_number
        ]
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO previous VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def done_before(self, phone: str, row: int) -> RowResult | None:
        """The earlier run's result for this number if it is done, renumbered to ``row``."""
        hit = self._db.execute(
            "SELECT status, sip, http_status, attempts, error FROM previous WHERE phone = ?",
            (phone,),
        ).fetchone()
        if hit is None:
            return None
        return RowResult(row, phone, Status(hit[0]), hit[1], hit[2], hit[3], hit[4])

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fingerprints and records from before (resume, undo) ------------------------------
    def fingerprint(self, fields: Mapping[str, str]) -> dict[str, str]:
        """The per-field fingerprint of a row's fields, keyed by this batch's key."""
        return fingerprint(fields, self._key)

    def keep_fingerprint(self, phone: str, fields: dict[str, str]) -> None:
        """Remember the per-field fingerprint of a done row's request.

        Written in the transaction that ``record`` commits with the row's result.
        """
        self._begin()
        self._db.execute(  # one statement: the _upsert and the UPDATE it was before
            "INSERT INTO numbers (phone, fingerprint) VALUES (?, ?) "
            "ON CONFLICT (phone) DO UPDATE SET fingerprint = excluded.fingerprint",
            (phone, json.dumps(fields)),
        )

    def fingerprint_of(self, phone: str) -> dict[str, str] | None:
        hit = self._db.execute(
            "SELECT fingerprint FROM numbers WHERE phone = ?", (phone,)
        ).fetchone()
        if hit is None or hit[0] is None:
            return None
        return cast(dict[str, str], json.loads(hit[0]))

    def keep_before(self, phone: str, record: Record, sent: Record, changed: list[str]) -> None:
        """Durably keep the record as it was before a PATCH, and what the PATCH sends.

        The record is kept once for the batch: a later PATCH of the number (an edited row
        resumed) adds to what was sent and changed, and never replaces the first record.
        A number this batch created keeps none: undo deletes it.
        """
        with self._writing():
            self._begin()
            self._upsert(phone)
            hit = self._db.execute(
                "SELECT sent, changed FROM numbers WHERE phone = ?", (phone,)
            ).fetchone()
            was_sent = json.loads(hit[0]) if hit[0] else {}
            was_changed = json.loads(hit[1]) if hit[1] else []
            self._db.execute(
                "UPDATE numbers SET before = coalesce(before, CASE WHEN created THEN NULL "
                "ELSE ? END), sent = ?, changed = ? WHERE phone = ?",
                (
                    json.dumps(record),
                    json.dumps({**was_sent, **sent}),
                    json.dumps(was_changed + [c for c in changed if c not in was_changed]),
                    phone,
                ),
            )
            self._flush()  # durable before the PATCH leaves

    def before_of(self, phone: str) -> Kept | None:
        """The record before the batch first PATCHed ``phone``, what it sent, the fields."""
        hit = self._db.execute(
            "SELECT before, sent, changed FROM numbers WHERE phone = ? AND before IS NOT NULL",
            (phone,),
        ).fetchone()
        if hit is None:
            return None
        return json.loads(hit[0]), json.loads(hit[1] or "{}"), json.loads(hit[2] or "[]")

    def created(self, phone: str, sent: Mapping[str, str | None]) -> None:
        """This batch created ``phone`` with ``sent`` (its visible fields are kept, to see
        later whether the number still shows them; the first time counts).  In
        ``record``'s transaction."""
        visible = {k: v for k, v in sent.items() if k not in SECRET_FIELDS}
        self._begin()
        self._db.execute(  # the first is kept: later PATCHes of the batch add to ``sent``
            "INSERT INTO numbers (phone, sent, created) VALUES (?, ?, 1) "
            "ON CONFLICT (phone) DO UPDATE SET "
            "sent = CASE WHEN created THEN sent ELSE excluded.sent END, created = 1",
            (phone, json.dumps(visible)),
        )

    # -- the submit.JournalProtocol ------------------------------------------------------
    def sending(self, job: Job) -> None:
        """Durably mark the number in doubt before a request that may store it; at the
        batch's first write of it, what the listing said of it before."""
        phone = job.phone_number
        existed = self._existed_now(phone)
        with self._writing():
            self._begin()
            self._db.execute(  # one statement: the INSERT OR IGNORE and UPDATE it was before
                "INSERT INTO numbers (phone, existed, pending) VALUES (?, ?, ?) "
                "ON CONFLICT (phone) DO UPDATE SET pending = excluded.pending, "
                "existed = coalesce(existed, excluded.existed)",
                (phone, existed, job.action.value),
            )
            # one commit: this mark, and the rows finished since the last one (while a
            # run sends, those of this turn of the loop: ``marks_durable``)
            self._commit_soon()
        self.marked += 1

    async def marks_durable(self) -> None:
        """Returns once every in-doubt mark made so far is committed: a request may leave.

        Without ``group_commits`` the marks are committed as they are made, and this
        returns at once.  Raises the ``WriteError`` of a commit that failed.
        """
        if self._broken is not None:
            raise self._broken
        if not self._in_tx:
            return
        if self._group is None:
            with self._writing():
                self._flush()
            return
        waiter = self._group.create_future()
        self._waiting.append(waiter)
        await waiter

    def group_commits(
        self,
        loop: asyncio.AbstractEventLoop | None,
        *,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """Commit at the end of each turn of ``loop`` (None: at once, as before) what the
        turn wrote: the finished rows and the in-doubt marks (see the module docstring).
        ``after_commit`` is called after each commit (the results file's rows then)."""
        with self._writing():
            self._flush()
        self._group = loop
        self._after_commit = after_commit

    def _commit_soon(self) -> None:
        if self._group is None:
            self._flush()
        elif not self._commit_due:
            self._commit_due = True
            self._group.call_soon(self._commit_turn)

    def _commit_turn(self) -> None:
        """The end of a turn of the loop: commit what it wrote, let its requests leave."""
        self._commit_due = False
        try:
            with self._writing():
                self._flush()
        except WriteError as exc:
            # Nobody called this: the run learns of it from its next write of the ledger
            # (every one raises it now), and the requests waiting for their marks from it.
            if self._broken is None:
                self._broken = exc
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_exception(exc)

    def in_doubt(self, job: Job) -> bool:
        """True when an earlier run sent this number and got no definitive answer."""
        return job.phone_number in self._prior_doubt

    def was_sent(self, job: Job) -> bool:
        """True when a request that may store this number left without a definitive
        answer (this run or an earlier one): it may have been stored."""
        self._flush()
        query = "SELECT 1 FROM numbers WHERE phone = ? AND pending IS NOT NULL"
        return self._db.execute(query, (job.phone_number,)).fetchone() is not None

    # -- undo -----------------------------------------------------------------------------
    def facts(self) -> dict[str, NumberFacts]:
        """Every number the batch touched, with what the ledger knows of it."""
        self._flush()
        query = "SELECT phone, status, created, before, sent, changed, pending, undone FROM numbers"
        return {
            phone: NumberFacts(
                phone,
                status,
                bool(created),
                json.loads(before) if before else None,
                json.loads(sent) if sent else {},
                json.loads(changed) if changed else [],
                pending,
                undone,
            )
            for phone, status, created, before, sent, changed, pending, undone in self._db.execute(
                query
            )
        }

    def is_created(self, phone: str) -> bool:
        """True when this batch created ``phone``."""
        hit = self._db.execute("SELECT created FROM numbers WHERE phone = ?", (phone,)).fetchone()
        return bool(hit and hit[0])

    def undone_of(self, phone: str) -> str | None:
        """What an undo of the batch did to ``phone`` (``deleted``, ...), if it did."""
        hit = self._db.execute("SELECT undone FROM numbers WHERE phone = ?", (phone,)).fetchone()
        return None if hit is None else cast("str | None", hit[0])

    def finish_undo(self) -> bool:
        """An undo of the batch ended with every row it listed put back: recorded (a later
        undo sends nothing) only when no number the batch created or changed, or may have
        (a write in doubt), is left as the batch left it.  A results file with rows
        removed is not the whole batch (docs/contract.md, "A batch is a ledger"): its
        undo leaves the batch open, and an undo of the whole file still undoes the rest.
        True when recorded."""
        self._flush()
        left = self._db.execute(
            "SELECT 1 FROM numbers WHERE undone IS NULL AND "
            "(status IN (?, ?) OR pending IS NOT NULL) LIMIT 1",
            (Status.IMPORTED.value, Status.UPDATED.value),
        ).fetchone()
        if left is not None:
            return False
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        with self._writing(), self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('undo_finished', ?)", (stamp,))
        return True

    def mark_undone(self, phone: str, what: str) -> None:
        """An undo put ``phone`` back as it was before the batch (``what`` it did)."""
        with self._writing():
            self._db.execute("UPDATE numbers SET undone = ? WHERE phone = ?", (what, phone))

    # -- results --------------------------------------------------------------------------
    def record(
        self,
        result: RowResult,
        *,
        durable: bool = True,
        fingerprint: dict[str, str] | None = None,
        created: Mapping[str, str | None] | None = None,
    ) -> None:
        """Put a row's result into the open transaction (committed as ``durable`` says).

        ``fingerprint`` and ``created``: what ``keep_fingerprint`` and ``created`` would
        write for the row's number, written by the statement that sets its status (one
        statement where three were; the same row in ``numbers`` after it).
        """
        with self._writing():
            sent = durable and result.status not in (Status.NOT_ATTEMPTED, Status.INVALID)
            if sent and fingerprint is not None:
                self._record(result, durable=True, fingerprint=fingerprint, created=created)
                return
            if fingerprint is not None:
                self.keep_fingerprint(result.phone_number, fingerprint)
            if created is not None:
                self.created(result.phone_number, created)
            self._record(result, durable=durable)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write (a full disk) is a ``WriteError``: the run can't go on.

        After one, every later write raises that same error (SQLite rolled back what was
        pending, so nothing more is recorded; the first cause is the one to report).
        """
        if self._broken is not None:
            raise self._broken
        try:
            yield
        except sqlite3.Error as exc:
            self._broken = WriteError(
                f"can't write the journal {self.path}: {exc}",
                hint="free some space, then run again with resume=True",
            )
            raise self._broken from exc

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def _upsert(self, phone: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO numbers (phone) VALUES (?)", (phone,))

    def _record(
        self,
        result: RowResult,
        *,
        durable: bool,
        fingerprint: dict[str, str] | None = None,
        created: Mapping[str, str | None] | None = None,
    ) -> None:
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                result.row,
                result.phone_number,
                result.status.value,
                result.sip_phone_number,
                result.http_status,
                result.attempts,
                result.error,
            ),
        )
        if result.changes:
            self._db.execute(
                "INSERT OR REPLACE INTO changes VALUES (?, ?)", (result.row, result.changes)
            )
        if durable and result.status not in (Status.NOT_ATTEMPTED, Status.INVALID):
            # A row that was sent: its status for the batch, and whether a write of it is
            # still without an answer (the in-doubt mark stays, or goes).
            if fingerprint is not None:
                self._done_number(result, fingerprint, created)
            else:
                self._db.execute(
                    "UPDATE numbers SET status = ?, "
                    "pending = CASE WHEN ? THEN coalesce(pending, 'import') END "
                    "WHERE phone = ?",
                    (result.status.value, result.in_doubt, result.phone_number),
                )
        self._pending += 1
        if self._pending >= self._BATCH:
            self._flush()
        elif durable:
            self._commit_soon()

    def _done_number(
        self,
        result: RowResult,
        fingerprint: dict[str, str],
        created: Mapping[str, str | None] | None,
    ) -> None:
        """A done row's number in one statement: its fingerprint (``keep_fingerprint``),
        what this batch created it with (``created``: the first time counts), its status
        and in-doubt mark (``_record``), as those three statements in turn leave it."""
        doubt = result.in_doubt
        if created is None:
            self._db.execute(
                "INSERT INTO numbers (phone, fingerprint, status, pending) "
                "VALUES (?, ?, ?, CASE WHEN ? THEN 'import' END) "
                "ON CONFLICT (phone) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "status = excluded.status, "
                "pending = CASE WHEN ? THEN coalesce(pending, 'import') END",
                (result.phone_number, json.dumps(fingerprint), result.status.value, doubt, doubt),
            )
            return
        visible = {k: v for k, v in created.items() if k not in SECRET_FIELDS}
        self._db.execute(
            "INSERT INTO numbers (phone, fingerprint, sent, created, status, pending) "
            "VALUES (?, ?, ?, 1, ?, CASE WHEN ? THEN 'import' END) "
            "ON CONFLICT (phone) DO UPDATE SET fingerprint = excluded.fingerprint, "
            "sent = CASE WHEN created THEN sent ELSE excluded.sent END, created = 1, "
            "status = excluded.status, "
            "pending = CASE WHEN ? THEN coalesce(pending, 'import') END",
            (
                result.phone_number,
                json.dumps(fingerprint),
                json.dumps(visible),
                result.status.value,
                doubt,
                doubt,
            ),
        )

    def _flush(self) -> None:
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False
            self._pending = 0
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)
        if self._after_commit is not None:
            self._after_commit()

    def results_in_order(self) -> Iterator[RowResult]:
        with self._writing():
            self._flush()
        cursor = self._db.execute(
            "SELECT r.row, phone, status, sip, http_status, attempts, error, c.text "
            "FROM results r LEFT JOIN changes c ON c.row = r.row ORDER BY r.row"
        )
        for row, phone, status, sip, http, attempts, error, changes in cursor:
            yield RowResult(row, phone, Status(status), sip, http, attempts, error, changes or "")

    def counts(self) -> dict[str, int]:
        with self._writing():
            self._flush()
        query = "SELECT status, count(*) FROM results GROUP BY status"
        return {status: n for status, n in self._db.execute(query)}

    def close(self) -> None:
        try:
            with self._writing():
                self._flush()
        finally:
            self._db.close()

    def _close_quietly(self) -> None:
        try:
            if hasattr(self, "_db"):
                self._db.close()
        except sqlite3.Error:  # pragma: no cover - closing what failed to open
            pass

    # -- inside ---------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value of the batch's ``meta`` table (``started_at``, ``undo_finished`` ...)."""
        hit = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if hit is None else cast(str, hit[0])

    def _migrate(self) -> None:
        """Fold a release-2 journal's ``in_doubt``, ``before`` and ``fingerprints`` into
        ``numbers``.  Its fingerprints were keyed by the salt alone: they are dropped (the
        rows they stood for count as unchanged), and the account is unknown."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if not tables & set(_OLD_TABLES):
            return
        if "in_doubt" in tables:
            self._db.execute(
                "INSERT OR IGNORE INTO numbers (phone, pending) SELECT phone, 'import' "
                "FROM in_doubt"
            )
        if "before" in tables:
            self._db.execute("INSERT OR IGNORE INTO numbers (phone) SELECT phone FROM before")
            self._db.execute(
                "UPDATE numbers SET before = (SELECT record FROM before b WHERE b.phone = "
                "numbers.phone), sent = (SELECT sent FROM before b WHERE b.phone = "
                "numbers.phone), changed = (SELECT changed FROM before b WHERE b.phone = "
                "numbers.phone) WHERE phone IN (SELECT phone FROM before)"
            )
        for table in ("previous", "results"):  # what the release-2 batch did, by number
            self._db.execute(
                f"INSERT OR IGNORE INTO numbers (phone) SELECT phone FROM {table} "  # noqa: S608
                "WHERE status IN ('imported', 'updated')"
            )
            self._db.execute(
                f"UPDATE numbers SET status = (SELECT status FROM {table} r "  # noqa: S608
                "WHERE r.phone = numbers.phone), created = (SELECT status = 'imported' "
                f"FROM {table} r WHERE r.phone = numbers.phone) WHERE phone IN (SELECT "
                f"phone FROM {table} WHERE status IN ('imported', 'updated'))"
            )
        for table in _OLD_TABLES:
            if table in tables:
                self._db.execute(f"DROP TABLE {table}")


_PENDING = "SELECT phone FROM numbers WHERE pending IS NOT NULL"


def batch_started(path: Path) -> str | None:
    """When the batch at ``path`` started (``20261202T021500Z``), and whether it holds
    writes: None when there is no batch worth keeping there (no journal, or one that
    never marked a write)."""
    if not path.exists():
        return None
    try:
        with closing(sqlite3.connect(path)) as db:  # closed plainly: no -wal/-shm left
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if "numbers" in tables:
                wrote = db.execute(
                    "SELECT 1 FROM numbers WHERE existed IS NOT NULL OR created "
                    "OR pending IS NOT NULL "
                    "OR before IS NOT NULL LIMIT 1"
                ).fetchone()
            else:
                wrote = any(
                    db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()  # noqa: S608
                    for t in ("in_doubt", "before")
                    if t in tables
                ) or (
                    "results" in tables
                    and db.execute(
                        "SELECT 1 FROM results WHERE status IN ('imported', 'updated', "
                        "'deleted', 'restored') LIMIT 1"
                    ).fetchone()
                )
            if not wrote:
                return None
            hit = (
                db.execute("SELECT value FROM meta WHERE key = 'started_at'").fetchone()
                if "meta" in tables
                else None
            )
    except sqlite3.Error:
        return None  # not a journal we can read: it is replaced as before
    if hit is not None:
        return cast(str, hit[0])
    stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return stamp.strftime("%Y%m%dT%H%M%SZ")


def unfinished_rows(path: Path) -> int:
    """How many rows the run that left the journal at ``path`` did not finish: never sent
    (``not_attempted``) or cut in flight (a write still pending).  0 without a readable
    journal.  Asked before a run without resume starts a new batch there, so that its
    summary can say so.

    Not opened read-only: a read-only connection to a WAL database leaves its ``-wal``
    and ``-shm`` files behind, where closing a plain one removes them.
    """
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path)) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            (left,) = db.execute(
                "SELECT count(*) FROM results WHERE status = 'not_attempted'"
            ).fetchone()
            pending = (
                "SELECT count(*) FROM numbers WHERE pending IS NOT NULL"
                if "numbers" in tables
                else "SELECT count(*) FROM in_doubt"
            )
            (doubt,) = db.execute(pending).fetchone()
    except sqlite3.Error:
        return 0
    return int(left) + int(doubt)


def _describe(exc: OSError) -> str:
    from .outputs import describe

    return describe(exc)
