"""commands: the life of a batch as functions, for a Python caller (docs/contract.md).

``run_import`` (runner.py) is ``run``; ``plan``, ``update`` and ``undo`` are the same
pipeline with another step in the middle, so each is ``run_import`` with its ``command``
set.  ``export`` reads the account into a spreadsheet, ``template`` writes an empty one.
The ones that talk to the API have an ``a``-prefixed twin to await inside a running event
loop.  Like ``run_import``, none prints, shows progress, handles signals or reads the
environment unless asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from .record import Summary
from .runner import RunOptions, arun_import, run_import
from .spreadsheet import ExportOptions, aexport_account, export_account, write_template

__all__ = [
    "aexport",
    "aplan",
    "aundo",
    "aupdate",
    "export",
    "plan",
    "template",
    "undo",
    "update",
]

Say = Callable[[str], None] | None


def plan(options: RunOptions, *, say: Say = None, handle_signals: bool = False) -> Summary:
    """What ``run`` would do now, row by row, read from the account; changes nothing.

    Results (``would_import``, ``would_update``, ...): ``<file stem>.plan.csv`` unless
    ``options.output`` says otherwise.
    """
    return run_import(_as(options, "plan"), say=say, handle_signals=handle_signals)


async def aplan(options: RunOptions, *, say: Say = None, handle_signals: bool = False) -> Summary:
    """``plan``, awaited inside a running event loop."""
    return await arun_import(_as(options, "plan"), say=say, handle_signals=handle_signals)


def update(options: RunOptions, *, say: Say = None, handle_signals: bool = False) -> Summary:
    """PATCH each number of ``options.file`` with only the fields that differ."""
    return run_import(_as(options, "update"), say=say, handle_signals=handle_signals)


async def aupdate(options: RunOptions, *, say: Say = None, handle_signals: bool = False) -> Summary:
    """``update``, awaited inside a running event loop."""
    return await arun_import(_as(options, "update"), say=say, handle_signals=handle_signals)


def undo(options: RunOptions, *, say: Say = None, handle_signals: bool = False) -> Summary:
    """Delete what the results file ``options.file`` lists as imported, and put back what
    it lists as updated.

    Sends nothing unless ``options.yes`` is True or ``options.confirm`` (given what will be
    done) returns True; otherwise raises ``UsageError``.
    """
    return run_import(_as(options, "undo"), say=say, handle_signals=handle_signals)


async def aundo(options: RunOptions, *, say: Say = None, handle_signals: bool = False) -> Summary:
    """``undo``, awaited inside a running event loop."""
    return await arun_import(_as(options, "undo"), say=say, handle_signals=handle_signals)


def export(options: ExportOptions, *, say: Say = None) -> int:
    """Write every number of the account to ``options.out`` (.csv or .xlsx), sorted, in
    the import's columns; returns how many."""
    return export_account(options, say=say)


async def aexport(options: ExportOptions, *, say: Say = None) -> int:
    """``export``, awaited inside a running event loop."""
    return await aexport_account(options, say=say)


def template(out: Path, *, force: bool = False) -> None:
    """Write the header row of an import file to ``out`` (.csv or .xlsx); a file there
    that is not empty is replaced only with ``force``."""
    write_template(out, force=force)


def _as(options: RunOptions, command: str) -> RunOptions:
    return dataclasses.replace(options, command=command)
