"""Library messages name parameters; only the command line says flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bulk_import
from bulk_import.cli import describe
from bulk_import.errors import InputFileError, MissingColumnsError, UsageError
from bulk_import.load import open_table

from support import run_cli

PACKAGE = Path(bulk_import.__file__).parent
FLAG_IN_STRING = re.compile(r'"[^"\n]*--[a-z][a-z-]+')

#: Strings outside the CLI that still say a flag, and why:
#: - a row's error or note in the results file, read by the CLI's user (the contract's own
#:   words: "may have been stored; --resume checks");
#: - an input-file hint whose parameter's word also occurs in the message (sheet, encoding);
#: - docstrings about the command line; the error and note texts of the ``run`` pipeline
#:   that runner.py prints (its public surface is reworked on another branch);
#: - outputs.py names each output file by its flag in the checks' messages; config.py's
#:   refusal of a key in the URL points to both ways of giving the key; watch.py names its
#:   two outputs the same way (and in the warning when one can't be written).
LEFT = {
    "actions.py",
    "api.py",
    "config.py",
    "lock.py",
    "load.py",
    "models.py",
    "outputs.py",
    "record.py",
    "runner.py",
    "sandbox/server.py",
    "sheets.py",
    "submit.py",
    "validate.py",
    "watch.py",
}


def test_no_other_library_module_writes_a_flag() -> None:
    saying = set()
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        if name in ("cli.py", "cliargs.py", "sandbox/cli.py"):
            continue
        if FLAG_IN_STRING.search(path.read_text(encoding="utf-8")):
            saying.add(name)
    assert saying <= LEFT, sorted(saying - LEFT)


def test_a_parameter_inside_a_path_is_not_taken_for_the_parameter() -> None:
    exc = InputFileError(
        "/data/mapping/mapping.csv: mapping names a column 'X' that is not in the header",
        param="mapping",
    )
    assert describe(exc) == (
        "/data/mapping/mapping.csv: --map names a column 'X' that is not in the header"
    )


def test_missing_columns_are_said_in_parameters_and_in_flags() -> None:
    exc = MissingColumnsError(["trunkUsername"], ["phoneNumber"])
    assert "--" not in str(exc)
    assert "mapping" in str(exc)
    assert "defaults" in str(exc)
    assert "--map 'Your Header=field'" in describe(exc)
    assert "--default field=value" in describe(exc)


def test_load_names_its_parameters(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("Phone,Name\n+14155552671,a\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        open_table(path, header_row=0)
    assert caught.value.param == "header_row"
    assert "--" not in str(caught.value)
    assert describe(caught.value).startswith("--header-row must be 1 or more")
    with pytest.raises(InputFileError) as missing:
        open_table(path, mapping={"Mobile": "phoneNumber"})
    assert "--" not in str(missing.value)
    assert "--map names a column 'Mobile'" in describe(missing.value)


def test_the_command_line_still_says_flags(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("Phone,Name\n+14155552671,a\n", encoding="utf-8")
    done = run_cli("run", str(path), "--dry-run", "--map", "Mobile=phoneNumber")
    assert done.code == 2
    assert "--map names a column 'Mobile' that is not in the header" in done.stderr
    done = run_cli("run", str(path), "--dry-run", "--header-row", "0")
    assert done.code == 2
    assert "--header-row must be 1 or more" in done.stderr
