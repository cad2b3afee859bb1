"""A corpus of bad input files through the whole CLI: a clear message, never a traceback.

Each file ends in exit 2 (the file can't be used; nothing sent) or in per-row ``invalid``
results (exit 1), as docs/contract.md ("Outcome") says; the dry run is used, so nothing
could be sent anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from bulk_import.cli import main

from support import PASSWORD, read_results

HEADER = "Phone Number,Trunk Username,Trunk Password,Termination SIP URI\n"


def _xlsx_with_formula(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Phone Number", "Trunk Username", "Trunk Password", "Termination SIP URI"])
    ws.append(["=1+1", "u", PASSWORD, "sip.telnyx.com"])
    ws.append(["+14155550001", "u", PASSWORD, "sip.telnyx.com"])
    wb.save(path)


CASES: dict[str, tuple[str, Callable[[Path], object], int, str]] = {
    "empty": ("x.csv", lambda p: p.write_bytes(b""), 2, "header"),
    "header only": ("x.csv", lambda p: p.write_text(HEADER), 0, ""),
    "binary junk named xlsx": (
        "x.xlsx",
        lambda p: p.write_bytes(b"\x00\x01PK\x03junk" * 50),
        2,
        "xlsx",
    ),
    "text named xlsx": ("x.xlsx", lambda p: p.write_text(HEADER), 2, "xlsx"),
    "another encoding (utf-16 with BOM, read as such)": (
        "x.csv",
        lambda p: p.write_bytes(
            (HEADER + f"+14155550001,u,{PASSWORD},sip.x.com\n").encode("utf-16")
        ),
        0,
        "",
    ),
    "ragged rows": (
        "x.csv",
        lambda p: p.write_text(HEADER + f"+14155550001,u,{PASSWORD},sip.x.com,extra,more\n"),
        1,
        "has 6 cells, the header has 4",
    ),
    "short rows": ("x.csv", lambda p: p.write_text(HEADER + "+14155550001,u\n"), 1, "required"),
    "10,000-character cells": (
        "x.csv",
        lambda p: p.write_text(HEADER + f"+14155550001,{'u' * 10_000},{PASSWORD},{'s' * 10_000}\n"),
        1,
        "longer than",
    ),
    "formula cells (csv)": (
        "x.csv",
        lambda p: p.write_text(HEADER + f"=cmd|' /C calc'!A0,@u,{PASSWORD},-sip\n"),
        1,
        "phoneNumber",
    ),
    "formula cells (xlsx)": ("x.xlsx", _xlsx_with_formula, 1, "phoneNumber"),
    "not a table at all": ("x.csv", lambda p: p.write_text("hello\n"), 2, "missing required"),
    "unsupported extension": ("x.pdf", lambda p: p.write_text("%PDF"), 2, ".pdf"),
    "directory": ("dir.csv", lambda p: p.mkdir(), 2, ""),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, make, expected_code, expected_text = CASES[case]
    path = tmp_path / name
    make(path)
    code = main(["run", str(path), "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert PASSWORD not in err
    results = tmp_path / f"{path.stem}.results.csv"
    if code == 2:
        assert err.startswith("bulk-import: error:"), err
        assert expected_text.lower() in err.lower()
    else:
        rows = read_results(results)
        text = results.read_text()
        assert PASSWORD not in text
        if code == 1:
            assert any(r["status"] == "invalid" for r in rows)
            assert expected_text in text
        for r in rows:
            assert not r["phone_number"].startswith(("=", "@", "-")), r


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(tmp_path / "nope.csv"), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.csv" in err


def test_wrong_encoding_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.csv"
    path.write_text(HEADER + f"+14155550001,Müller,{PASSWORD},sip.x.com\n", encoding="utf-8")
    code = main(["run", str(path), "--dry-run", "--encoding", "ascii"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--encoding" in err
    assert "Traceback" not in err
