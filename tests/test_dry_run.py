"""The column-wise dry run: ``Validator.check_chunk``, ``write_results_columns``, the CLI.

The column-wise path must give exactly what the per-row path (``Validator.check`` for each
row, ``result_cells`` through ``ResultsWriter``) gives: same statuses, numbers, messages,
and the same bytes in the results file.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_import.cli import main
from bulk_import.load import open_table
from bulk_import.models import FIELDS, Chunk, Job, RawRow, ResultColumns, RowResult, Status
from bulk_import.record import RESULT_COLUMNS, ResultsWriter, write_results_columns
from bulk_import.validate import Validator

from support import PASSWORD

NAMES = [spec.json for spec in FIELDS]
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def per_row(validator: Validator, raw: RawRow) -> RowResult:
    """The per-row path, as the results file sees it."""
    checked = validator.check(raw)
    if isinstance(checked, Job):
        return RowResult(checked.row, checked.phone_number, Status.VALID)
    return checked


def chunk_results(checked: ResultColumns) -> list[RowResult]:
    assert ResultColumns._fields == RESULT_COLUMNS
    assert len({len(column) for column in checked}) == 1
    return checked.results()


def both_paths(
    chunks: list[Chunk],
    defaults: dict[str, str] | None = None,
    default_region: str | None = None,
) -> tuple[list[RowResult], list[RowResult]]:
    """(per-row results, column-wise results) of the same chunks, each with a fresh Validator."""
    rows_validator = Validator(defaults=defaults, default_region=default_region)
    expected = [per_row(rows_validator, raw) for chunk in chunks for raw in _raw_rows(chunk)]
    chunks_validator = Validator(defaults=defaults, default_region=default_region)
    got = [r for chunk in chunks for r in chunk_results(chunks_validator.check_chunk(chunk))]
    return expected, got


def _raw_rows(chunk: Chunk) -> Iterator[RawRow]:
    """The rows of a chunk as ``Table.rows()`` gives them (built here by hand)."""
    for i, row in enumerate(chunk.rows):
        values = {name: cells[i] for name, cells in chunk.cells.items() if cells[i]}
        yield RawRow(row, values, chunk.problems[i] if chunk.problems else "")


# --- a varied file, in small chunks ----------------------------------------------------

GOOD = ["u", PASSWORD, "sip.telnyx.com"]


def varied_rows() -> list[list[str]]:
    """Rows of every kind: valid, each error, duplicates near chunk edges, defaults, region."""
    rows: list[list[str]] = []
    for i in range(40):
        rows.append([f"+1415555{i:04d}", *GOOD, f"Line {i}", "", "agent", f"+1650555{i:04d}"])
    rows += [
        ["+1 (415) 555-9000", *GOOD, "formatted", "", "", ""],
        ["0044 20 7946 0958", *GOOD, "", "", "", "+44 (0) 20 7946 0959"],
        ["+44 (0)20 7946 0960", *GOOD, "", "", "", ""],
        ["4155559001", *GOOD, "no country code", "", "", ""],
        ["14155559002", *GOOD, "", "", "", "6505550000"],
        ["12345", *GOOD, "", "", "", ""],
        ["+0123456789", *GOOD, "", "", "", ""],
        ["+12", *GOOD, "", "", "", ""],
        ["+1415555abcd", *GOOD, "", "", "", ""],
        ["=1+1", "@u", PASSWORD, "-sip", "", "", "", ""],
        ["", *GOOD, "no number", "", "", ""],
        ["+14155559003", "", PASSWORD, "sip.telnyx.com", "no user", "", "", ""],
        ["+14155559004", "u", "", "sip.telnyx.com", "no password", "", "", ""],
        ["+14155559005", "u", PASSWORD, "", "no uri", "", "", ""],
        ["+14155559006", "u", PASSWORD, "not a uri", "", "", "", ""],
        ["+14155559007", "u" * 129, "p" * 129, "s" * 254, "n" * 129, "a" * 65, "b" * 65, ""],
        ["+14155559008", "u" * 128, "p" * 128, "sip.x.com", "n" * 128, "a" * 64, "b" * 64, ""],
        ["+14155559009", *GOOD, "bad outbound", "", "", "+1 650 CALL NOW"],
        ["+14155550000", *GOOD, "duplicate of the first row", "", "", ""],
        ["+1 415 555 0001", *GOOD, "duplicate, formatted", "", "", ""],
        ["+14155559003", *GOOD, "duplicate of an invalid row", "", "", ""],
        ["4155559001", *GOOD, "duplicate only with a region", "", "", ""],
        ["+14155559010", "ü" * 128, PASSWORD, "sips:a:pw@[2001:db8::1]:5061;transport=tls"],
        ["+14155559011", 'Müller, "Jr"', PASSWORD, "sip:pbx.example.com:5060", "a  b"],
        ["+14155559012", *GOOD, "", "", "", ""],
        ["+14155559012", "", "", "", "duplicate and more", "", "", ""],
        ["", "", "", "", "", "", "", "x"],
    ]
    rows += [[f"+1415555{i:04d}", *GOOD, "", "", "", ""] for i in range(35, 45)]
    return rows


@pytest.fixture
def varied_file(tmp_path: Path) -> Path:
    path = tmp_path / "varied.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(NAMES)
        for i, row in enumerate(varied_rows()):
            writer.writerow(row)
            if i % 11 == 5:
                writer.writerow([""] * len(NAMES))  # blank rows still count for numbering
    return path


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"default_region": "US"},
        {"defaults": {"trunkUsername": "fallback", "terminationSipURI": "sip.default.com"}},
        {"defaults": {"outboundPhoneNumber": "+16505550123", "friendlyName": "x" * 129}},
        {"defaults": {"phoneNumber": "+14155551234"}, "default_region": "GB"},
    ],
)
@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_chunks_agree_with_rows_on_a_varied_file(
    varied_file: Path, options: dict[str, Any], chunk_rows: int
) -> None:
    with open_table(varied_file, chunk_rows=chunk_rows) as opened:
        chunks = list(opened.chunks())
    expected, got = both_paths(chunks, **options)
    assert len(got) == len(varied_rows())
    for want, have in zip(expected, got, strict=True):
        assert have == want
    statuses = {r.status for r in got}
    assert statuses <= {Status.VALID, Status.INVALID}
    assert any("duplicate of row" in r.error for r in got)


def test_duplicates_across_chunks_name_the_first_row(varied_file: Path) -> None:
    validator = Validator()
    with open_table(varied_file, chunk_rows=7) as opened:
        chunks = opened.chunks()
        results = [r for c in chunks for r in chunk_results(validator.check_chunk(c))]
    by_row = {r.row: r for r in results}
    first = next(r for r in results if r.phone_number == "+14155550000")
    dup = [r for r in results if r.phone_number == "+14155550000" and r.row != first.row]
    assert first.status is Status.VALID
    assert [r.error for r in dup] == [f"phoneNumber: duplicate of row {first.row}"]
    assert by_row[first.row].status is Status.VALID


def test_chunk_without_a_required_column_checks_every_row() -> None:
    chunk = Chunk([2, 3], {"phoneNumber": ["+14155550001", ""]})
    expected, got = both_paths([chunk])
    assert got == expected
    assert all("required" in r.error for r in got)


def test_empty_chunk() -> None:
    checked = Validator().check_chunk(Chunk([], {"phoneNumber": []}))
    assert checked == ResultColumns([], [], [], [], [], [], [])


def test_rows_with_a_problem_take_the_per_row_path() -> None:
    cells = {"phoneNumber": ["+14155550001", "+14155550001", "+14155550003"]}
    for name, value in (("trunkUsername", "u"), ("trunkPassword", PASSWORD)):
        cells[name] = [value] * 3
    cells["terminationSipURI"] = ["sip.telnyx.com"] * 3
    problem = "has 9 cells, the header has 8: is a delimiter inside an unquoted value?"
    chunk = Chunk([2, 3, 4], cells, ["", problem, ""])
    expected, got = both_paths([chunk])
    assert got == expected
    assert [r.status for r in got] == [Status.VALID, Status.INVALID, Status.VALID]
    assert got[1].error == problem  # not "duplicate of row 2": the row was not read whole


# --- random chunks -----------------------------------------------------------------------

PHONES = [
    "+14155550001",
    "+14155550002",
    "+1 (415) 555-0001",
    "004915112345678",
    "+49 (0) 151 12345678",
    "4155550001",
    "02079460958",
    "+0123",
    "+1234567890123456",
    "12",
    "=1+1",
    "+١٤١٥٥٥٥٠٠٠١",
]
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=140).map(str.strip)


def cells(name: str) -> st.SearchStrategy[str]:
    if name in ("phoneNumber", "outboundPhoneNumber"):
        return st.one_of(st.sampled_from(PHONES), st.just(""), TEXT)
    if name == "terminationSipURI":
        return st.one_of(st.sampled_from(["sip.telnyx.com", "sip:a@b.c:5060", "x y"]), TEXT)
    return st.one_of(st.sampled_from(["", "u", "x" * 128, "x" * 129]), TEXT)


@st.composite
def chunks(draw: st.DrawFn) -> tuple[list[Chunk], dict[str, str], str | None]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1))
    size = draw(st.integers(min_value=0, max_value=12))
    rows = sorted(draw(st.lists(st.integers(2, 60), min_size=size, max_size=size, unique=True)))
    data = {name: draw(st.lists(cells(name), min_size=size, max_size=size)) for name in names}
    problems = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(["", "bad"]), min_size=size, max_size=size))
    )
    cut = draw(st.integers(0, size))
    defaults = draw(
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["+14155550001", "u", "sip.x.com"]))
    )
    region = draw(st.sampled_from([None, "US", "DE"]))
    parts = [
        Chunk(
            rows[part],
            {name: column[part] for name, column in data.items()},
            None if problems is None else problems[part],
        )
        for part in (slice(0, cut), slice(cut, size))
    ]
    return parts, defaults, region


@SETTINGS
@given(chunks())
def test_random_chunks_agree_with_rows(
    case: tuple[list[Chunk], dict[str, str], str | None],
) -> None:
    parts, defaults, region = case
    expected, got = both_paths(parts, defaults=defaults, default_region=region)
    assert got == expected


# --- the results file --------------------------------------------------------------------

TRICKY = [
    "",
    "+14155550001",
    "-1.5",
    "+",
    "-",
    "+1x",
    "=cmd",
    "@u",
    "\tx",
    "\rx",
    "a,b",
    'say "hi"',
    "line\nbreak",
    "cr\rin",
    "+١٢٣",
    "x  y",
    " lead",
]


def result_columns(results: list[RowResult]) -> ResultColumns:
    return ResultColumns(
        [r.row for r in results],
        [r.phone_number for r in results],
        [r.status.value for r in results],
        [r.sip_phone_number for r in results],
        ["" for _ in results],
        [r.attempts for r in results],
        [r.error for r in results],
    )


def sliced(columns: ResultColumns, part: slice) -> ResultColumns:
    return ResultColumns(
        columns.row[part],
        columns.phone_number[part],
        columns.status[part],
        columns.sip_phone_number[part],
        columns.http_status[part],
        columns.attempts[part],
        columns.error[part],
    )


def written_by_results_writer(path: Path, results: list[RowResult]) -> bytes:
    writer = ResultsWriter(path)
    writer.finalize(results)
    return path.read_bytes()


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(TRICKY), TEXT),
            st.sampled_from([Status.VALID, Status.INVALID]),
            st.one_of(st.sampled_from(TRICKY), TEXT),
            st.one_of(st.sampled_from(TRICKY), TEXT),
        ),
        max_size=10,
    ),
    st.integers(0, 10),
)
def test_columns_file_is_byte_for_byte_the_rows_file(
    tmp_path_factory: pytest.TempPathFactory,
    cells: list[tuple[str, Status, str, str]],
    cut: int,
) -> None:
    tmp = tmp_path_factory.mktemp("w")
    results = [RowResult(i + 2, p, s, sip, None, 0, e) for i, (p, s, sip, e) in enumerate(cells)]
    columns = result_columns(results)
    parts = [sliced(columns, slice(0, cut)), sliced(columns, slice(cut, None))]
    counts = write_results_columns(tmp / "columns.csv", parts)
    assert (tmp / "columns.csv").read_bytes() == written_by_results_writer(
        tmp / "rows.csv", results
    )
    assert counts["valid"] == sum(r.status is Status.VALID for r in results)
    assert counts["invalid"] == len(results) - counts["valid"]
    assert sum(counts.values()) == len(results)


def test_columns_file_is_private_and_replaced_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("earlier run\n")
    columns = result_columns([RowResult(2, "+14155550001", Status.VALID)])

    def broken() -> Iterator[ResultColumns]:
        yield columns
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_results_columns(path, broken())
    assert path.read_text() == "earlier run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left

    write_results_columns(path, [columns])
    assert path.read_text() == ",".join(RESULT_COLUMNS) + "\n2,+14155550001,valid,,,0,\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- through the CLI -------------------------------------------------------------------------


def test_cli_dry_run_matches_the_per_row_path(varied_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    log = tmp_path / "run.log"
    summary = tmp_path / "summary.json"
    code = main(
        [
            "run",
            str(varied_file),
            "--dry-run",
            "--no-progress",
            "--default-region",
            "US",
            "--output",
            str(out),
            "--log-file",
            str(log),
            "--summary-json",
            str(summary),
        ]
    )
    assert code == 1
    validator = Validator(default_region="US")
    with open_table(varied_file) as opened:
        expected = [per_row(validator, raw) for raw in opened.rows()]
    assert out.read_bytes() == written_by_results_writer(tmp_path / "rows.csv", expected)
    data = json.loads(summary.read_text())
    assert data["rows"] == len(expected)
    assert data["counts"]["valid"] == sum(r.status is Status.VALID for r in expected)
    assert data["exit_code"] == 1
    assert data["dry_run"] is True
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert " start " in lines[0]
    assert " end exit=1 " in lines[1]
    assert not (tmp_path / "out.csv.journal").exists()
    assert PASSWORD not in out.read_text() + log.read_text()


def test_cli_dry_run_all_valid_exits_0_and_ignores_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(
        "phoneNumber,trunkUsername,trunkPassword,terminationSipURI\n"
        f"+14155550001,u,{PASSWORD},sip.telnyx.com\n"
        f"+14155550002,u,{PASSWORD},sip.telnyx.com\n"
    )
    code = main(["run", str(path), "--dry-run", "--no-progress", "--resume"])
    assert code == 0
    assert "--resume is ignored" in capsys.readouterr().err
    text = (tmp_path / "ok.results.csv").read_text()
    assert text.splitlines()[1:] == ["2,+14155550001,valid,,,0,", "3,+14155550002,valid,,,0,"]


def test_plainly_valid_rows_skip_the_per_row_path(
    varied_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_table(varied_file, chunk_rows=30) as opened:
        chunk = next(opened.chunks())
    chunk.cells["outboundPhoneNumber"][:10] = [""] * 10

    def no_check(self: Validator, raw: RawRow) -> Job | RowResult:
        raise AssertionError(f"row {raw.row} took the per-row path")

    monkeypatch.setattr(Validator, "check", no_check)
    checked = Validator(default_region="US").check_chunk(chunk)
    assert len(checked.status) == len(chunk.rows) > 20
    assert set(checked.status) == {"valid"}
