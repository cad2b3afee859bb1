"""Time the dry run's two first stages in process: reading (``Table.chunks()``) and the
column-wise checks (``Validator.check_frame``), on the 1,000,000-row benchmark CSV.

    .venv/bin/python benchmarks/stages.py [--reader pandas|stdlib|relaid] [FILE]

``pandas``: the dry run's reader (bulk_import/csvfast.py; on a checkout without it, that
checkout's own reader); ``stdlib``: the stdlib ``csv`` reader it hands over to;
``relaid``: the stdlib reader's cells copied into new strings column by column before the
checks (same values, other memory layout).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from bulk_import.load import open_table
from bulk_import.validate import Validator


def relaid(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"row": frame["row"]})
    for name in frame.columns[1:]:
        out[name] = pd.Series("\x00".join(frame[name].tolist()).split("\x00"), dtype=object)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reader", choices=["pandas", "stdlib", "relaid"], default="pandas")
    parser.add_argument("file", nargs="?", default="benchmarks/out/rows-1000000.csv")
    args = parser.parse_args()
    if args.reader != "pandas":
        from bulk_import import csvfast

        csvfast.qualifies = lambda reader: False
    table = open_table(Path(args.file), chunk_rows=100_000)
    t0 = time.perf_counter()
    frames = list(table.chunks())
    t1 = time.perf_counter()
    if args.reader == "relaid":
        frames = [relaid(f) for f in frames]
    t2 = time.perf_counter()
    validator = Validator()
    for frame in frames:
        validator.check_frame(frame)
    t3 = time.perf_counter()
    print(f"{args.reader}: chunks() {t1 - t0:.2f} s, check_frame {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
