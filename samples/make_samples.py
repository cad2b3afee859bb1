"""Derive ``phone_numbers.xlsx`` and ``template.csv`` from ``phone_numbers.csv``.

Run ``python samples/make_samples.py`` after editing the CSV.  The rows are fictional:
555-01xx numbers in the US and Ofcom's drama range (020 7946 0xxx) in the UK, and
passwords that say they are fake.  Seventeen rows are valid; exactly three carry a
typical mistake:

* row 8, ``4155550120``: no country code (in the workbook a NUMBER cell, which is what
  Excel makes of a typed number);
* row 12: no termination SIP URI;
* row 17, ``+1 (415) 555-0101``: the number of row 2 again, written differently.

In the workbook every other phone cell is text (``+1415...``), as it must be: a number
cell cannot hold the ``+``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
NUMBER_CELLS = {"4155550120"}  # the deliberate mistake, stored as a number in the workbook


def main() -> None:
    with (HERE / "phone_numbers.csv").open(encoding="utf-8", newline="") as stream:
        header, *rows = list(csv.reader(stream))
    with (HERE / "template.csv").open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, lineterminator="\n").writerow(header)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Numbers"
    sheet.append(header)
    for row in rows:
        sheet.append([int(cell) if cell in NUMBER_CELLS else cell for cell in row])
    for column in "ABCDEFGH":
        sheet.column_dimensions[column].width = 24
    book.save(HERE / "phone_numbers.xlsx")


if __name__ == "__main__":
    main()
