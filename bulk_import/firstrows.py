"""firstrows: each phone number's first row in the file, kept in about 16 bytes a number.

A file's duplicates are found by remembering every number read and the row it was first
on (``Validator``).  As a ``dict[str, int]`` that costs about 130 bytes a number (the
string, the row's int and the table), most of what a sending run holds per row.
``FirstRows`` keeps the same mapping as sorted ``array``s of 64-bit integers: a number
``+<digits>`` is the integer of its digits, and its row sits beside it.

A new number goes into a small dict; when that is full, its entries are sorted into a run
(keys, rows), and runs of like size are merged the way a binary counter carries, so there
are at most log2(numbers / buffer) runs, each searched by bisection.  Text that is not
``+`` then digits (the validator only claims numbers it could read, so none in practice)
is kept in a plain dict.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from typing import Protocol

#: A sorted run: keys ascending, and the row of each key at the same index.
_Run = tuple["array[int]", "array[int]"]
#: At most 18 digits: below 10**18, so any such key fits a signed 64-bit integer.
_MAX_DIGITS = 18


class RowIndex(Protocol):
    """What the validator needs of its index of numbers (a ``dict[str, int]`` is one)."""

    def setdefault(self, key: str, default: int, /) -> int:
        """The row ``key`` was first claimed on; claimed for ``default`` if new."""
        ...


class FirstRows:
    """number -> first row, with ``dict.setdefault``'s meaning, in sorted integer arrays."""

    def __init__(self, buffer: int = 4096) -> None:
        self._buffer = max(1, buffer)
        self._recent: dict[int, int] = {}
        self._runs: list[_Run] = []  # disjoint keys; sizes strictly falling
        self._other: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._recent) + len(self._other) + sum(len(keys) for keys, _ in self._runs)

    def setdefault(self, key: str, default: int, /) -> int:
        """The row ``key`` was first claimed on; claimed for ``default`` if new."""
        number = _number(key)
        if number is None:
            return self._other.setdefault(key, default)
        first = self._recent.get(number)
        if first is not None:
            return first
        for keys, rows in self._runs:
            i = bisect_left(keys, number)
            if i < len(keys) and keys[i] == number:
                return rows[i]
        self._recent[number] = default
        if len(self._recent) >= self._buffer:
            self._flush()
        return default

    def _flush(self) -> None:
        """Sort the recent numbers into a run; merge it with runs no larger than it."""
        ordered = sorted(self._recent.items())
        self._recent.clear()
        run: _Run = (array("q", [k for k, _ in ordered]), array("q", [r for _, r in ordered]))
        del ordered
        while self._runs and len(self._runs[-1][0]) <= len(run[0]):
            run = _merged(self._runs.pop(), run)
        self._runs.append(run)


def _number(text: str) -> int | None:
    """``+<digits>`` as the integer of its digits (no leading 0, so one text per integer)."""
    digits = text[1:]
    if (
        text[:1] == "+"
        and 0 < len(digits) <= _MAX_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
    ):
        return int(digits)
    return None


def _merged(a: _Run, b: _Run) -> _Run:
    """One sorted run of the entries of two (their keys are disjoint)."""
    keys: array[int] = array("q")
    rows: array[int] = array("q")
    for key, row in heapq.merge(zip(*a, strict=True), zip(*b, strict=True)):
        keys.append(key)
        rows.append(row)
    return keys, rows
