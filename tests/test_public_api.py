"""The package as a library: its public names, and a library's manners.

``import bulk_import`` gives everything a caller needs (``__all__`` is pinned here), loads
nothing heavy, and a run prints nothing, shows no progress bar, changes no signal handler,
reads no environment variable and gives every row it finishes to ``on_row``.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import logging
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import bulk_import

from support import API_KEY, PASSWORD, cli_env, read_results, write_numbers

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

PUBLIC = [
    "ApiError",
    "AuthError",
    "BulkImportError",
    "ConnectionFailed",
    "ExportOptions",
    "FailureLimit",
    "InputChangedError",
    "InputFileError",
    "LockedError",
    "MissingColumnsError",
    "NotANumberError",
    "ResultsFileError",
    "RowResult",
    "RunOptions",
    "SandboxConfig",
    "SandboxServer",
    "Status",
    "Summary",
    "TooManyFailures",
    "UnreachableError",
    "UsageError",
    "WriteError",
    "__version__",
    "aexport",
    "aplan",
    "arun_import",
    "aundo",
    "aupdate",
    "export",
    "plan",
    "run_import",
    "template",
    "undo",
    "update",
]


def test_all_is_pinned_and_every_name_is_there() -> None:
    assert sorted(bulk_import.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(bulk_import, name) is not None, name
    assert set(PUBLIC) <= set(dir(bulk_import))
    with pytest.raises(AttributeError):
        _ = bulk_import.no_such_name


def test_every_error_class_is_public() -> None:
    from bulk_import import errors

    tree = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.BulkImportError)
    }
    assert tree <= set(bulk_import.__all__)


def test_the_error_tree_is_one_tree_with_the_clis_exit_codes() -> None:
    errors = [getattr(bulk_import, n) for n in PUBLIC if n.endswith(("Error", "Failures"))]
    errors.append(bulk_import.ConnectionFailed)
    assert all(issubclass(e, bulk_import.BulkImportError) for e in errors)
    assert bulk_import.UsageError("x").exit_code == 2
    assert bulk_import.LockedError("x").exit_code == 75
    assert bulk_import.AuthError("x").exit_code == 3


def test_importing_it_loads_nothing_heavy() -> None:
    code = (
        "import sys, bulk_import; "
        "heavy = ['pandas', 'httpx', 'aiohttp', 'pydantic', 'uvicorn', 'starlette', 'tqdm', "
        "'bulk_import.runner']; print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]"], done.stderr


def test_it_ships_its_type_information() -> None:
    assert (ROOT / "bulk_import" / "py.typed").exists()
    assert 'bulk_import = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()
    assert '"examples"' in (ROOT / "pyproject.toml").read_text()  # mypy --strict checks it


def _numbers_with_invalid_rows(path: Path, count: int) -> int:
    """``count`` valid rows and two invalid ones (one with an unknown column): the rows."""
    write_numbers(path, count, extra_rows=[["12", "u", PASSWORD, "sip.x.com", "", ""]] * 2)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[0].append("Notes")  # a column that matches no field: the CLI would warn
    for row in rows[1:]:
        row.append("n")
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return count + 2


def _handlers() -> dict[int, Any]:
    return {sig: signal.getsignal(sig) for sig in SIGNALS}


def test_arun_import_inside_a_running_loop_is_silent_and_reports_every_row(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "numbers.csv"
    rows = _numbers_with_invalid_rows(path, 30)
    seen: list[bulk_import.RowResult] = []
    during: list[tuple[dict[int, Any], dict[int, Any]]] = []

    async def job() -> bulk_import.Summary:
        loop = asyncio.get_running_loop()
        loop_before = dict(getattr(loop, "_signal_handlers", {}))
        before = _handlers()

        def on_row(result: bulk_import.RowResult) -> None:
            seen.append(result)
            during.append((_handlers(), dict(getattr(loop, "_signal_handlers", {}))))

        with bulk_import.SandboxServer(bulk_import.SandboxConfig(api_key="k")) as sandbox:
            options = bulk_import.RunOptions(
                file=path, api_key="k", base_url=sandbox.url, concurrency=4, on_row=on_row
            )
            summary = await bulk_import.arun_import(options)
            assert len(sandbox.state.records) == 30
        assert _handlers() == before
        assert dict(getattr(loop, "_signal_handlers", {})) == loop_before
        assert all(h == (before, loop_before) for h in during)
        return summary

    summary = asyncio.run(job())
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert summary.counts["imported"] == 30
    assert summary.counts["invalid"] == 2
    assert sorted(r.row for r in seen) == list(range(2, rows + 2))
    assert [r.status.value for r in seen].count("invalid") == 2
    written = {
        int(r["row"]): r["status"] for r in read_results(path.with_name("numbers.results.csv"))
    }
    assert {r.row: r.status.value for r in seen} == written


#: The same, in a fresh interpreter, where nothing (pytest's log capture, a handler another
#: test added) hides what the library would print: a rejected key too (an abort is logged).
_SCRIPT = """
import asyncio, signal, sys
from pathlib import Path
import bulk_import

path, key = Path(sys.argv[1]), sys.argv[2]
seen = []
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

async def job():
    before = [signal.getsignal(s) for s in SIGNALS]
    with bulk_import.SandboxServer(bulk_import.SandboxConfig(api_key=key)) as sandbox:
        opts = bulk_import.RunOptions(file=path, api_key=key, base_url=sandbox.url,
                                      on_row=seen.append)
        summary = await bulk_import.arun_import(opts)
        rejected = await bulk_import.arun_import(
            bulk_import.RunOptions(file=path, api_key="wrong", base_url=sandbox.url,
                                   output=path.with_name("wrong.csv")))
        assert rejected.exit_code == 3 and rejected.aborted, rejected  # and logged
    assert [signal.getsignal(s) for s in SIGNALS] == before
    return summary

summary = asyncio.run(job())
assert summary.counts["imported"] == 10 and summary.counts["invalid"] == 2, summary
assert len(seen) == 12
assert "tqdm" not in sys.modules
"""


def test_in_a_fresh_process_nothing_reaches_stdout_or_stderr(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    _numbers_with_invalid_rows(path, 10)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), str(path), API_KEY],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_run_import_installs_no_signal_handler_and_says_nothing(
    tmp_path: Path, sandbox: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "numbers.csv"
    _numbers_with_invalid_rows(path, 5)
    before = _handlers()
    during: list[dict[int, Any]] = []
    options = bulk_import.RunOptions(
        file=path,
        api_key="sandbox-key",
        base_url=sandbox.url,
        on_row=lambda _r: during.append(_handlers()),
    )
    summary = bulk_import.run_import(options)
    assert summary.exit_code == 1  # the invalid rows
    assert _handlers() == before
    assert during
    assert all(h == before for h in during)
    dry = bulk_import.run_import(dataclasses.replace(options, dry_run=True, resume=True))
    assert dry.counts["valid"] == 5
    assert _handlers() == before
    assert capfd.readouterr() == ("", "")


def test_the_defaults_read_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGMAMIND_API_KEY", API_KEY)
    monkeypatch.setenv("SIGMAMIND_BASE_URL", "http://127.0.0.1:9")
    options = bulk_import.RunOptions(file=tmp_path / "numbers.csv")
    assert options.api_key is None
    assert options.base_url == "https://api.sigmamind.ai"
    assert options.progress is False
    write_numbers(options.file, 2)
    with pytest.raises(bulk_import.UsageError) as caught:
        bulk_import.run_import(options)  # the key in the environment is not used
    assert caught.value.param == "api_key"
    assert "SIGMAMIND" not in str(caught.value)
    assert "--" not in str(caught.value)


def test_importing_the_client_leaves_httpxs_loggers_alone() -> None:
    code = (
        "import logging, bulk_import.api; "
        "print(logging.getLogger('httpx').level, logging.getLogger('httpcore').level)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "0"]


def test_the_cli_still_quiets_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    from bulk_import.cli import _setup_logging

    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.NOTSET)
    _setup_logging(quiet=False)
    assert logging.getLogger("httpx").level == logging.WARNING


def test_say_gets_the_notes_a_person_would_see(tmp_path: Path, sandbox: Any) -> None:
    path = tmp_path / "numbers.csv"
    _numbers_with_invalid_rows(path, 2)
    notes: list[str] = []
    options = bulk_import.RunOptions(file=path, dry_run=True)
    bulk_import.run_import(options, say=notes.append)
    assert any("Notes" in note for note in notes)


def test_on_row_in_a_dry_run_gets_every_row(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    rows = _numbers_with_invalid_rows(path, 7)
    seen: list[bulk_import.RowResult] = []
    summary = bulk_import.run_import(
        bulk_import.RunOptions(file=path, dry_run=True, on_row=seen.append)
    )
    written = read_results(path.with_name("numbers.results.csv"))
    assert len(seen) == rows == summary.rows
    assert [dataclasses.astuple(r) for r in seen] == [
        (
            int(w["row"]),
            w["phone_number"],
            bulk_import.Status(w["status"]),
            w["sip_phone_number"],
            None,
            int(w["attempts"]),
            w["error"],
            "",
            False,
        )
        for w in written
    ]


def test_on_row_on_resume_gets_only_the_rows_this_run_finished(
    tmp_path: Path, sandbox: Any
) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 6)
    options = bulk_import.RunOptions(file=path, api_key="sandbox-key", base_url=sandbox.url)
    bulk_import.run_import(options)
    write_numbers(path, 9)  # three more rows
    seen: list[bulk_import.RowResult] = []
    again = bulk_import.run_import(dataclasses.replace(options, resume=True, on_row=seen.append))
    assert sorted(r.row for r in seen) == [8, 9, 10]
    assert again.this_run is not None
    assert sum(again.this_run.values()) == len(seen)


def test_a_failing_on_row_stops_the_run_and_the_results_file_is_complete(
    tmp_path: Path, sandbox: Any
) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 40)

    class Broken(Exception):
        pass

    def on_row(result: bulk_import.RowResult) -> None:
        if result.row == 5:
            raise Broken

    options = bulk_import.RunOptions(
        file=path, api_key="sandbox-key", base_url=sandbox.url, concurrency=1, on_row=on_row
    )
    with pytest.raises(Broken):
        bulk_import.run_import(options)
    written = read_results(path.with_name("numbers.results.csv"))
    assert len(written) == 40
    statuses = {r["status"] for r in written}
    assert statuses <= {"imported", "not_attempted"}
    assert "not_attempted" in statuses


def _round_trip(sandbox: Any, tmp_path: Path) -> None:
    """plan -> run -> export -> update -> undo, through the public functions only."""
    path = tmp_path / "numbers.csv"
    write_numbers(path, 4)
    base = bulk_import.RunOptions(file=path, api_key="sandbox-key", base_url=sandbox.url)
    planned = bulk_import.plan(base)
    assert planned.counts["would_import"] == 4
    assert bulk_import.run_import(base).counts["imported"] == 4
    out = tmp_path / "account.csv"
    assert bulk_import.export(bulk_import.ExportOptions(out, sandbox.url, "sandbox-key")) == 4
    rows = out.read_text().splitlines()
    out.write_text("\n".join([rows[0], rows[1].replace("Line 0", "Renamed")]) + "\n")
    updated = bulk_import.update(dataclasses.replace(base, file=out))
    assert updated.counts["updated"] == 1
    undone = bulk_import.undo(
        dataclasses.replace(base, file=Path(updated.results), output=None, yes=True)
    )
    assert undone.counts["restored"] == 1
    template = tmp_path / "template.xlsx"
    bulk_import.template(template)
    assert template.stat().st_size > 0


def test_the_commands_as_functions(sandbox: Any, tmp_path: Path) -> None:
    _round_trip(sandbox, tmp_path)


def test_the_commands_awaited_inside_a_running_loop(sandbox: Any, tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 3)
    base = bulk_import.RunOptions(file=path, api_key="sandbox-key", base_url=sandbox.url)

    async def job() -> list[int]:
        planned = await bulk_import.aplan(base)
        imported = await bulk_import.arun_import(base)
        exported = await bulk_import.aexport(
            bulk_import.ExportOptions(tmp_path / "a.csv", sandbox.url, "sandbox-key")
        )
        updated = await bulk_import.aupdate(dataclasses.replace(base, file=tmp_path / "a.csv"))
        undone = await bulk_import.aundo(
            dataclasses.replace(base, file=Path(imported.results), yes=True)
        )
        return [
            planned.counts["would_import"],
            imported.counts["imported"],
            exported,
            updated.counts["unchanged"],
            undone.counts["deleted"],
        ]

    assert asyncio.run(job()) == [3, 3, 3, 3, 3]
    assert len(sandbox.state.records) == 0


def test_undo_asks_through_confirm_never_the_terminal(sandbox: Any, tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 2)
    done = bulk_import.run_import(
        bulk_import.RunOptions(file=path, api_key="sandbox-key", base_url=sandbox.url)
    )
    asked: list[str] = []

    def no(what: str) -> bool:
        asked.append(what)
        return False

    options = bulk_import.RunOptions(
        file=Path(done.results), api_key="sandbox-key", base_url=sandbox.url
    )
    with pytest.raises(bulk_import.UsageError) as unasked:
        bulk_import.undo(options)
    assert unasked.value.param == "yes"
    assert "--yes" not in str(unasked.value)
    with pytest.raises(bulk_import.UsageError, match="cancelled"):
        bulk_import.undo(dataclasses.replace(options, confirm=no))
    assert asked
    assert "delete 2" in asked[0]
    assert len(sandbox.state.records) == 2


def test_the_typed_example_runs(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    write_numbers(path, 3)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "scheduled_job.py"), str(path)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "3 imported" in done.stderr
    assert "3 done earlier" in done.stderr


def test_the_readme_example_uses_only_public_names() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    imported = [line for line in code.splitlines() if line.startswith("from bulk_import")]
    names = imported[0].split(" import ", 1)[1].split(", ")
    assert set(names) <= set(bulk_import.__all__)
    assert callable(namespace["nightly_import"])
