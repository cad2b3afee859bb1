"""Property tests: no input file or cell makes load/validate fail other than on purpose."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_import.errors import InputFileError
from bulk_import.guard import unguard
from bulk_import.load import open_table
from bulk_import.models import FIELDS, Job, RawRow, RowResult, Status
from bulk_import.validate import Validator

# FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_input.py  for a longer hunt
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HEADER = [spec.words for spec in FIELDS]
NAMES = [spec.json for spec in FIELDS]


def load_and_check(path: Path) -> list[Job | RowResult]:
    """What the CLI does with a file, up to validation."""
    with open_table(path, chunk_rows=3) as table:
        validator = Validator()
        return [validator.check(raw) for raw in table.rows()]


def run_file(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        try:
            results = load_and_check(path)
        except InputFileError:
            return
        for result in results:
            assert isinstance(result, Job | RowResult)
            assert result.row >= 2


@SETTINGS
@given(st.text(max_size=400))
def test_any_text_file(text: str) -> None:
    run_file(".csv", text.encode("utf-8"))


@SETTINGS
@given(st.binary(max_size=400))
def test_any_bytes(data: bytes) -> None:
    run_file(".csv", data)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_as_workbook(data: bytes) -> None:
    run_file(".xlsx", data)


CSV_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="\r\x00", exclude_categories=("Cs", "Zl", "Zp")
    ),
    max_size=12,
)


@SETTINGS
@given(
    st.sampled_from([",", ";", "\t", "|"]),
    st.lists(st.lists(CSV_TEXT, min_size=len(HEADER), max_size=len(HEADER)), max_size=8),
)
def test_csv_round_trip(delimiter: str, table: list[list[str]]) -> None:
    """Whatever a spreadsheet writes comes back cell for cell, trimmed, numbered."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(table)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        with open_table(path, chunk_rows=3) as opened:
            got = [(raw.row, raw.values) for raw in opened.rows()]
    expected = []
    for number, cells in enumerate(table, start=2):
        # Trimmed, and without a formula guard (guard.py) but for the password.
        values = {
            n: c.strip() if n == "trunkPassword" else unguard(c.strip())
            for n, c in zip(NAMES, cells, strict=True)
            if c.strip()
        }
        if values:
            expected.append((number, values))
    assert got == expected


MARK = "§"  # only passwords contain it, so finding it in an error would be a leak
PASSWORD = st.text(min_size=0, max_size=200).map(lambda t: MARK + t.replace(MARK, ""))
CELL = st.text(max_size=150).map(lambda t: t.replace(MARK, ""))
PHONE = st.one_of(
    CELL,
    st.from_regex(r"\A(\+|00)?[1-9][0-9 ().\-]{5,17}\Z"),
    st.sampled_from(["+14155552671", "4155552671", "+44 20 7946 0123"]),
)


@SETTINGS
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "phoneNumber": PHONE,
            "trunkUsername": CELL,
            "trunkPassword": PASSWORD,
            "terminationSipURI": st.one_of(CELL, st.just("sip.telnyx.com")),
            "friendlyName": CELL,
            "inboundAgentId": CELL,
            "outboundAgentId": CELL,
            "outboundPhoneNumber": PHONE,
            "Notes": CELL,
        },
    ),
    st.sampled_from([None, "US", "GB"]),
    st.integers(min_value=2, max_value=10**6),
)
def test_any_cells(values: dict[str, str], region: str | None, row: int) -> None:
    validator = Validator(default_region=region)
    result = validator.check(RawRow(row, values))
    assert result.row == row
    if isinstance(result, RowResult):
        assert result.status is Status.INVALID
        assert result.error
        assert MARK not in result.error
        assert "\n" not in result.error
    else:
        assert isinstance(result, Job)
        assert MARK not in repr(result)
