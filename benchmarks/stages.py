"""Time the dry run's two first stages in process: reading (``Table.chunks()``) and the
column-wise checks (``Validator.check_chunk``), on the 1,000,000-row benchmark CSV (or any
file, a workbook too).

    .venv/bin/python benchmarks/stages.py [--reader fast|stdlib|relaid] [FILE]

``fast``: the dry run's reader (for a CSV, pandas' C parser in bulk_import/csvfast.py);
``stdlib``: the stdlib ``csv`` reader it hands over to; ``relaid``: the stdlib reader's
cells copied into new strings column by column before the checks (same values, other
memory layout).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bulk_import.load import open_table
from bulk_import.models import Chunk
from bulk_import.validate import Validator


def relaid(chunk: Chunk) -> Chunk:
    cells = {name: "\x00".join(column).split("\x00") for name, column in chunk.cells.items()}
    return Chunk(chunk.rows, cells, chunk.problems)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reader", choices=["fast", "stdlib", "relaid"], default="fast")
    parser.add_argument("file", nargs="?", default="benchmarks/out/rows-1000000.csv")
    args = parser.parse_args()
    if args.reader != "fast":
        from bulk_import import csvfast

        csvfast.qualifies = lambda reader: False
    t0 = time.perf_counter()
    table = open_table(Path(args.file))  # the chunk size a dry run uses
    chunks = list(table.chunks())
    t1 = time.perf_counter()
    if args.reader == "relaid":
        chunks = [relaid(c) for c in chunks]
    t2 = time.perf_counter()
    validator = Validator()
    for chunk in chunks:
        validator.check_chunk(chunk)
    t3 = time.perf_counter()
    print(f"{args.reader}: open and chunks() {t1 - t0:.2f} s, check_chunk {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
