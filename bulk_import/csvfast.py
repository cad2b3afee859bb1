"""The dry run's fast way through a plain CSV file: pandas' C parser, a chunk at a time.

``Table.chunks()`` (the column-wise dry run) reads a CSV file through here; a sending run
never does, so it never imports pandas.  The chunks are exactly those of the stdlib
reader in ``load`` (same row numbers, same trimmed cells, same blank rows dropped): this
path is taken only where the two readers cannot disagree, and hands over to the stdlib
reader otherwise:

* for the whole file, when it could hold something the stdlib reader makes a row-level
  problem or reads differently: a quote character (quoted cells, ``"x"y``), a NUL byte,
  a line long enough to hold an oversized cell, bytes kept apart as not UTF-8, or a
  UTF-16 file.  Without quotes every line is one record, so line and row numbers agree;
* from the chunk on where pandas stops (a row wider than the header is a ``ParserError``;
  a byte not in a given ``--encoding`` a ``UnicodeDecodeError``): the stdlib reader then
  reads the rest, starting at that chunk's first row, and says what is wrong with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from itertools import compress
from typing import TYPE_CHECKING

from bulk_import.models import Chunk

if TYPE_CHECKING:
    import pandas as pd

    from bulk_import.load import Table, _CsvReader

_SCAN_BLOCK = 1 << 20
_UNSAFE = (b'"', b"\x00")  # bytes the two readers may read differently


def qualifies(reader: _CsvReader) -> bool:
    """Whether pandas reads this file as the stdlib reader does (see the module's text)."""
    if reader.long_lines or reader.errors != "strict" or reader.encoding.startswith("utf-16"):
        return False
    try:
        with open(reader.file.fileno(), "rb", closefd=False) as stream:
            stream.seek(0)
            while block := stream.read(_SCAN_BLOCK):
                if any(b in block for b in _UNSAFE):
                    return False
    except OSError:
        return False  # the stdlib reader reports it
    return True


def columns(table: Table, reader: _CsvReader) -> Iterator[Chunk]:
    """``Table._columns()``, read by pandas while it can, then by the stdlib reader."""
    import os

    import pandas as pd

    from bulk_import.load import _positions

    positions = _positions(table)
    width = len(table.header)
    done = 0  # data records (blank ones too) read so far
    try:
        with open(os.dup(reader.file.fileno()), "rb") as stream:
            stream.seek(0)
            chunks = pd.read_csv(
                stream,
                sep=reader.delimiter,
                header=None,
                names=range(width),
                skiprows=reader.header_row,
                index_col=False,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,  # blank lines count for the row numbers
                encoding=reader.encoding,
                encoding_errors="strict",
                chunksize=table.chunk_rows,
                engine="c",
            )
            with chunks:
                while (chunk := _next_chunk(chunks)) is not None:
                    cells = [chunk[pos].tolist() for pos in range(width)]
                    reader._check_unchanged(reader.header_row + 1 + done)
                    shaped = _shape_columns(cells, reader.header_row + 1 + done, positions)
                    done += len(chunk)
                    if shaped.rows:
                        yield shaped
        reader._check_unchanged(reader.header_row + 1 + done)
        return
    except (ValueError, UnicodeError, pd.errors.ParserWarning):  # ParserError: a ValueError
        pass  # the stdlib reader takes over at this chunk, and names the problem
    yield from table._columns(skip=done)


def _next_chunk(chunks: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """The next chunk, or None at the end.  pandas only warns when the first row is wider
    than the header (it drops the extra cells): that is a ``ParserWarning`` error here."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return next(chunks, None)


def _shape_columns(cells: list[list[str]], first_row: int, positions: dict[str, int]) -> Chunk:
    """``load._shape`` for columns of a chunk that has no row-level problem."""
    from bulk_import.load import unguarded_columns

    size = len(cells[0]) if cells else 0
    trimmed = unguarded_columns(
        {pos: list(map(str.strip, cells[pos])) for pos in set(positions.values())}, positions
    )
    keep = [any(row) for row in zip(*trimmed.values(), strict=True)] or [False] * size
    if all(keep):
        shaped = {name: trimmed[pos] for name, pos in positions.items()}
        return Chunk(list(range(first_row, first_row + size)), shaped)
    for i in (i for i, kept in enumerate(keep) if not kept):
        keep[i] = any(column[i].strip() for column in cells)  # a cell elsewhere
    rows = [first_row + i for i, kept in enumerate(keep) if kept]
    shaped = {name: list(compress(trimmed[pos], keep)) for name, pos in positions.items()}
    return Chunk(rows, shaped)
