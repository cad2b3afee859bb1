"""Both CSV readers of the dry run on one file: pandas' (``bulk_import.csvfast``) and the
stdlib reader it hands over to.  ``check_both_readers(path)`` fails when their results
files differ in any byte, or when they stop with different errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bulk_import import csvfast, load
from bulk_import.errors import BulkImportError
from bulk_import.record import write_results_columns
from bulk_import.validate import Validator

CSV_SUFFIXES = load.CSV_SUFFIXES


@contextmanager
def stdlib_only() -> Iterator[None]:
    """``Table.chunks()`` reads every CSV file with the stdlib reader."""
    saved = csvfast.qualifies
    csvfast.qualifies = lambda reader: False
    try:
        yield
    finally:
        csvfast.qualifies = saved


def dry_run_results(path: Path, out: Path, chunk_rows: int, **options: Any) -> str:
    """The dry run's results file for ``path`` as text (or the error that stopped it)."""
    try:
        table = load.open_table(path, chunk_rows=chunk_rows, **options)
    except BulkImportError as exc:
        return f"error on opening: {exc}"
    try:
        validator = Validator()
        write_results_columns(out, (validator.check_chunk(c) for c in table.chunks()))
    except BulkImportError as exc:
        return f"error: {exc}"
    finally:
        table.close()
    return out.read_bytes().decode("utf-8", "surrogateescape")


def takes_fast_path(path: Path, **options: Any) -> bool:
    """Whether the dry run reads ``path`` with pandas (at least at first)."""
    try:
        table = load.open_table(path, **options)
    except BulkImportError:
        return False
    try:
        reader = table._reader
        return isinstance(reader, load._CsvReader) and csvfast.qualifies(reader)
    finally:
        table.close()


def check_both_readers(path: Path, scratch: Path, chunk_rows: int = 2, **options: Any) -> bool:
    """Assert that both readers give the same results file; True if pandas read any."""
    if not takes_fast_path(path, **options):
        return False
    fast = dry_run_results(path, scratch / "fast.results.csv", chunk_rows, **options)
    with stdlib_only():
        slow = dry_run_results(path, scratch / "stdlib.results.csv", chunk_rows, **options)
    assert fast == slow, f"{path}: the two CSV readers disagree"
    return True
