"""Spreadsheets as people have them: every workbook format, title rows, ragged rows,
stray bytes, huge cells, a file changed mid-run, --failed-rows and --output .xlsx."""

from __future__ import annotations

import csv
import os
import stat
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from workbooks import WRITERS

from bulk_import import load
from bulk_import.cli import main
from bulk_import.errors import InputChangedError, InputFileError, MissingColumnsError
from bulk_import.load import open_table
from bulk_import.runner import RunOptions, run_import

from support import API_KEY, PASSWORD, read_results

TEMPLATE = ["phoneNumber", "trunkUsername", "trunkPassword", "terminationSipURI", "friendlyName"]


@pytest.fixture
def api(sandbox_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SIGMAMIND_API_KEY", API_KEY)
    server = sandbox_factory(api_key=API_KEY)
    server.key = API_KEY
    return server


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["run", *args, "--no-progress"])
    return code, capsys.readouterr().err


# --- every workbook format reads the same ------------------------------------------------


def test_every_format_gives_the_same_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = {}
    for suffix, write in WRITERS.items():
        path = write(tmp_path / f"in{suffix}")
        out = tmp_path / f"out{suffix}.csv"
        code, err = _run([str(path), "--dry-run", "-o", str(out), "--default-region", "US"], capsys)
        assert code == 1, err
        texts[suffix] = out.read_text()
    assert set(texts) == {".xlsx", ".xls", ".xlsb", ".ods"}
    assert texts[".xls"] == texts[".xlsx"] == texts[".ods"] == texts[".xlsb"]
    rows = {r["row"]: r for r in read_results(tmp_path / "out.xlsx.csv")}
    assert list(rows) == ["4", "5", "6", "7", "8", "10"]  # header on 3, row 9 blank
    assert rows["4"]["phone_number"] == "+14155552671"  # a number cell: its digits
    assert rows["4"]["status"] == "valid"
    assert rows["5"]["phone_number"] == "+14155552672"
    assert rows["7"]["status"] == "invalid"
    assert "'007'" in rows["7"]["error"]  # leading zeros kept as written
    assert "'2024-03-01'" in rows["8"]["error"]  # a date cell as the text it shows
    assert rows["10"]["phone_number"] == "+14155552676"


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_every_format_reads_cells_as_text(tmp_path: Path, suffix: str) -> None:
    with open_table(WRITERS[suffix](tmp_path / f"in{suffix}")) as table:
        assert table.header_row == 3
        assert table.detected
        got = {r.row: r.values for r in table.rows()}
        assert got[4]["phoneNumber"] == "14155552671"
        assert got[5]["trunkUsername"] == "007"
        assert got[5]["friendlyName"] == "2024-03-01"
        assert got[6]["trunkUsername"] == "12345"
        assert got[10]["friendlyName"] == "1.5"
        assert "nan" not in str(got)


def test_header_row_option_overrides(tmp_path: Path) -> None:
    path = WRITERS[".xlsx"](tmp_path / "in.xlsx")
    with open_table(path, header_row=4) as table:  # a data row taken as the header
        assert table.header_row == 4
        assert next(r.row for r in table.rows()) == 5


def test_title_row_in_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "Numbers for ACME; batch 3\n\n"
        + ",".join(TEMPLATE)
        + "\n+14155550001,u,p,sip.x.com,a\n\n+14155550002,u,p,sip.x.com,b\n"
    )
    code, err = _run([str(path), "--dry-run"], capsys)
    assert code == 0, err
    rows = read_results(tmp_path / "in.results.csv")
    assert [r["row"] for r in rows] == ["4", "6"]


def test_missing_columns_say_what_was_the_header_and_which_sheet_has_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Readme"
    first.append(["How to use this file"])
    first.append(["Fill the sheet Numbers"])
    book.create_sheet("Numbers").append(TEMPLATE)
    path = tmp_path / "in.xlsx"
    book.save(path)
    code, err = _run([str(path), "--dry-run"], capsys)
    assert code == 2
    assert "row 1 of sheet 'Readme' was taken as the header" in err
    assert "'Numbers'" in err
    assert "--sheet" in err
    with pytest.raises(MissingColumnsError):
        run_import(RunOptions(file=path, dry_run=True), say=lambda _: None)


# --- row-level problems stay at row level ---------------------------------------------------


def test_ragged_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str], api: Any) -> None:
    lines = [",".join(TEMPLATE)]
    lines.append(f"+14155550101,u,{PASSWORD},sip.telnyx.com,a")
    lines.append(f"+14155550102,u,{PASSWORD},sip.telnyx.com,Smith, John,extra")  # row 3
    lines.append(f"+14155550103,u,{PASSWORD},sip.telnyx.com,c")
    lines.append(f"+14155550104,u,{PASSWORD},sip.telnyx.com")  # row 5: one too few
    lines.append(f"+14155550105,u,{PASSWORD},sip.telnyx.com,e,,,")  # trailing empty cells
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n")
    code, err = _run([str(path), "--base-url", api.url], capsys)
    assert code == 1, err
    rows = {r["row"]: r for r in read_results(tmp_path / "in.results.csv")}
    assert rows["3"]["status"] == "invalid"
    assert rows["3"]["error"] == (
        "has 7 cells, the header has 5: is a delimiter inside an unquoted value?"
    )
    assert rows["3"]["attempts"] == "0"
    assert {rows[r]["status"] for r in ("2", "4", "5", "6")} == {"imported"}
    assert PASSWORD not in (tmp_path / "in.results.csv").read_text()


def test_trailing_delimiter_on_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "+14155550001,u,p,sip.x.com,a,\n+14155550002,u,p,sip.x.com,b,\n"
    for header in (",".join(TEMPLATE), ",".join(TEMPLATE) + ","):  # without and with
        path = tmp_path / "in.csv"
        path.write_text(header + "\n" + rows)
        code, err = _run([str(path), "--dry-run"], capsys)
        assert code == 0, err
        assert "warning" not in err


def test_mostly_utf8_file_with_a_stray_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.csv"
    good = "+14155550001,u,pässwörd,sip.x.com,Café Zürich\n"
    bad = b"+14155550002,u,p\xe4ss,sip.x.com,x\n"
    path.write_bytes((",".join(TEMPLATE) + "\n" + good).encode() + bad + good.encode())
    out = tmp_path / "out.csv"
    code, err = _run([str(path), "--dry-run", "-o", str(out)], capsys)
    assert code == 1, err
    rows = {r["row"]: r for r in read_results(out)}
    assert rows["2"]["status"] == "valid"
    assert rows["3"]["status"] == "invalid"
    assert "not UTF-8" in rows["3"]["error"]
    assert "--encoding" in rows["3"]["error"]
    assert rows["4"]["error"] == "duplicate of row 2" or "phoneNumber" in rows["4"]["error"]
    with open_table(path) as table:
        assert next(table.rows()).values["friendlyName"] == "Café Zürich"  # no mojibake


def test_huge_cell_makes_its_row_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.csv"
    with path.open("w") as f:
        f.write(",".join(TEMPLATE) + "\n+14155550001,u,p,sip.x.com,a\n")
        f.write("+14155550002,u,p,sip.x.com," + "x" * 3_000_000 + "\n")
        f.write("+14155550003,u,p,sip.x.com,c\n")
    out = tmp_path / "out.csv"
    code, err = _run([str(path), "--dry-run", "-o", str(out)], capsys)
    assert code == 1, err
    rows = {r["row"]: r for r in read_results(out)}
    assert rows["3"]["status"] == "invalid"
    assert "longer than" in rows["3"]["error"]
    assert rows["2"]["status"] == rows["4"]["status"] == "valid"


def test_huge_cell_in_a_workbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell over the cap makes its row invalid; a part that would expand past the budget
    (a few cells of hundreds of MB, highly compressed) is refused before calamine reads it."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(TEMPLATE)
    sheet.append(["+14155550001", "u", "p", "sip.x.com", "a"])
    sheet.append(["+14155550002", "u", "p", "sip.x.com", "PLACEHOLDER"])
    sheet.append(["+14155550003", "u", "p", "sip.x.com", "c"])
    small = tmp_path / "small.xlsx"
    book.save(small)
    path = tmp_path / "in.xlsx"  # writers cut cells at 32,767 characters; a hostile file won't
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info.filename, data.replace(b"PLACEHOLDER", b"x" * 2_000_000))
    with open_table(path) as opened:
        got = list(opened.rows())
    assert [r.problem for r in got][0::2] == ["", ""]
    assert got[1].problem.startswith("has a cell longer than 131072 characters")
    monkeypatch.setattr(load, "_MAX_PART", 1_000_000)
    with pytest.raises(InputFileError, match=r"expands to .* MB .*not read"):
        open_table(path)


def test_many_unknown_columns_give_a_short_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.csv"
    extra = [f"column number {i}" for i in range(5000)]
    path.write_text(",".join(TEMPLATE + extra) + "\n")
    code, err = _run([str(path), "--dry-run"], capsys)
    assert code == 0, err
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert "5000 column(s)" in warning
    assert "'column number 0'" in warning
    assert "4995 more" in warning
    assert len(warning) < 400


# --- the input changing during a run --------------------------------------------------------


def test_truncated_input_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    write_csv(path, TEMPLATE, [[f"+1415555{i:04d}", "u", "p", "s.x.com", ""] for i in range(50)])
    with open_table(path, chunk_rows=10) as table:
        chunks = table.chunks()
        next(chunks)
        with path.open("r+") as f:
            f.truncate(200)
        with pytest.raises(InputChangedError, match=r"changed while it was being read.*row 12"):
            list(chunks)


def test_input_truncated_mid_run_stops_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], api: Any
) -> None:
    path = tmp_path / "in.csv"
    rows = [[f"+1415555{i:04d}", "u", PASSWORD, "sip.telnyx.com", ""] for i in range(30_000)]
    write_csv(path, TEMPLATE, rows)
    seen = threading.Event()

    def truncate() -> None:
        while not (tmp_path / "in.results.csv.journal").exists():
            time.sleep(0.01)
        time.sleep(0.3)
        with path.open("r+") as f:
            f.truncate(2000)
        seen.set()

    thread = threading.Thread(target=truncate)
    thread.start()
    code, err = _run([str(path), "--base-url", api.url, "--concurrency", "4"], capsys)
    thread.join()
    assert seen.is_set()
    assert code == 3, err
    assert "changed while it was being read" in err
    assert "were not read" in err


# --- --failed-rows ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_failed_rows_fixed_and_fed_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], api: Any, suffix: str
) -> None:
    path = tmp_path / "in.csv"
    header = ["Notes", *TEMPLATE]
    write_csv(
        path,
        header,
        [
            ["n1", "+14155550201", "u", PASSWORD, "sip.telnyx.com", "a"],
            ["n2", "4155550202", "u", PASSWORD, "sip.telnyx.com", "b"],  # no +
            ["n3", "+14155550203", "u", PASSWORD, "sip.telnyx.com", "c"],
            ["n4", "+14155550204", "u", "", "sip.telnyx.com", "d"],  # no password
        ],
    )
    failed = tmp_path / f"failed{suffix}"
    code, err = _run([str(path), "--base-url", api.url, "--failed-rows", str(failed)], capsys)
    assert code == 1, err
    assert stat.S_IMODE(os.stat(failed).st_mode) == 0o600
    with open_table(failed) as table:
        assert table.header == ["error", *header]
        got = list(table.records())
    assert [cells[1] for _, cells in got] == ["n2", "n4"]
    assert "phoneNumber" in got[0][1][0]
    # fix them and feed the file back
    fixed = tmp_path / "fixed.csv"
    rows = [cells for _, cells in got]
    rows[0][2] = "+14155550202"
    rows[1][4] = PASSWORD
    write_csv(fixed, ["error", *header], rows)
    code, err = _run([str(fixed), "--base-url", api.url], capsys)
    assert code == 0, err
    statuses = [r["status"] for r in read_results(tmp_path / "fixed.results.csv")]
    assert statuses == ["imported", "imported"]


def test_failed_rows_never_follows_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.csv"
    write_csv(path, TEMPLATE, [["bad", "u", "p", "s.x.com", ""]])
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "failed.csv"
    link.symlink_to(target)
    code, err = _run([str(path), "--dry-run", "--failed-rows", str(link)], capsys)
    assert code == 2, err  # an output that is a link is refused before anything is written
    assert "symbolic link" in err
    assert target.read_text() == "keep me"
    assert link.is_symlink()


# --- --output results.xlsx ---------------------------------------------------------------


def test_xlsx_results(tmp_path: Path, capsys: pytest.CaptureFixture[str], api: Any) -> None:
    path = tmp_path / "in.csv"
    write_csv(
        path,
        TEMPLATE,
        [
            ["+14155550301", "u", PASSWORD, "sip.telnyx.com", "a"],
            ["4155550302", "u", PASSWORD, "sip.telnyx.com", "b"],
        ],
    )
    out = tmp_path / "results.xlsx"
    code, err = _run([str(path), "--base-url", api.url, "-o", str(out)], capsys)
    assert code == 1, err
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["results", "summary"]
    sheet = book["results"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["row", "phone_number", "status"]
    assert values[1][1] == "+14155550301"
    assert values[1][2] == "imported"
    assert values[2][2] == "invalid"
    assert sheet["B2"].data_type == "s"
    assert sheet["A2"].value == 2  # the row number: a number, for sorting
    fills = {sheet["C2"].fill.fgColor.rgb, sheet["C3"].fill.fgColor.rgb}
    assert len(fills) == 2  # one colour per status
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref
    summary = {r[0].value: r[1].value for r in book["summary"].iter_rows()}
    assert summary["imported"] == 1
    assert summary["invalid"] == 1
    assert isinstance(summary["requests"], int)
    assert summary["requests"] >= 1
    everything = str(list(book["summary"].values)) + str(values)
    assert PASSWORD not in everything
    assert api.key not in everything
    # a resume renders it again, from the journal
    code, err = _run([str(path), "--base-url", api.url, "-o", str(out), "--resume"], capsys)
    assert code == 1, err
    assert openpyxl.load_workbook(out)["results"]["C2"].value == "imported"
    # and without its journal, from the workbook itself: nothing is sent again
    for leftover in tmp_path.glob("results.xlsx.journal*"):
        leftover.unlink()
    before = api.state.requests
    code, err = _run([str(path), "--base-url", api.url, "-o", str(out), "--resume"], capsys)
    assert code == 1, err
    assert openpyxl.load_workbook(out)["results"]["C2"].value == "imported"
    assert api.state.requests == before


def test_xlsx_results_of_a_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.csv"
    write_csv(path, TEMPLATE, [["+14155550301", "u", "p", "s.x.com", "a"]])
    out = tmp_path / "r.xlsx"
    code, err = _run([str(path), "--dry-run", "-o", str(out)], capsys)
    assert code == 0, err
    book = openpyxl.load_workbook(out)
    assert book["results"]["C2"].value == "valid"
    assert {r[0].value for r in book["summary"].iter_rows()} >= {"valid", "rows"}


# --- one parser for both paths ------------------------------------------------------------


MESSY = (
    "Numbers, batch 3\n\n"
    + ",".join(TEMPLATE)
    + ",Notes\n"
    + '+14155550001,u,p,sip.x.com,"two\nlines",n\n'
    + "\n"
    + "+14155550002,u,p,sip.x.com,Smith, John,x,y\n"
    + ",,,,,only a note\n"
    + '+14155550003,"u ""q""",p,sip.x.com\n'
    + ",,,,,\n"
    + " +1 415 555 0004 ,u,p,sip.x.com,a,,,\n"
)


def test_rows_and_chunks_read_the_same(tmp_path: Path) -> None:
    """The streaming path (``rows``) and the dry run's ``chunks`` agree exactly."""
    path = tmp_path / "in.csv"
    path.write_text(MESSY)
    for size in (1, 2, 100):
        with open_table(path, chunk_rows=size) as table:
            streamed = [(r.row, r.values, r.problem) for r in table.rows()]
            chunked = []
            for chunk in table.chunks():
                for i, row in enumerate(chunk.rows):
                    values = {n: cells[i] for n, cells in chunk.cells.items() if cells[i]}
                    problem = chunk.problems[i] if chunk.problems is not None else ""
                    chunked.append((row, values, problem))
            assert streamed == chunked
    assert [row for row, _, _ in streamed] == [4, 6, 7, 8, 10]
    assert streamed[0][1]["friendlyName"] == "two\nlines"
    assert streamed[1][2].startswith("has 8 cells, the header has 6")
    assert streamed[3][1]["trunkUsername"] == 'u "q"'
    assert streamed[4][1]["phoneNumber"] == "+1 415 555 0004"


def test_a_run_that_sends_never_loads_pandas(tmp_path: Path) -> None:
    """Start-up: the streaming path reads the CSV with the stdlib (pandas costs ~0.4 s)."""
    import subprocess
    import sys

    path = tmp_path / "in.csv"
    path.write_text(MESSY)
    script = (
        "import sys\n"
        "from bulk_import.cli import main\n"
        f"code = main(['run', {str(path)!r}, '--sandbox', '--no-progress', '--quiet'])\n"
        "assert code == 1, code\n"
        "loaded = [m for m in ('pandas', 'numpy', 'openpyxl') if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
