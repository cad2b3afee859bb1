"""The data that flows between the stages, and the table of the API's fields.

``RawRow`` (load) -> ``Job`` or an ``invalid`` ``RowResult`` (validate) -> ``RowResult``
(submit) -> results file (record); the dry run's ``Chunk`` -> ``ResultColumns``.  Python
names are snake_case.  ``FIELDS`` lists the API's fields in the order of docs/contract.md
("Fields"); the pydantic models of the API's request and answer are built from it in
payloads.py, which this module does not import (a dry run of good rows never loads
pydantic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:  # pydantic loads only where a row is validated by a model or sent
    from .payloads import ImportRequest


E164 = r"^\+[1-9][0-9]{6,14}$"
E164_RE = re.compile(E164)

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SIP_URI_RE = re.compile(
    r"^(?:sips?:)?"  # optional scheme
    r"(?:[^@\s:;]+(?::[^@\s;]*)?@)?"  # optional user[:password]@
    rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"  # host name, IPv4 or [IPv6]
    r"(?::[0-9]{1,5})?"  # optional port
    r"(?:;[^\s;=]+(?:=[^\s;]*)?)*$"  # optional ;params
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One API field: its JSON name, Python name, whether required, and max length.

    ``patch`` is its name in a PATCH body when that differs from ``json``.
    """

    json: str
    snake: str
    words: str
    required: bool
    max_length: int
    phone: bool = False
    secret: bool = False
    patch: str = ""

    @property
    def patch_json(self) -> str:
        """Its name in a PATCH body."""
        return self.patch or self.json

    def rules(self) -> dict[str, Any]:
        """Its pydantic constraints: E.164 for a phone number, else a length (at least 1
        when required; an optional field's empty value means absent)."""
        if self.phone:
            return {"pattern": E164}
        if self.required:
            return {"min_length": 1, "max_length": self.max_length}
        return {"max_length": self.max_length}


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("phoneNumber", "phone_number", "Phone Number", True, 16, phone=True),
    FieldSpec("trunkUsername", "trunk_username", "Trunk Username", True, 128),
    FieldSpec("trunkPassword", "trunk_password", "Trunk Password", True, 128, secret=True),
    FieldSpec(
        "terminationSipURI",
        "termination_sip_uri",
        "Termination SIP URI",
        True,
        253,
        patch="terminationSipUri",
    ),
    FieldSpec("friendlyName", "friendly_name", "Friendly Name", False, 128),
    FieldSpec("inboundAgentId", "inbound_agent_id", "Inbound Agent ID", False, 64),
    FieldSpec("outboundAgentId", "outbound_agent_id", "Outbound Agent ID", False, 64),
    FieldSpec(
        "outboundPhoneNumber",
        "outbound_phone_number",
        "Outbound Phone Number",
        False,
        16,
        phone=True,
    ),
)
FIELD_BY_JSON: dict[str, FieldSpec] = {f.json: f for f in FIELDS}
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.json for f in FIELDS if f.required)
OPTIONAL_FIELDS: tuple[str, ...] = tuple(f.json for f in FIELDS if not f.required)
#: The hint of a message about a name that is not a field.
FIELDS_HINT = "fields: " + ", ".join(f.json for f in FIELDS)
#: The pydantic constraints of every field, by JSON name (``ImportRequest``, and the
#: sandbox's ``PatchRequest``, are built from them).
RULES: dict[str, dict[str, Any]] = {f.json: f.rules() for f in FIELDS}
#: The fields a PATCH may change (every one but the number): JSON name -> PATCH body name.
PATCH_NAMES: dict[str, str] = {f.json: f.patch_json for f in FIELDS if f.json != "phoneNumber"}

OnExisting = Literal["skip", "update", "fail"]
#: A number's record as the API answers it, by JSON name (None: the field is empty).
Record = dict[str, str | None]
#: What a journal keeps before a PATCH: the record as it was, the body sent, the fields
#: changed.
Kept = tuple[Record, Record, list[str]]


class Status(StrEnum):
    """The ``status`` column of the results file (docs/contract.md, "The results file")."""

    IMPORTED = "imported"
    ALREADY_EXISTS = "already_exists"
    UPDATED = "updated"
    INVALID = "invalid"
    FAILED = "failed"
    NOT_ATTEMPTED = "not_attempted"
    VALID = "valid"
    # plan, update and undo (docs/contract.md)
    UNCHANGED = "unchanged"
    NOT_FOUND = "not_found"
    DELETED = "deleted"
    RESTORED = "restored"
    WOULD_IMPORT = "would_import"
    WOULD_UPDATE = "would_update"
    WOULD_DELETE = "would_delete"
    WOULD_RESTORE = "would_restore"
    # undo, against the batch's ledger (docs/contract.md, "A batch is a ledger")
    CHANGED_SINCE = "changed_since"
    ALREADY_UNDONE = "already_undone"
    SKIPPED = "skipped"


#: Statuses that mean "this number is done": --resume skips them.
DONE_STATUSES = frozenset(
    {
        Status.IMPORTED,
        Status.ALREADY_EXISTS,
        Status.UPDATED,
        Status.UNCHANGED,
        Status.DELETED,
        Status.RESTORED,
    }
)
#: The statuses that allow exit 0, per command.
OK_BY_COMMAND: dict[str, frozenset[Status]] = {
    "run": frozenset(
        {Status.IMPORTED, Status.ALREADY_EXISTS, Status.UPDATED, Status.UNCHANGED, Status.VALID}
    ),
    "plan": frozenset(
        {Status.WOULD_IMPORT, Status.ALREADY_EXISTS, Status.WOULD_UPDATE, Status.UNCHANGED}
    ),
    "update": frozenset({Status.UPDATED, Status.UNCHANGED, Status.VALID}),
    "undo": frozenset(
        {
            Status.DELETED,
            Status.RESTORED,
            Status.NOT_FOUND,
            Status.WOULD_DELETE,
            Status.WOULD_RESTORE,
            Status.ALREADY_UNDONE,
        }
    ),
}
OK_STATUSES = OK_BY_COMMAND["run"] | OK_BY_COMMAND["plan"] | OK_BY_COMMAND["undo"]
OK_STATUSES |= OK_BY_COMMAND["update"]


class Action(StrEnum):
    """What a job asks of the API (the "decide" step picks the request from it)."""

    IMPORT = "import"  # POST; an existing number goes by --on-existing
    UPDATE = "update"  # GET, then PATCH of only what differs (or nothing)
    DELETE = "delete"  # DELETE (undo of an import)
    RESTORE = "restore"  # PATCH back to the record from before (undo of an update)


#: Text fields of an answer longer than this are cut (a record's fields are short).
ANSWER_TEXT_LIMIT = 256


def same_number(answered: str, sent: str) -> bool:
    """True when an answer's number is the one sent, however the API formats it
    (``+1 (415) 555-2671`` is ``+14155552671``); compared by digits."""
    digits = "".join(ch for ch in answered if ch in "0123456789")
    return bool(digits) and digits == "".join(ch for ch in sent if ch in "0123456789")


class Chunk(NamedTuple):
    """Data rows column-wise, as the dry run reads them (``Table.chunks()``).

    ``rows`` are the spreadsheet row numbers; ``cells`` maps each matched field (JSON
    name) to its trimmed cells, one per row, ``""`` when empty; ``problems`` holds each
    row's ``RawRow.problem`` (``""`` for none), or is None when no row has one.
    """

    rows: list[int]
    cells: dict[str, list[str]]
    problems: list[str] | None = None

    def raw_row(self, i: int) -> RawRow:
        """The ``i``-th row as ``RawRow`` (its non-empty cells only)."""
        values = {name: cells[i] for name, cells in self.cells.items() if cells[i]}
        return RawRow(self.rows[i], values, self.problems[i] if self.problems else "")


class ResultColumns(NamedTuple):
    """Results-file lines column-wise, in the file's column order (the dry run's output).

    ``row`` and ``attempts`` are numbers; the other columns are text, ``""`` for none,
    ``status`` the ``Status`` value.
    """

    row: list[int]
    phone_number: list[str]
    status: list[str]
    sip_phone_number: list[str]
    http_status: list[str]
    attempts: list[int]
    error: list[str]

    def results(self) -> list[RowResult]:
        """The same lines as ``RowResult`` values."""
        return [
            RowResult(
                row,
                phone,
                Status(status),
                sip_phone_number=sip,
                http_status=int(http) if http else None,
                attempts=attempts,
                error=error,
            )
            for row, phone, status, sip, http, attempts, error in zip(*self, strict=True)
        ]


class ResultLines(NamedTuple):
    """Results-file lines already written out (``text``, each line ending in ``\n``) and
    how many rows of each status they hold: the dry run's second part (``split.py``)."""

    text: str
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as text: its spreadsheet row number and its non-empty cells by field.

    ``values`` maps JSON field names (``phoneNumber``) to trimmed cell text; an empty
    cell is absent.  ``row`` is the number a spreadsheet shows (the header is row 1).
    ``problem`` says why the row as a whole could not be read (too many cells, a cell
    too large, bytes not in the file's encoding): such a row is invalid, never sent.
    """

    row: int
    values: dict[str, str]
    problem: str = ""

    def __repr__(self) -> str:
        shown = {k: ("**********" if k == "trunkPassword" else v) for k, v in self.values.items()}
        extra = f", problem={self.problem!r}" if self.problem else ""
        return f"RawRow(row={self.row}, values={shown}{extra})"


@dataclass(frozen=True, slots=True, init=False)
class Job:
    """A validated row, ready to send.

    ``importable`` is the full import body when the row has every field needed to create
    the number (``request`` is that body, and an error without it); ``wanted`` is every
    field the row gives (JSON names, the number included), which is all an update needs.
    ``before`` is the record to put back (``Action.RESTORE``); ``changed`` the fields the
    earlier run changed; ``expected`` what the batch left in the account (the visible
    fields it created or set), which undo checks the record still shows before it writes.
    """

    row: int
    importable: ImportRequest | None
    action: Action
    wanted: dict[str, str] = field(repr=False)
    number: str
    before: dict[str, str | None]
    changed: tuple[str, ...]
    expected: dict[str, str | None] | None

    def __init__(
        self,
        row: int,
        request: ImportRequest | None = None,
        action: Action = Action.IMPORT,
        *,
        wanted: dict[str, str] | None = None,
        number: str = "",
        before: dict[str, str | None] | None = None,
        changed: tuple[str, ...] = (),
        expected: dict[str, str | None] | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "row", row)
        put(self, "importable", request)
        put(self, "action", action)
        put(self, "wanted", wanted or {})
        put(self, "number", number)
        put(self, "before", before or {})
        put(self, "changed", changed)
        put(self, "expected", expected)

    @property
    def request(self) -> ImportRequest:
        """The import body; only for a row that has every field needed to create it."""
        if self.importable is None:
            raise ValueError(f"row {self.row} lacks a field needed to import a new number")
        return self.importable

    @property
    def phone_number(self) -> str:
        if self.importable is not None:
            return self.importable.phone_number
        return self.number or self.wanted.get("phoneNumber", "")

    @property
    def secret(self) -> str | None:
        """The trunk password the row gives (to scrub from messages), if any."""
        if self.importable is not None:
            return self.importable.trunk_password.get_secret_value()
        return self.wanted.get("trunkPassword")

    def fields(self) -> dict[str, str]:
        """Every field the row gives, JSON names (the full request's, or ``wanted``)."""
        if self.wanted:
            return self.wanted
        if self.importable is not None:
            return self.importable.to_json()
        return {"phoneNumber": self.phone_number}

    def missing_for_create(self) -> list[str]:
        """The required fields this row lacks to import a new number."""
        given = self.fields()
        return [f for f in REQUIRED_FIELDS if f not in given]


@dataclass(frozen=True, slots=True)
class RowResult:
    """One line of the results file (docs/contract.md, "The results file")."""

    row: int
    phone_number: str
    status: Status
    sip_phone_number: str = ""
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    changes: str = ""
    #: A write of this row left and got no definitive answer: it may have been applied,
    #: and the journal keeps it in doubt for ``--resume`` (not a column of the file).
    in_doubt: bool = False


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What an answer's rate-limit headers said, in any of the forms APIs use.

    ``limit`` is the announced quota, ``remaining`` what is left of it and ``reset`` the
    seconds from now until it is whole again (a window's end, or a bucket full again).
    ``window`` is the quota's period in seconds when the API names it (the IETF draft's
    ``RateLimit-Policy: 100;w=60``); without it the period is unknown (often a second).
    They are hints: the rate controller checks them against what the answers do.
    """

    limit: float | None = None
    remaining: int | None = None
    reset: float | None = None
    window: float | None = None

    @property
    def per_second(self) -> float | None:
        """The quota per second when the period is named, else None."""
        if self.limit is None or not self.window or self.window <= 0:
            return None
        return self.limit / self.window


@dataclass(frozen=True, slots=True)
class FailureLimit:
    """When to stop sending because rows keep failing: a count, or a share of answers.

    ``count``: stop once that many rows ended ``failed``.  ``share`` (0-1): stop once that
    share of the rows answered so far ended ``failed``, judged only after ``min_rows``.
    """

    count: int | None = None
    share: float | None = None
    min_rows: int = 20

    def __post_init__(self) -> None:
        if (self.count is None) == (self.share is None):
            raise ValueError("give exactly one of count and share")
        if self.count is not None and self.count < 1:
            raise ValueError("the failure count must be at least 1")
        if self.share is not None and not 0.0 < self.share <= 1.0:
            raise ValueError("the failure share must be above 0 and at most 1 (100%)")

    def tripped(self, failed: int, answered: int) -> bool:
        """True when ``failed`` of ``answered`` rows reach the limit."""
        if self.count is not None:
            return failed >= self.count
        assert self.share is not None
        return answered >= self.min_rows and failed >= self.share * answered

    def describe(self) -> str:
        if self.count is not None:
            return f"{self.count} failed row(s)"
        assert self.share is not None
        return f"{self.share * 100:g}% of the rows answered failed (after {self.min_rows})"
