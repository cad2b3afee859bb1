"""The formula guard: the ``'`` put before a cell Excel would run as a formula, and taken
off again when a file is read (docs/contract.md, "The results file" and "The input file").

``defuse`` is what every writer of a CSV or workbook cell applies (results, export,
failed rows); ``unguard`` is its exact inverse, applied by ``load`` to every input cell, so
that an export read back (``update`` of an untouched export) holds the account's values.
A cell is guarded when it starts with ``=``, ``@``, a tab, a carriage return, ``+``/``-``
not followed by a number only, or ``'`` itself (so that a value starting with ``'`` comes
back as it was); a leading ``'`` is removed only when what follows is such a cell.
"""

from __future__ import annotations

import re

_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_FORMULA_START = ("=", "@", "\t", "\r", "'")
#: A line of a "\n"-joined column that ``defuse`` may change (a superset: "-1.5" is matched).
RISKY_LINE = re.compile(r"^(?:[=@\t\r']|[+-](?![0-9]+$))", re.MULTILINE)


def defuse(cell: str) -> str:
    """Prefix ``'`` to a cell Excel would run as a formula (``=``, ``@``, ``+``/``-`` text),
    or that starts with ``'``."""
    if not cell:
        return cell
    if cell.startswith(_FORMULA_START):
        return "'" + cell
    if cell[0] in "+-" and not _NUMBER_RE.match(cell):
        return "'" + cell
    return cell


def unguard(cell: str) -> str:
    """``cell`` without the ``'`` that ``defuse`` put before it (else as it is)."""
    if cell[:1] == "'" and defuse(cell[1:]) != cell[1:]:
        return cell[1:]
    return cell


def unguarded(cells: list[str]) -> list[str]:
    """``unguard`` each cell of a column; one C-level scan when no cell holds a ``'``."""
    if "'" not in "".join(cells):
        return cells
    return [unguard(c) if c[:1] == "'" else c for c in cells]
