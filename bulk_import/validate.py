"""Check rows: a ``RawRow`` becomes a ``Job`` (ready to send) or an ``invalid`` result.

docs/contract.md, "The input file" and "The results file".  Phone numbers lose spaces,
dashes, dots and brackets (and a ``(0)`` after the country code); a leading ``00`` becomes
``+``; full-width characters are read as ASCII (NFKC); a cell Excel stored as a float
(``.0``, ``E+11``) is refused with a hint; the result must be E.164 (``+`` then 7 to 15
digits) with an assigned country code and a length possible for it (phones.py).  Digits
without ``+`` are read only with a default region, through ``phonenumbers``, and must then
be a valid number of that region.  Everything else is checked by ``ImportRequest``
(models.py); its errors are turned into one readable line, every problem of the row, each
naming its column by JSON name, in field order::

    phoneNumber: '4155552671' has no country code (+...); terminationSipURI: required

A message quotes a cell only when it is a phone number; any other cell (a password may
land in another column when a row is short) is described by its length and shape, and so
is a phone cell not written like a phone number, in the message and in ``phone_number``
(``phone_cell``).  The
same phone number later in the file is ``duplicate of row N``, whatever else is wrong with
either row.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from bulk_import import phones
from bulk_import.errors import MissingColumnsError, UsageError
from bulk_import.firstrows import RowIndex
from bulk_import.models import (
    E164,
    E164_RE,
    FIELD_BY_JSON,
    FIELDS,
    REQUIRED_FIELDS,
    SIP_URI_RE,
    Chunk,
    Job,
    RawRow,
    ResultColumns,
    RowResult,
    Status,
)

if TYPE_CHECKING:
    from pydantic import ValidationError

_ORDER = {spec.json: i for i, spec in enumerate(FIELDS)}
_PHONE_FIELDS = tuple(spec.json for spec in FIELDS if spec.phone)
_QUOTE_LIMIT = 40

# Spaces of every kind, dashes of every kind, dots and brackets: all dropped.
_PHONE_NOISE = re.compile(r"[\s.()\[\]\-\u2010-\u2015\u2212]+")
_TRUNK_ZERO = re.compile(r"^(\+|00)([1-9][0-9]{0,2})\s*\(0\)")
_NO_CC_HINT = (
    "has no country code (+...); if Excel dropped the '+', format the column as text "
    "or use --default-region"
)
# A number cell Excel turned into a float: digits then ``.0``, or an ``E+`` exponent.
#: A cell Excel stored as a float, as it shows it: ``14155552672.0``, ``4.42079E+11``, and
#: in a locale whose decimal mark is a comma, ``14155552672,0`` and ``4,9301E+11``.
_EXCEL_FLOAT = re.compile(r"^\+?(?:[0-9]+[.,]0+|[0-9]+(?:[.,][0-9]+)?[eE]\+?[0-9]+)$")
_FLOAT_HINT = (
    "looks like a number Excel stored as a float (digits lost or added); format the "
    "column as text and enter the numbers again"
)


#: Valid values for the fields a partial row lacks, so the rest is checked by the same model.
_STAND_INS = {
    "trunkUsername": "stand-in",
    "trunkPassword": "stand-in",
    "terminationSipURI": "sip.example.com",
}


class PhoneError(ValueError):
    """A phone number cell that cannot be read; the message is the readable problem."""


#: What a phone number is written with: digits, ``+``, and the noise ``normalize_phone`` drops.
_PHONE_LIKE = re.compile(r"^[\d+\s.()\[\]\-\u2010-\u2015\u2212]*$")


def phone_cell(text: str) -> str:
    """A phone cell for an output: as it is when it could be a phone number, else its shape.

    A cell that is not even written like one (letters, ``@``, ``!`` ...) is most likely
    another column shifted into this one (a missing cell, an unquoted comma), a trunk
    password maybe: it is told by its length and the kinds of characters it holds, like
    ``(15 characters: letters, digits, punctuation)``, never copied.
    """
    folded = unicodedata.normalize("NFKC", text).strip()
    if _PHONE_LIKE.match(folded) or _EXCEL_FLOAT.match(folded):
        return text
    kinds = [
        name
        for name, present in (
            ("letters", any(c.isalpha() for c in text)),
            ("digits", any(c.isdigit() for c in text)),
            ("spaces", any(c.isspace() for c in text)),
            ("punctuation", any(not (c.isalnum() or c.isspace()) for c in text)),
        )
        if present
    ]
    count = f"{len(text)} character{'' if len(text) == 1 else 's'}"
    return f"({count}: {', '.join(kinds)})" if kinds else f"({count})"


def quote(value: str) -> str:
    """A cell value for a message: quoted, at most ~40 characters, control chars escaped."""
    if len(value) > _QUOTE_LIMIT:
        value = value[:_QUOTE_LIMIT] + "..."
    return repr(value)


def check_columns(
    columns: Collection[str],
    defaults: Collection[str],
    found_headers: Sequence[str],
    required: Collection[str] = REQUIRED_FIELDS,
) -> None:
    """Raise ``MissingColumnsError`` for required fields with neither column nor default."""
    missing = [f for f in required if f not in columns and f not in defaults]
    if missing:
        from bulk_import.load import closest_headers

        raise MissingColumnsError(
            missing, list(found_headers), closest_headers(missing, found_headers)
        )


def normalize_phone(text: str, region: str | None) -> str:
    """A phone cell -> E.164 (``+14155552671``); raises ``PhoneError`` saying what is wrong.

    Full-width ``+`` and digits are read as ASCII (NFKC); a number Excel stored as a float
    (``+14155552672.0``, ``4.42079E+11``) is refused with the hint to format the column as
    text; an E.164 number must have an assigned country code and a possible length.
    """
    cleaned = text.replace(" ", "").replace("-", "")  # the common case (see ``_phone_numbers``)
    if _E164_FULL(cleaned) and phones.possible(cleaned):
        return cleaned
    folded = unicodedata.normalize("NFKC", text).strip()
    if _EXCEL_FLOAT.match(folded):
        raise PhoneError(f"{quote(text)} {_FLOAT_HINT}")
    if not _PHONE_LIKE.match(folded):  # not written like a phone number: its shape only
        raise PhoneError(f"{phone_cell(text)} is not a phone number")
    cleaned = _PHONE_NOISE.sub("", _TRUNK_ZERO.sub(r"\1\2", folded))
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if cleaned.startswith("+"):
        if E164_RE.match(cleaned) and cleaned.isascii():
            if not phones.possible(cleaned):
                raise PhoneError(f"{quote(text)} {phones.problem(cleaned)}")
            return cleaned
        digits = cleaned[1:]
        if not (digits.isascii() and digits.isdigit()):
            raise PhoneError(f"{quote(text)} is not a phone number")
        if digits.startswith("0"):
            raise PhoneError(f"{quote(text)} is not E.164: a country code never starts with 0")
        raise PhoneError(
            f"{quote(text)} is not E.164: + then 7 to 15 digits ({len(digits)} digits)"
        )
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise PhoneError(f"{quote(text)} is not a phone number")
    if region is None:
        raise PhoneError(f"{quote(text)} {_NO_CC_HINT}")
    region = region.upper()
    import phonenumbers  # here: only numbers without a country code need it (30 ms to load)

    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{quote(text)} is not a valid {region} number") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"{quote(text)} is not a valid {region} number")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not E164_RE.match(e164):  # pragma: no cover - phonenumbers gives E.164
        raise PhoneError(f"{quote(text)} is not a valid {region} number")
    return e164


class Validator:
    """Checks the rows of one file, in order (it remembers numbers to find duplicates)."""

    def __init__(
        self,
        *,
        defaults: Mapping[str, str] | None = None,
        default_region: str | None = None,
        partial: bool = False,
        seen: RowIndex | None = None,
    ) -> None:
        given = (defaults or {}).items()
        #: Only ``phoneNumber`` is required (an update): a row lacking a field needed to
        #: create the number is still a ``Job``, with ``request`` None.
        self.partial = partial
        self.defaults = {k: t for k, v in given if k in FIELD_BY_JSON and (t := v.strip())}
        self.region = _check_region(default_region)
        #: normalized phoneNumber -> first row: a dict unless given (a sending run gives a
        #: ``FirstRows``, which holds a number in 16 bytes, not 130)
        self._seen: RowIndex = {} if seen is None else seen

    def check(self, raw: RawRow) -> Job | RowResult:
        """A ``Job`` for a good row, else a ``RowResult`` with status ``invalid``."""
        if raw.problem:  # the row could not be read as a whole: its cells may be shifted
            cell = raw.values.get("phoneNumber", "").strip()
            phone = _phone_or_none(cell, self.region) or phone_cell(cell)
            return RowResult(
                row=raw.row, phone_number=phone, status=Status.INVALID, error=raw.problem
            )
        cells = {k: t for k, v in raw.values.items() if k in FIELD_BY_JSON and (t := v.strip())}
        values = {**self.defaults, **cells}  # an empty cell is absent: the default applies
        problems: dict[str, str] = {}
        for name in _PHONE_FIELDS:
            if name in values:
                try:
                    values[name] = normalize_phone(values[name], self.region)
                except PhoneError as exc:
                    problems[name] = str(exc)
        phone = values.get("phoneNumber", "")
        if "phoneNumber" in values and "phoneNumber" not in problems:
            first = self._seen.setdefault(phone, raw.row)
            if first != raw.row:
                problems["phoneNumber"] = f"duplicate of row {first}"
        body = {k: v for k, v in values.items() if k not in problems}
        # Here, not at the top: a dry run of good rows never comes here (no pydantic to load).
        from bulk_import.payloads import ImportRequest, ValidationError

        absent = [f for f in REQUIRED_FIELDS if f not in values and f != "phoneNumber"]
        if self.partial and absent and "phoneNumber" in values:
            # Check the fields it gives by the same rules, with stand-ins for the others.
            try:
                ImportRequest.model_validate({**_STAND_INS, **body})
            except ValidationError as exc:
                for name, message in _describe(exc, body):
                    problems.setdefault(name, message)
            if not problems:
                return Job(raw.row, None, wanted=values, number=phone)
        else:
            try:
                request = ImportRequest.model_validate(body)
            except ValidationError as exc:
                for name, message in _describe(exc, body):
                    problems.setdefault(name, message)
            else:
                if not problems:
                    return Job(raw.row, request, wanted=values if self.partial else {})
        error = "; ".join(
            f"{name}: {problems[name]}" for name in sorted(problems, key=_ORDER.__getitem__)
        )
        return RowResult(
            row=raw.row,
            phone_number=phone if "phoneNumber" not in problems else phone_cell(phone),
            status=Status.INVALID,
            error=error,
        )

    def check_chunk(self, chunk: Chunk) -> ResultColumns:
        """Check a ``Table.chunks()`` chunk column-wise: one results line per row.

        Every line has status ``valid`` or ``invalid``, exactly as ``check`` row by row
        would give: rows that pass every rule are found column by column, and every other
        row goes through ``check`` itself, so its message is the per-row one.  Give it the
        chunks of one file in order; numbers are remembered across calls (and shared with
        ``check``) for duplicates.
        """
        return _check_chunk(self, chunk)


def _check_region(region: str | None) -> str | None:
    if region is None:
        return None
    code = region.strip().upper()
    import phonenumbers

    if code not in phonenumbers.SUPPORTED_REGIONS:
        meant = _REGION_SLIPS.get(code)
        raise UsageError(
            f"default_region {region!r} is not a known region",
            hint=f"did you mean {meant[0]}? {meant[1]}'s ISO 3166 code is {meant[0]}"
            if meant
            else "give a two-letter ISO 3166 country code such as US, GB or DE",
            param="default_region",
        )
    return code


#: Country names people write for a region code that is not the ISO 3166 one.
_REGION_SLIPS: dict[str, tuple[str, str]] = {
    "UK": ("GB", "the United Kingdom"),
    "EL": ("GR", "Greece"),
    "USA": ("US", "the United States"),
    "GER": ("DE", "Germany"),
}


def _describe(exc: ValidationError, body: Mapping[str, str]) -> list[tuple[str, str]]:
    """pydantic's errors as (JSON field name, readable problem); never the password."""
    described: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        spec = FIELD_BY_JSON.get(name)
        if spec is None:
            continue
        value = body.get(name, "")
        described.append(
            (name, _problem(error["type"], error.get("ctx") or {}, value, spec.secret, spec.phone))
        )
    merged: dict[str, list[str]] = {}
    for name, message in described:
        merged.setdefault(name, []).append(message)
    return [(name, ", ".join(messages)) for name, messages in merged.items()]


def _problem(kind: str, ctx: Mapping[str, Any], value: str, secret: bool, phone: bool) -> str:
    if kind == "missing" or (kind in {"string_too_short", "too_short"} and not value):
        return "required"
    if kind in {"string_too_long", "too_long"}:
        limit = ctx.get("max_length", "?")
        return f"longer than {limit} characters" + ("" if secret else f" ({len(value)})")
    if secret:
        return "not accepted"
    # A cell is quoted only when it is a phone number: any other cell may be a password
    # that landed in the wrong column (a short row), so only its shape is told.
    shown = quote(value) if phone else shape(value)
    if kind == "value_error" and "error" in ctx:
        return f"{shown} {ctx['error']}"
    if kind == "string_pattern_mismatch":
        return f"{shown} is not E.164 (+ then 7 to 15 digits)"
    return f"{shown} is not accepted ({kind})"


def shape(value: str) -> str:
    """A cell described without its value: ``the value (12 characters, no dot)``."""
    traits = [f"{len(value)} character{'' if len(value) == 1 else 's'}"]
    if any(c.isspace() for c in value):
        traits.append("with spaces")
    if "." not in value:
        traits.append("no dot")
    return f"the value ({', '.join(traits)})"


# --- column-wise (the dry run) -------------------------------------------------------
#
# Plain lists, no numpy: each rule scans a column with C-level builtins (``all``, ``max``,
# ``map``) and names only the rows that break it, which are few; those rows then go
# through ``check``.  This keeps the dry run of a workbook free of pandas (0.3 s to load).

_E164_FULL = re.compile(E164).fullmatch


def _check_chunk(validator: Validator, chunk: Chunk) -> ResultColumns:
    """``Validator.check_chunk``: the rules column by column, ``check`` for the other rows."""
    rows = chunk.rows
    size = len(rows)
    odd: set[int] = set()  # positions of the rows that break some rule looked at so far
    phones: list[str | None] = [None] * size  # each row's readable phoneNumber, or None
    for spec in FIELDS:
        cells = _cells(chunk, spec.json, validator.defaults.get(spec.json), size)
        if cells is None:
            if spec.required:
                odd.update(range(size))
        elif spec.phone:
            numbers = _phone_numbers(cells, validator.region)
            if None in numbers:
                odd.update(
                    i
                    for i, (n, c) in enumerate(zip(numbers, cells, strict=True))
                    if n is None and (c or spec.required)
                )
            if spec.json == "phoneNumber":
                phones = numbers
        else:
            if max(map(len, cells), default=0) > spec.max_length:
                odd.update(i for i, c in enumerate(cells) if len(c) > spec.max_length)
            if spec.required and not all(cells):
                odd.update(i for i, c in enumerate(cells) if not c)
            if spec.json == "terminationSipURI":
                passed = {value: bool(SIP_URI_RE.match(value)) for value in set(cells)}
                if not all(passed.values()):
                    odd.update(i for i, c in enumerate(cells) if not passed[c])
    if chunk.problems is not None:  # rows not read as a whole: ``check`` says why
        troubled = [i for i, p in enumerate(chunk.problems) if p]
        odd.update(troubled)
        phones = phones.copy()
        for i in troubled:
            phones[i] = None
    odd.update(_duplicates(validator._seen, phones, rows))

    phone_col = [p or "" for p in phones]
    status = [Status.VALID.value] * size
    error = [""] * size
    for i in sorted(odd):
        checked = validator.check(chunk.raw_row(i))
        phone_col[i] = checked.phone_number
        if isinstance(checked, RowResult):
            status[i] = checked.status.value
            error[i] = checked.error
    blank = [""] * size
    return ResultColumns(rows, phone_col, status, blank, blank, [0] * size, error)


def _cells(chunk: Chunk, name: str, default: str | None, size: int) -> list[str] | None:
    """The cells of one field, ``default`` in the empty ones; None if absent with no default."""
    cells = chunk.cells.get(name)
    if cells is None:
        return None if default is None else [default] * size
    return cells if default is None else [c or default for c in cells]


def _phone_numbers(cells: list[str], region: str | None) -> list[str | None]:
    """Each cell as ``normalize_phone`` gives it, or None (empty, or not a number)."""
    plain = _plain_numbers(cells)
    if plain is not None:
        return plain
    known, lengths_after = phones._LENGTHS, phones.lengths_after  # ``phones.possible``, inlined
    # A cell that is E.164 once its ASCII spaces and dashes go (``+44 20 7946 0123``,
    # ``+1 415-555-2671``) is read by ``normalize_phone`` as exactly that: its other steps
    # change nothing in such a cell (no NFKC change, no Excel float, no ``(0)``, no
    # leading ``00``).  Two ``replace`` calls: ``str.translate`` costs twice as much.
    return [
        n
        if _E164_FULL(n := c.replace(" ", "").replace("-", ""))
        and len(n) in (known.get(n[:4]) or lengths_after(n[:4]))
        else _phone_or_none(c, region)
        for c in cells
    ]


def _plain_numbers(cells: list[str]) -> list[str | None] | None:
    """``_phone_numbers``' answer when every cell is E.164 once its spaces and dashes go
    and has a possible length, found with a few passes over the joined column instead of
    a step per cell; None when some cell is not (then each cell is looked at)."""
    size = len(cells)
    text = "\n".join(cells).replace(" ", "").replace("-", "")
    if (  # each cell one line, starting with its only "+", then ASCII digits
        text.count("\n") != size - 1
        or text.count("+") != size
        or not text.startswith("+")
        or text.count("\n+") != size - 1
    ):
        return None
    digits = text.replace("+", "").replace("\n", "")
    if not (digits.isascii() and digits.isdigit()):
        return None
    numbers = text.split("\n")
    known, lengths_after = phones._LENGTHS, phones.lengths_after
    for head, length in set(zip(map(_HEAD, numbers), map(len, numbers), strict=True)):
        # 7 to 15 digits, the first not 0 (E.164), and a length possible after the prefix
        if not (8 <= length <= 16 and head[1] != "0"):
            return None
        if length not in (known.get(head) or lengths_after(head)):
            return None
    return cast("list[str | None]", numbers)


_HEAD = operator.itemgetter(slice(None, 4))


def _phone_or_none(text: str, region: str | None) -> str | None:
    """``normalize_phone``, or None for an empty or unreadable cell."""
    if not text:
        return None
    try:
        return normalize_phone(text, region)
    except PhoneError:
        return None


def _duplicates(seen: RowIndex, phones: list[str | None], rows: list[int]) -> list[int]:
    """Positions whose number an earlier row has, claiming new numbers in ``seen`` as
    ``check`` does.

    Every readable number is claimed in row order, even on a row with other problems, so
    ``check`` on a later row (or chunk) finds the same first row.
    """
    claim = seen.setdefault
    if None not in phones:  # every row has a number: claim them all at C speed
        firsts = list(map(claim, cast("list[str]", phones), rows))
        if firsts == rows:
            return []
        return [i for i, (first, row) in enumerate(zip(firsts, rows, strict=True)) if first != row]
    return [
        i
        for i, (number, row) in enumerate(zip(phones, rows, strict=True))
        if number is not None and claim(number, row) != row
    ]
