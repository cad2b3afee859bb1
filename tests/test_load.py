"""bulk_import.load: files -> text rows with spreadsheet row numbers.

docs/contract.md, "The input file".
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from bulk_import import load
from bulk_import.cli import parse_mapping
from bulk_import.errors import InputFileError, UsageError
from bulk_import.load import Table, match_header, open_table
from bulk_import.models import RawRow

WORDS = "Phone Number,Trunk Username,Trunk Password,Termination SIP URI,Friendly Name"


def write(tmp_path: Path, name: str, data: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def xlsx(
    tmp_path: Path,
    rows: dict[int, list[Any]],
    name: str = "in.xlsx",
    **sheets: dict[int, list[Any]],
) -> Path:
    """A workbook whose first sheet has ``rows`` at the given row numbers (1-based)."""
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "Numbers"
    for title, content in {"Numbers": rows, **sheets}.items():
        sheet = first if title == "Numbers" else book.create_sheet(title)
        for number, values in content.items():
            for column, value in enumerate(values, start=1):
                sheet.cell(row=number, column=column, value=value)
    path = tmp_path / name
    book.save(path)
    return path


def rows(table: Table) -> list[tuple[int, dict[str, str]]]:
    return [(r.row, r.values) for r in table.rows()]


def rows_closed(table: Table) -> list[tuple[int, dict[str, str]]]:
    """``rows(table)``, then the table closed."""
    with table:
        return rows(table)


# --- header matching -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("phoneNumber", "phoneNumber"),
        ("phone_number", "phoneNumber"),
        ("Phone Number", "phoneNumber"),
        ("  PHONE-NUMBER ", "phoneNumber"),
        ("Phone", "phoneNumber"),
        ("Trunk Username", "trunkUsername"),
        ("Username", "trunkUsername"),
        ("trunk_password", "trunkPassword"),
        ("Password", "trunkPassword"),
        ("Termination SIP URI", "terminationSipURI"),
        ("terminationSipUri", "terminationSipURI"),
        ("Termination URI", "terminationSipURI"),
        ("SIP URI", "terminationSipURI"),
        ("Friendly Name", "friendlyName"),
        ("Inbound Agent ID", "inboundAgentId"),
        ("outbound_agent_id", "outboundAgentId"),
        ("Outbound Phone Number", "outboundPhoneNumber"),
        ("Notes", None),
        ("", None),
        ("Phone Numbers", None),
    ],
)
def test_match_header(header: str, field: str | None) -> None:
    assert match_header(header) == field


def test_parse_mapping_accepts_every_field_form() -> None:
    assert parse_mapping(
        ["Mobile=phone_number", "Trunk = Trunk Username", "URL=terminationSipURI"]
    ) == {
        "Mobile": "phoneNumber",
        "Trunk": "trunkUsername",
        "URL": "terminationSipURI",
    }


def test_parse_mapping_header_may_contain_equals() -> None:
    assert parse_mapping(["a=b=phoneNumber"]) == {"a=b": "phoneNumber"}


@pytest.mark.parametrize("item", ["Mobile", "=phoneNumber", "Mobile=", "Mobile=mobile"])
def test_parse_mapping_rejects_bad_items(item: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_mapping([item])
    assert repr(item) in str(caught.value)
    assert "phoneNumber, trunkUsername" in str(caught.value)


# --- CSV -------------------------------------------------------------------------------


def test_bom_and_semicolons(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "\ufeffPhone Number;Trunk Username\n+14155552671;alice\n")
    with open_table(path) as table:
        assert table.header == ["Phone Number", "Trunk Username"]
        assert table.columns == {"phoneNumber": "Phone Number", "trunkUsername": "Trunk Username"}
        assert rows(table) == [(2, {"phoneNumber": "+14155552671", "trunkUsername": "alice"})]


def test_cp1252_falls_back(tmp_path: Path) -> None:
    path = write(
        tmp_path, "in.csv", "Phone Number,Friendly Name\n+14155552671,Müller €\n", "cp1252"
    )
    assert rows_closed(open_table(path)) == [
        (2, {"phoneNumber": "+14155552671", "friendlyName": "Müller €"})
    ]


def test_utf8_without_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Friendly Name\n+14155552671,Müller\n")
    with open_table(path) as opened:
        assert rows(opened)[0][1]["friendlyName"] == "Müller"


def test_utf16_with_bom_tab_separated(tmp_path: Path) -> None:
    """Excel's "Unicode Text" export."""
    path = write(
        tmp_path,
        "in.txt",
        "\ufeffPhone Number\tFriendly Name\r\n+14155552671\tMüller\r\n",
        "utf-16-le",
    )
    assert rows_closed(open_table(path)) == [
        (2, {"phoneNumber": "+14155552671", "friendlyName": "Müller"})
    ]


def test_encoding_override(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Friendly Name\n+14155552671,Müller\n")
    with open_table(path, encoding="latin-1") as opened:
        assert rows(opened)[0][1]["friendlyName"] == "MÃ¼ller"


def test_wrong_encoding_override_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Friendly Name\n+14155552671,Müller\n", "cp1252")
    with (
        pytest.raises(InputFileError, match="try --encoding") as caught,
        open_table(path, encoding="utf-8") as opened,
    ):
        list(opened.rows())
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_unknown_encoding_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number\n+14155552671\n")
    with pytest.raises(UsageError, match="unknown encoding 'klingon'"):
        open_table(path, encoding="klingon")


@pytest.mark.parametrize(
    ("name", "sep"), [("in.tsv", "\t"), ("in.txt", "\t"), ("in.csv", "|"), ("in.csv", ";")]
)
def test_delimiters(tmp_path: Path, name: str, sep: str) -> None:
    text = sep.join(["Phone Number", "Termination SIP URI", "Friendly Name"]) + "\n"
    text += sep.join(["+14155552671", "sip.telnyx.com", "Smith, Jane"]) + "\n"
    assert rows_closed(open_table(write(tmp_path, name, text))) == [
        (
            2,
            {
                "phoneNumber": "+14155552671",
                "terminationSipURI": "sip.telnyx.com",
                "friendlyName": "Smith, Jane",
            },
        )
    ]


def test_comma_file_with_semicolons_in_cells(tmp_path: Path) -> None:
    text = "Phone Number,Termination SIP URI\n"
    text += "+14155552671,sip:pbx.example.com:5060;transport=tls\n" * 3
    with open_table(write(tmp_path, "in.csv", text)) as table:
        assert rows(table)[0][1]["terminationSipURI"] == "sip:pbx.example.com:5060;transport=tls"


def test_single_column_file(tmp_path: Path) -> None:
    assert rows_closed(
        open_table(write(tmp_path, "in.csv", "phoneNumber\n+14155552671\n+14155552672\n"))
    ) == [
        (2, {"phoneNumber": "+14155552671"}),
        (3, {"phoneNumber": "+14155552672"}),
    ]


def test_all_forms_of_headers(tmp_path: Path) -> None:
    text = "phone_number,TRUNK USERNAME,trunkPassword,Termination-SIP-URI,Notes,Extra Info\n"
    with open_table(write(tmp_path, "in.csv", text)) as table:
        assert table.columns == {
            "phoneNumber": "phone_number",
            "trunkUsername": "TRUNK USERNAME",
            "trunkPassword": "trunkPassword",
            "terminationSipURI": "Termination-SIP-URI",
        }
        assert table.ignored == ["Notes", "Extra Info"]


def test_values_are_text_as_written(tmp_path: Path) -> None:
    text = "Phone Number,Trunk Username,Trunk Password,Friendly Name,"
    text += "Inbound Agent ID,Outbound Agent ID\n"
    text += "00123,N/A,NA,null,none,1.50E+10\n"
    assert rows_closed(open_table(write(tmp_path, "in.csv", text))) == [
        (
            2,
            {
                "phoneNumber": "00123",
                "trunkUsername": "N/A",
                "trunkPassword": "NA",
                "friendlyName": "null",
                "inboundAgentId": "none",
                "outboundAgentId": "1.50E+10",
            },
        )
    ]


def test_cells_are_trimmed_and_empty_cells_absent(tmp_path: Path) -> None:
    text = "Phone Number,Trunk Username,Friendly Name\n  +14155552671 ,\u00a0alice\u00a0,   \n"
    assert rows_closed(open_table(write(tmp_path, "in.csv", text))) == [
        (2, {"phoneNumber": "+14155552671", "trunkUsername": "alice"})
    ]


def test_blank_rows_are_dropped_but_counted(tmp_path: Path) -> None:
    text = "\n\nPhone Number,Notes\n+14155550001,a\n\n,\n  ,  \n+14155550002,b\n,only a note\n\n"
    with open_table(write(tmp_path, "in.csv", text), chunk_rows=2) as table:
        assert rows(table) == [
            (4, {"phoneNumber": "+14155550001"}),
            (8, {"phoneNumber": "+14155550002"}),
            (9, {}),  # not blank: it has a cell in an ignored column
        ]


def test_quoted_newline_is_one_row(tmp_path: Path) -> None:
    text = 'Phone Number,Friendly Name\n+14155550001,"two\nlines"\n+14155550002,x\n'
    assert rows_closed(open_table(write(tmp_path, "in.csv", text))) == [
        (2, {"phoneNumber": "+14155550001", "friendlyName": "two\nlines"}),
        (3, {"phoneNumber": "+14155550002", "friendlyName": "x"}),
    ]


def test_chunks_shape(tmp_path: Path) -> None:
    lines = ["Phone Number,Friendly Name,Notes"] + [f"+1415555{i:04d},n{i},x" for i in range(5)]
    with open_table(write(tmp_path, "in.csv", "\n".join(lines) + "\n"), chunk_rows=2) as table:
        chunks = list(table.chunks())
        assert [len(c.rows) for c in chunks] == [2, 2, 1]
        assert all(list(c.cells) == ["phoneNumber", "friendlyName"] for c in chunks)
        assert all(len(cells) == len(c.rows) for c in chunks for cells in c.cells.values())
        assert [r for c in chunks for r in c.rows] == [2, 3, 4, 5, 6]
        assert all(isinstance(v, str) for c in chunks for v in c.cells["friendlyName"])
        assert all(c.problems is None for c in chunks)


def test_no_matched_columns(tmp_path: Path) -> None:
    with open_table(write(tmp_path, "in.csv", "Notes,Other\na,b\n,\n\nc,\n")) as table:
        assert table.columns == {}
        assert table.ignored == ["Notes", "Other"]
        assert rows(table) == [(2, {}), (5, {})]


def test_chunks_can_be_read_twice(tmp_path: Path) -> None:
    with open_table(write(tmp_path, "in.csv", "Phone Number\n+14155552671\n")) as table:
        assert rows(table) == rows(table) == [(2, {"phoneNumber": "+14155552671"})]


def test_first_chunk_comes_before_the_end_of_the_file(tmp_path: Path) -> None:
    lines = (
        ["Phone Number,Friendly Name"] + [f"+1415555{i:04d},n" for i in range(50)] + ["+1,a,b,c"]
    )
    with open_table(write(tmp_path, "in.csv", "\n".join(lines) + "\n"), chunk_rows=10) as table:
        chunks = table.chunks()
        assert len(next(chunks).rows) == 10  # the bad line 52 is not read yet
        last = list(chunks)[-1]
        assert last.problems is not None
        assert last.problems[-1] == (
            "has 4 cells, the header has 2: is a delimiter inside an unquoted value?"
        )


def test_long_cells(tmp_path: Path) -> None:
    long = "x" * 10_000
    path = write(tmp_path, "in.csv", f"Phone Number,Friendly Name\n+14155552671,{long}\n")
    with open_table(path) as opened:
        assert rows(opened)[0][1]["friendlyName"] == long


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    with open_table(write(tmp_path, "in.csv", WORDS + "\n")) as table:
        assert len(table.columns) == 5
        assert list(table.chunks()) == []
        assert list(table.rows()) == []


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n", b",,,\n;;\n"])
def test_empty_file_has_no_header_row(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InputFileError, match="has no header row"):
        open_table(write(tmp_path, "in.csv", data))


def test_ragged_row_with_too_many_cells(tmp_path: Path) -> None:
    """A row with a cell beyond the header is a row-level problem; the others go on."""
    text = "Phone Number,Friendly Name\n+14155550001,a\n+14155550002,b\n+1,x,y\n+14155550003\n"
    with open_table(write(tmp_path, "in.csv", text)) as opened:
        got = list(opened.rows())
    assert [(r.row, r.problem) for r in got] == [
        (2, ""),
        (3, ""),
        (4, "has 3 cells, the header has 2: is a delimiter inside an unquoted value?"),
        (5, ""),
    ]


def test_first_data_row_with_too_many_cells(tmp_path: Path) -> None:
    """pandas would silently take the first cell as an index; it must be a problem row."""
    text = "Phone Number,Friendly Name\n+14155550001,a,b\n+14155550002,b\n"
    with open_table(write(tmp_path, "in.csv", text)) as opened:
        got = list(opened.rows())
    assert got[0].problem.startswith("has 3 cells, the header has 2")
    assert got[1] == RawRow(3, {"phoneNumber": "+14155550002", "friendlyName": "b"})


def test_short_rows_are_padded(tmp_path: Path) -> None:
    text = "Phone Number,Trunk Username,Friendly Name\n+14155550001\n+14155550002,bob\n"
    assert rows_closed(open_table(write(tmp_path, "in.csv", text))) == [
        (2, {"phoneNumber": "+14155550001"}),
        (3, {"phoneNumber": "+14155550002", "trunkUsername": "bob"}),
    ]


def test_unclosed_quote(tmp_path: Path) -> None:
    text = 'Phone Number,Friendly Name\n+14155550001,"open\n+14155550002,b\n'
    with (
        pytest.raises(InputFileError, match="never closed"),
        open_table(write(tmp_path, "in.csv", text)) as opened,
    ):
        list(opened.rows())


def test_not_text(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="neither UTF-8 nor Windows-1252") as caught:
        open_table(write(tmp_path, "in.csv", b"Phone\n\x81\x8d\xff\xfe\n"))
    assert "--encoding" in str(caught.value)


def test_workbook_named_csv(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {1: ["Phone Number"]}).rename(tmp_path / "book.csv")
    with pytest.raises(InputFileError, match=r"looks like an Excel workbook.*rename it to \.xlsx"):
        open_table(path)


# --- mapping and header conflicts ------------------------------------------------------


def test_mapping_names_other_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Mobile,Carrier Host,Notes\n+14155552671,sip.telnyx.com,n\n")
    with open_table(
        path, mapping={"mobile": "phoneNumber", "Carrier Host": "terminationSipURI"}
    ) as table:
        assert table.columns == {"phoneNumber": "Mobile", "terminationSipURI": "Carrier Host"}
        assert table.ignored == ["Notes"]
        assert rows(table) == [
            (2, {"phoneNumber": "+14155552671", "terminationSipURI": "sip.telnyx.com"})
        ]


def test_mapping_wins_over_automatic_matching(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Mobile\n+14155550001,+14155550002\n")
    with open_table(path, mapping=parse_mapping(["Mobile=phone number"])) as table:
        assert table.columns == {"phoneNumber": "Mobile"}
        assert table.ignored == ["Phone Number"]
        assert rows(table) == [(2, {"phoneNumber": "+14155550002"})]


def test_mapping_to_a_missing_header(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Notes\n")
    with pytest.raises(
        InputFileError,
        match=r"'Mobile' that is not in the header; the header has: 'Phone Number', 'Notes'",
    ):
        open_table(path, mapping={"Mobile": "phoneNumber"})


def test_two_headers_for_one_field(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,phone_number\n+1,+2\n")
    with pytest.raises(
        InputFileError, match="'Phone Number' and 'phone_number' both mean phoneNumber"
    ):
        open_table(path)


def test_duplicate_and_empty_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Notes,,Notes,\n+14155552671,a,b,c,\n")
    with open_table(path) as table:
        assert table.header == ["Phone Number", "Notes", "", "Notes"]  # trailing empty dropped
        assert table.ignored == ["Notes"]
        assert rows(table) == [(2, {"phoneNumber": "+14155552671"})]


def test_matched_header_written_twice(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "Phone Number,Phone Number\n+1,+2\n")
    with pytest.raises(InputFileError, match="'Phone Number' twice"):
        open_table(path)


# --- files that are not there or not tables --------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file") as caught:
        open_table(tmp_path / "nope.csv")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputFileError, match="is a directory"):
        open_table(tmp_path / "dir.csv")


@pytest.mark.parametrize("name", ["in.json", "in"])
def test_unsupported_kinds(tmp_path: Path, name: str) -> None:
    with pytest.raises(
        InputFileError, match=r"reads \.csv, .*\.xlsx, \.xlsm, \.xlsb, \.xls and \.ods"
    ):
        open_table(write(tmp_path, name, "Phone Number\n"))


@pytest.mark.parametrize("data", [b"\x00\x01\x02junk" * 50, b"Phone Number\n+14155552671\n", b""])
def test_junk_named_xlsx(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(
        InputFileError, match="is it really an Excel or OpenDocument file"
    ) as caught:
        open_table(write(tmp_path, "in.xlsx", data))
    assert caught.value.__cause__ is not None


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "in.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(InputFileError, match="cannot be read as a workbook"):
        open_table(path)


# --- Excel -----------------------------------------------------------------------------


def test_xlsx_number_cells_are_digits(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        {
            1: [
                "Phone Number",
                "Trunk Username",
                "Friendly Name",
                "Inbound Agent ID",
                "Outbound Agent ID",
            ],
            2: [14155552671, 1.5, 14155552671.0, 123, True],
            3: ["+14155552672", dt.datetime(2024, 1, 2, 3, 4, 5), 1e20, 0.1, False],
            4: [1.4155552671e10, dt.date(2024, 1, 2), "00123", "N/A", "  text  "],
        },
    )
    assert rows_closed(open_table(path)) == [
        (
            2,
            {
                "phoneNumber": "14155552671",
                "trunkUsername": "1.5",
                "friendlyName": "14155552671",
                "inboundAgentId": "123",
                "outboundAgentId": "TRUE",
            },
        ),
        (
            3,
            {
                "phoneNumber": "+14155552672",
                "trunkUsername": "2024-01-02 03:04:05",
                "friendlyName": "100000000000000000000",
                "inboundAgentId": "0.1",
                "outboundAgentId": "FALSE",
            },
        ),
        (
            4,
            {
                "phoneNumber": "14155552671",
                "trunkUsername": "2024-01-02",
                "friendlyName": "00123",
                "inboundAgentId": "N/A",
                "outboundAgentId": "text",
            },
        ),
    ]


def test_xlsx_blank_rows_keep_numbering(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        {
            1: ["Phone Number", "Notes"],
            2: ["+14155550001"],
            3: [None, "   "],
            6: ["+14155550002"],
            9: [None, "n"],
        },
    )
    assert rows_closed(open_table(path, chunk_rows=2)) == [
        (2, {"phoneNumber": "+14155550001"}),
        (6, {"phoneNumber": "+14155550002"}),
        (9, {}),
    ]


@pytest.mark.parametrize("batch", [1, 2, 3, 2_000])
def test_xlsx_batches_keep_numbers_problems_and_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """A sheet is read ``BOOK_BATCH_ROWS`` rows at a time, column by column: every batch
    edge keeps the row numbers, the blank rows, a cell beyond the header and the number
    cells of a column that is text in other batches."""
    monkeypatch.setattr(load, "BOOK_BATCH_ROWS", batch)
    path = xlsx(
        tmp_path,
        {
            1: ["Title"],
            3: ["Phone Number", "Name"],
            4: ["+14155550001", "a"],
            5: [14155550002, 7],
            6: [None, None],
            7: ["+14155550003", "b", "stray"],
            8: [None, None, "   "],
            9: [None, None, "far"],
            10: ["+14155550004", dt.date(2024, 3, 1)],
        },
    )
    problem = "has 3 cells, the header has 2: is a delimiter inside an unquoted value?"
    want = [
        RawRow(4, {"phoneNumber": "+14155550001", "friendlyName": "a"}),
        RawRow(5, {"phoneNumber": "14155550002", "friendlyName": "7"}),
        RawRow(7, {"phoneNumber": "+14155550003", "friendlyName": "b"}, problem),
        RawRow(9, {}, problem),
        RawRow(10, {"phoneNumber": "+14155550004", "friendlyName": "2024-03-01"}),
    ]
    with open_table(path, chunk_rows=1_000) as opened:
        assert opened.header_row == 3
        assert list(opened.rows()) == want
        assert [c.raw_row(i) for c in opened.chunks() for i in range(len(c.rows))] == want
        records = list(opened.records())
    assert [row for row, _ in records] == [4, 5, 7, 9, 10]
    assert records[2][1] == ["+14155550003", "b", "stray"]


def test_xlsx_header_below_empty_rows(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {3: [None, "Phone Number"], 4: [None, "+14155550001"]})
    with open_table(path) as table:
        assert table.header == ["Phone Number"]  # calamine starts at the first used column
        assert table.header_row == 3
        assert rows(table) == [(4, {"phoneNumber": "+14155550001"})]


def test_xlsx_formula_cell_is_not_read_as_its_formula(tmp_path: Path) -> None:
    """data_only: a formula cell gives its cached value (none when openpyxl wrote it)."""
    path = xlsx(tmp_path, {1: ["Phone Number", "Friendly Name"], 2: ["+14155550001", "=1+2"]})
    with open_table(path) as opened:
        assert rows(opened) == [(2, {"phoneNumber": "+14155550001"})]


def test_xlsx_sheet_option(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {1: ["Notes"]}, Second={1: ["Phone Number"], 2: ["+14155550001"]})
    with open_table(path) as opened:
        assert opened.columns == {}
    with open_table(path, sheet="Second") as opened:
        assert rows(opened) == [(2, {"phoneNumber": "+14155550001"})]


def test_xlsx_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {1: ["Notes"]}, Second={1: ["Phone Number"]})
    with pytest.raises(
        InputFileError, match=r"has no sheet 'Third'; its sheets are: 'Numbers', 'Second'"
    ):
        open_table(path, sheet="Third")


def test_xlsx_empty_sheet_has_no_header_row(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="has no header row"):
        open_table(xlsx(tmp_path, {}))


def test_xlsx_header_only(tmp_path: Path) -> None:
    with open_table(xlsx(tmp_path, {1: WORDS.split(",")})) as table:
        assert len(table.columns) == 5
        assert list(table.rows()) == []


def test_xlsm_is_read(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {1: ["Phone Number"], 2: ["+14155550001"]}, name="in.xlsm")
    with open_table(path) as opened:
        assert rows(opened) == [(2, {"phoneNumber": "+14155550001"})]


def test_xlsx_cells_beyond_the_header_make_the_row_invalid(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        {1: ["Phone Number", "Name"], 2: ["+14155550001", "a", "stray"], 3: ["+14155550002"]},
    )
    with open_table(path) as opened:
        got = list(opened.rows())
    assert (
        got[0].problem == "has 3 cells, the header has 2: is a delimiter inside an unquoted value?"
    )
    assert got[1] == RawRow(3, {"phoneNumber": "+14155550002"})


def test_rows_are_rawrows(tmp_path: Path) -> None:
    with open_table(write(tmp_path, "in.csv", "Phone Number\n+14155550001\n")) as table:
        assert list(table.rows()) == [RawRow(2, {"phoneNumber": "+14155550001"})]


def test_estimated_rows_counts_csv_lines(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("phoneNumber,trunkUsername\n+14155550001,u\n\n+14155550002,u\n")
    with open_table(path) as opened:
        assert opened.estimated_rows() == 3  # blank lines count: an estimate
    with open_table(Path(__file__).parent.parent / "samples" / "phone_numbers.xlsx") as opened:
        assert opened.estimated_rows() == 20


def test_a_record_the_csv_reader_refuses_is_a_row_problem(tmp_path: Path) -> None:
    """A quoted cell with text after its closing quote (the csv reader's error) stands as
    its row's problem; the rows around it are read."""
    path = tmp_path / "stray.csv"
    path.write_text(
        'phoneNumber,trunkUsername\n+14155550100,a\n"+14155550101"x,b\n+14155550102,c\n'
    )
    with open_table(path) as table:
        rows = list(table.rows())
    assert [r.row for r in rows] == [2, 3, 4]
    assert rows[1].problem.startswith("has a quoted cell with text after its closing quote")
    assert rows[1].values == {}
    assert not rows[0].problem
    assert not rows[2].problem
