"""decide: what one row asks of the account, as plain data (no HTTP here).

Every command is one pipeline (docs/architecture.md): rows -> decide -> act -> record.
This module is the "decide" step's pure part: given what a row wants and the record the
account holds, which fields differ (``diff``), how that reads in the results file's
``changes`` column (``describe``), the PATCH body that makes the account match (``patch_body``),
the PATCH body that puts an earlier record back (``restore_body``), and the fingerprint of a
row's request kept in the journal so that ``--resume`` notices an edited row
(``fingerprint``/``changed_fields``).

Records use the API's JSON names (``terminationSipURI``); a PATCH body spells that field
``terminationSipUri``.  The trunk credentials are never returned by the API, so they cannot
be compared: a row that gives the password always counts it as a change, written
``trunkPassword: (changed)``, and a username is compared only when the record has one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .models import FIELD_BY_JSON, FIELDS, PATCH_NAMES, Record

if TYPE_CHECKING:
    from .payloads import PhoneNumberRecord

#: The fields an update may change (every field but the number), in field order.
CHANGEABLE: tuple[str, ...] = tuple(PATCH_NAMES)
SECRET_FIELDS = frozenset(f.json for f in FIELDS if f.secret)


@dataclass(frozen=True, slots=True)
class Change:
    """One field that differs: its old value in the account and the row's new value."""

    field: str
    old: str | None
    new: str | None
    #: False when the account does not return this field (its old value is unknown)
    known: bool = True

    def text(self) -> str:
        if self.field in SECRET_FIELDS:
            return f"{self.field}: (changed)"
        old = _shown(self.old) if self.known else "(unknown)"
        return f"{self.field}: {old} -> {_shown(self.new)}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to send for one row: the action's body, what it changes, the record before."""

    changes: tuple[Change, ...] = ()
    body: dict[str, str | None] = field(default_factory=dict, repr=False)
    before: Record = field(default_factory=dict)

    @property
    def changes_text(self) -> str:
        return describe(self.changes)


def record_fields(record: PhoneNumberRecord | Mapping[str, object] | None) -> Record:
    """A record as ``{JSON field name: value}`` (the number under ``phoneNumber``)."""
    if record is None:
        return {}
    if isinstance(record, Mapping):
        data: Mapping[str, object] = record
    else:  # a PhoneNumberRecord (not imported here: pydantic loads only where needed)
        data = record.model_dump(by_alias=True)
    out: Record = {}
    for name in CHANGEABLE:
        if name in data:
            value = data[name]
            out[name] = None if value is None else str(value)
    active = data.get("active")
    if isinstance(active, bool):
        out["active"] = "true" if active else "false"
    number = data.get("sipPhoneNumber", data.get("phoneNumber"))
    if number is not None:
        out["phoneNumber"] = str(number)
    return out


def diff(wanted: Mapping[str, str], record: Record) -> tuple[Change, ...]:
    """The fields ``wanted`` gives whose value differs from ``record``, in field order.

    A secret field is always a change; a field the record does not carry at all (the
    API does not return it, like the trunk username) counts as a change too.
    """
    changes: list[Change] = []
    for name in CHANGEABLE:
        if name not in wanted:
            continue
        new = wanted[name]
        if name in SECRET_FIELDS:
            changes.append(Change(name, None, new))
        elif name not in record:
            changes.append(Change(name, None, new, known=False))
        elif record[name] != new:
            changes.append(Change(name, record[name], new))
    return tuple(changes)


def describe(changes: tuple[Change, ...] | list[Change]) -> str:
    """The ``changes`` cell: ``field: 'old' -> 'new'`` joined by ``; ``."""
    return "; ".join(c.text() for c in changes)


def decide_update(wanted: Mapping[str, str], record: Record) -> Decision:
    """The PATCH that makes ``record`` hold what ``wanted`` gives (empty body: nothing)."""
    changes = diff(wanted, record)
    body: dict[str, str | None] = {PATCH_NAMES[c.field]: c.new for c in changes}
    return Decision(changes=changes, body=body, before=dict(record))


def restore_body(before: Record, changed: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """The PATCH body that puts ``before``'s values of the ``changed`` fields back.

    A field whose old value was never known (a secret, or one the API does not return)
    can't be put back and is left out (``not_restorable``); a field the record had as
    empty is sent as ``null`` (cleared).
    """
    return {
        PATCH_NAMES[name]: before[name]
        for name in changed
        if name in PATCH_NAMES and name not in not_restorable(before, changed)
    }


def not_restorable(before: Record, changed: tuple[str, ...] | list[str]) -> list[str]:
    """The changed fields whose old value is unknown: secrets, and fields not returned."""
    return [name for name in changed if name in SECRET_FIELDS or name not in before]


def matches_body(record: Record, body: Mapping[str, str | None]) -> bool:
    """True when ``record`` holds every value of a PATCH ``body`` (secrets can't be seen)."""
    by_patch_name = {v: k for k, v in PATCH_NAMES.items()}
    for patch_name, value in body.items():
        name = by_patch_name.get(patch_name, patch_name)
        if name in SECRET_FIELDS or name not in FIELD_BY_JSON:
            continue
        if name not in record:
            continue  # the API does not return it: nothing to compare
        if record.get(name) != value:
            return False
    return True


def drift(expected: Mapping[str, str | None], record: Record) -> tuple[Change, ...]:
    """What changed in ``record`` since the batch left it as ``expected`` (its visible
    fields, JSON or PATCH names): each ``Change`` goes from the batch's value to today's.
    Fields the record does not carry, and secrets, can't be compared and are skipped."""
    by_patch_name = {v: k for k, v in PATCH_NAMES.items()}
    changes: list[Change] = []
    for given, value in expected.items():
        name = by_patch_name.get(given, given)
        if name in SECRET_FIELDS or name not in FIELD_BY_JSON or name not in record:
            continue
        if record.get(name) != value:
            changes.append(Change(name, value, record.get(name)))
    order = {f.json: i for i, f in enumerate(FIELDS)}
    return tuple(sorted(changes, key=lambda c: order[c.field]))


def fingerprint(fields: Mapping[str, str], key: bytes) -> dict[str, str]:
    """Per field, a keyed hash of the row's value: compares rows without keeping them.

    The key is derived from the API key and the journal's salt and is never stored
    (ledger.py), so the journal alone can't be used to guess a trunk password offline.
    """
    # HMAC-SHA256 (RFC 2104) with the key's inner and outer states worked out once per
    # key, not once per field: the same digests as ``hmac.new(key, ..., sha256)``.
    inner, outer = _key_states(key)
    out: dict[str, str] = {}
    for name, value in sorted(fields.items()):
        if name in FIELD_BY_JSON:
            one = inner.copy()
            one.update(f"{name}={value}".encode())
            two = outer.copy()
            two.update(one.digest())
            out[name] = two.hexdigest()[:32]
    return out


@lru_cache(maxsize=4)  # one key a batch: asked for on every row
def _key_states(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer hash states for ``key`` (copied, never updated)."""
    key = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def changed_fields(earlier: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The fields whose fingerprint differs between two runs (added or removed included)."""
    names = set(earlier) | set(now)
    return [f.json for f in FIELDS if f.json in names and earlier.get(f.json) != now.get(f.json)]


def dumps(data: Mapping[str, object]) -> str:
    return json.dumps(dict(data), sort_keys=True, separators=(",", ":"))


def _shown(value: str | None) -> str:
    return "(none)" if value is None else repr(value)
