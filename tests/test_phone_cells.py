"""A phone cell that is not a phone number (a trunk password shifted into the phone
column) is told by its shape in every output, never copied (docs/contract.md, "The
results file"), over real loopback HTTP against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import API_KEY, PASSWORD, files_text, number, read_results, run_cli

#: A password shifted into the phone column: a missing cell, and an unquoted comma.
SHIFTED = [
    (
        "Phone Number,Trunk Username,Trunk Password,Termination SIP URI\n",
        f"{number(1)},u,{PASSWORD},sip.telnyx.com\n{PASSWORD},sip.telnyx.com\n",
    ),
    (
        "Friendly Name,Trunk Password,Phone Number,Trunk Username,Termination SIP URI\n",
        f"Sales,{PASSWORD},{number(1)},u,sip.telnyx.com\n"
        f"Sales, West,{PASSWORD},{number(2)},u,sip.telnyx.com\n",
    ),
]
SHAPE = "(15 characters: letters, digits, punctuation)"


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("case", [0, 1], ids=["missing-cell", "unquoted-comma"])
def test_a_password_in_the_phone_column_is_described_not_copied(
    sandbox_factory: Any, tmp_path: Path, case: int, dry: bool
) -> None:
    api = sandbox_factory(api_key=API_KEY)
    header, rows = SHIFTED[case]
    file = tmp_path / "numbers.csv"
    file.write_text(header + rows, encoding="utf-8")
    log = tmp_path / "run.log"
    args = ["run", str(file), "--base-url", api.url, "--no-progress", "--log-file", str(log)]
    done = run_cli(*args, *(["--dry-run"] if dry else []))
    assert done.code == 1, done.stderr
    results = read_results(tmp_path / "numbers.results.csv")
    bad = [r for r in results if r["status"] == "invalid"]
    assert [r["phone_number"] for r in bad] == [SHAPE], results
    outputs = [p for p in tmp_path.iterdir() if p != file]
    for text in [done.stdout, done.stderr, *files_text(*outputs)]:
        assert PASSWORD not in text
    if not dry:  # a dry run logs its start and end only
        assert SHAPE in log.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("+1 (415) 555-2671", "+1 (415) 555-2671"),
        ("4155552671", "4155552671"),
        ("4.42079E+11", "4.42079E+11"),
        ("00 44 20 7946 0958", "00 44 20 7946 0958"),
        ("+１４１５５５５２６７１", "+１４１５５５５２６７１"),
        ("Pw-9f8e7d6c5b4a", SHAPE),
        ("hunter2", "(7 characters: letters, digits)"),
        ("p@ss w0rd!", "(10 characters: letters, digits, spaces, punctuation)"),
        ("=HYPERLINK()", "(12 characters: letters, punctuation)"),
        ("é", "(1 character: letters)"),
    ],
)
def test_phone_cell_quotes_only_what_looks_like_a_phone_number(cell: str, shown: str) -> None:
    from bulk_import.validate import phone_cell

    assert phone_cell(cell) == shown
