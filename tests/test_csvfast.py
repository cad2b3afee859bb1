"""The dry run's pandas reader (bulk_import/csvfast.py) gives the stdlib reader's results.

Every CSV file the corpus modules leave in ``tmp_path`` is also checked (tests/conftest.py);
here: the samples, the shapes that make pandas hand over, and which files it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from readers import check_both_readers, dry_run_results, takes_fast_path

from bulk_import import load

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
HEAD = "phoneNumber,trunkUsername,trunkPassword,terminationSipURI,friendlyName\n"


def good(i: int) -> str:
    return f"+1415555{i:04d},user{i},pw{i},sip.example.com,Line {i}\n"


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.csv")), ids=lambda p: p.name)
@pytest.mark.parametrize("chunk_rows", [2, 10_000])
def test_samples_read_alike(path: Path, chunk_rows: int, tmp_path: Path) -> None:
    check_both_readers(path, tmp_path, chunk_rows)


PLAIN_SHAPES: dict[str, bytes] = {
    "blank and whitespace lines": (HEAD + good(1) + "\n" + "  \n" + ",,,,\n" + good(2)).encode(),
    "crlf": (HEAD + good(1) + good(2) + "\n" + good(3)).replace("\n", "\r\n").encode(),
    "cr only": (HEAD + good(1) + "\n" + good(2)).replace("\n", "\r").encode(),
    "bom": b"\xef\xbb\xbf" + (HEAD + good(1)).encode(),
    "cp1252": (HEAD + good(1) + "+14155550002,M\xfcller,pw,sip.x.com,Caf\xe9\n").encode("cp1252"),
    "semicolons": (HEAD + good(1) + good(2)).replace(",", ";").encode(),
    "tabs": (HEAD + good(1) + good(2)).replace(",", "\t").encode(),
    "title rows": ("My numbers,,\nexported today\n\n" + HEAD + good(1) + good(2)).encode(),
    "short rows and spaces": (HEAD + "+14155550001,u\n  +14155550002 , u ,p,sip.x.com\n").encode(),
    "duplicates and bad numbers": (HEAD + good(1) + good(1) + "12,u,p,s,n\n" + good(2)).encode(),
    "no final newline": (HEAD + good(1) + good(2)).rstrip("\n").encode(),
    "odd quotes inside cells": (HEAD + "+14155550001,it's,p,s,n\n").encode(),
}


@pytest.mark.parametrize("shape", list(PLAIN_SHAPES))
@pytest.mark.parametrize("chunk_rows", [1, 2, 10_000])
def test_plain_files_are_read_by_pandas_alike(shape: str, chunk_rows: int, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(PLAIN_SHAPES[shape])
    assert check_both_readers(path, tmp_path, chunk_rows)


@pytest.fixture
def resumed_at(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``skip`` of every hand-over to the stdlib reader."""
    skips: list[int] = []
    original = load.Table._columns

    def spy(self: load.Table, skip: int = 0) -> Any:
        skips.append(skip)
        return original(self, skip)

    monkeypatch.setattr(load.Table, "_columns", spy)
    return skips


@pytest.mark.parametrize(
    ("name", "line", "at"),
    [
        ("a wide row mid-file", "+14155559999,u,p,s,n,extra,more\n", 6),
        ("a wide row with empty extras", "+14155559999,u,p,s,n,,\n", 6),
        ("a wide first row", "+14155559999,u,p,s,n,extra\n", 0),
    ],
)
def test_pandas_hands_over_at_the_chunk_of_a_wide_row(
    name: str, line: str, at: int, tmp_path: Path, resumed_at: list[int]
) -> None:
    rows = [good(i) for i in range(10)]
    rows.insert(at, line)
    path = tmp_path / "in.csv"
    path.write_text(HEAD + "".join(rows))
    out = tmp_path / "fast.results.csv"
    text = dry_run_results(path, out, 3)
    assert resumed_at == [at - at % 3]  # the stdlib reader took over at that chunk's start
    assert check_both_readers(path, tmp_path, 3)
    assert (f"\n{at + 2},+14155559999,invalid" in text) == ("extra" in line)


def test_a_byte_not_in_the_given_encoding_hands_over_and_stops_alike(
    tmp_path: Path, resumed_at: list[int]
) -> None:
    path = tmp_path / "in.csv"
    rows = "".join(good(i) for i in range(2000))  # past the sniffer's sample
    path.write_bytes((HEAD + rows).encode() + b"+14155550009,\xff\n")
    assert check_both_readers(path, tmp_path, 500, encoding="utf-8")
    text = dry_run_results(path, tmp_path / "x.csv", 500, encoding="utf-8")
    assert text.startswith("error:"), text
    assert "cannot be read as utf-8" in text
    assert resumed_at[-1] == 2000


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("quoted cells", (HEAD + '"+14155550001",u,p,s,"Line, one"\n').encode()),
        ("quote then text", (HEAD + '+14155550001,"u"x,p,s,n\n').encode()),
        ("a NUL byte", (HEAD + "+14155550001,u\x00,p,s,n\n").encode()),
        ("stray bytes in UTF-8", (HEAD + "+14155550001,\xe9\xe9\xe9,p,s,n\n").encode() + b"\xff\n"),
        ("UTF-16", (HEAD + good(1)).encode("utf-16")),
        ("a huge line", (HEAD + "+14155550001,u,p,s," + "n" * 200_000 + "\n").encode()),
    ],
)
def test_files_pandas_may_read_differently_go_to_the_stdlib_reader(
    name: str, data: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    assert not takes_fast_path(path)


def test_a_plain_file_takes_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEAD + good(1))
    assert takes_fast_path(path)
