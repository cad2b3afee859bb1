"""A done row's number in one statement: ``Journal.record(result, fingerprint=, created=)``
leaves the ledger's ``numbers`` row as ``keep_fingerprint``, ``created`` and ``record``
did one after the other, whatever the number's state before (absent, marked in doubt,
created by an earlier run of the batch, listed as existing), and sends one statement."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bulk_import.ledger import Journal
from bulk_import.models import Action, Job, RowResult, Status

NUMBER = "+14155552671"
FIELDS = {
    "phoneNumber": NUMBER,
    "trunkUsername": "user",
    "trunkPassword": "p,\"';!w",
    "terminationSipURI": "sip.telnyx.com",
    "friendlyName": "Front desk",
}
EARLIER = {"phoneNumber": NUMBER, "friendlyName": "Earlier"}


def _before(journal: Journal, state: str) -> None:
    """The number's row before the result, as the batch may have left it."""
    if state == "pending":
        journal.sending(Job(7, None, Action.IMPORT, number=NUMBER))
    elif state == "pending-patch":  # a PATCH in doubt: its mark is kept as it is
        journal.sending(Job(7, None, Action.UPDATE, number=NUMBER))
    elif state == "created":
        journal.created(NUMBER, EARLIER)
        journal.keep_fingerprint(NUMBER, {"phoneNumber": "old"})
    elif state == "existed":
        journal.listed([NUMBER])
        journal.listed_all(complete=True)
        journal.sending(Job(7, None, Action.IMPORT, number=NUMBER))


def _numbers(path: Path, fingerprint: dict[str, str]) -> list[dict[str, object]]:
    """Every row of ``numbers``; this journal's fingerprint (its key is its own) named."""
    with sqlite3.connect(path) as db:
        cursor = db.execute("SELECT * FROM numbers ORDER BY phone")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
    for row in rows:
        if row["fingerprint"] == json.dumps(fingerprint):
            row["fingerprint"] = "this row's"
    return rows


@pytest.mark.parametrize("state", ["absent", "pending", "pending-patch", "created", "existed"])
@pytest.mark.parametrize("status", [Status.IMPORTED, Status.ALREADY_EXISTS, Status.UPDATED])
@pytest.mark.parametrize("in_doubt", [False, True])
def test_one_statement_leaves_the_row_the_three_did(
    tmp_path: Path, state: str, status: Status, in_doubt: bool
) -> None:
    result = RowResult(7, NUMBER, status, http_status=201, attempts=1, in_doubt=in_doubt)
    created = FIELDS if status is Status.IMPORTED else None
    rows = []
    for way in ("three", "one"):
        path = tmp_path / f"{way}.csv.journal"
        with Journal(path, resume=False) as journal:
            _before(journal, state)
            fingerprint = journal.fingerprint(FIELDS)
            statements: list[str] = []
            journal._db.set_trace_callback(statements.append)
            if way == "three":
                journal.keep_fingerprint(NUMBER, fingerprint)
                if created is not None:
                    journal.created(NUMBER, created)
                journal.record(result)
            else:
                journal.record(result, fingerprint=fingerprint, created=created)
            journal._db.set_trace_callback(None)
            writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE")]
            assert len(writes) == (2 if way == "one" else 3 + (created is not None))
        rows.append(_numbers(path, fingerprint))
    assert rows[0] == rows[1]
    (row,) = rows[1]
    assert (row["phone"], row["status"], row["fingerprint"]) == (NUMBER, status.value, "this row's")
