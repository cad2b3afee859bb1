"""Outputs: checked before anything is sent or touched, never written through a link.

The issue's reproductions, each through the real CLI (against ``HostileServer``, whose
default answer is a plain 201, so ``hostile.requests`` tells whether anything was sent),
plus ``check_outputs`` directly.  The symlink tests run as root and, through ``setpriv``, as
the unprivileged user ``nobody``; a full disk is a small tmpfs (root only).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_server import HostileServer

from bulk_import.errors import ResultsFileError, UsageError, WriteError
from bulk_import.ledger import Journal
from bulk_import.outputs import Kind, Output, check_outputs, results_outputs
from bulk_import.runner import RunOptions, run_import

from support import (
    Completed,
    cli_command,
    cli_env,
    read_results,
    run_cli,
    write_numbers,
)

ROOT = os.geteuid() == 0
NOBODY = 65534
SETPRIV = shutil.which("setpriv")
as_root = pytest.mark.skipif(not ROOT, reason="needs root")
as_nobody = pytest.mark.skipif(
    not (ROOT and SETPRIV), reason="needs root and setpriv to run as nobody"
)


def run_to(server: HostileServer, csv: Path, *args: str) -> Completed:
    return run_cli("run", str(csv), "--base-url", server.url, "--no-progress", *args)


def precious(path: Path, mode: int = 0o644) -> tuple[bytes, int]:
    path.write_bytes(b"someone else's data\n")
    path.chmod(mode)
    return snapshot(path)


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), stat.S_IMODE(path.stat().st_mode)


def refused(done: Completed, *words: str) -> None:
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-writable sticky directory (like /tmp) that every user can reach."""
    top = Path(tempfile.mkdtemp(prefix="hostile-outputs-", dir="/tmp"))
    top.chmod(0o755)
    inbox = top / "inbox"
    inbox.mkdir()
    inbox.chmod(0o1777)
    try:
        yield inbox
    finally:
        shutil.rmtree(top, ignore_errors=True)


def as_user(uid: int, *command: str, cwd: Path) -> Completed:
    assert SETPRIV is not None
    proc = subprocess.run(
        [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command],
        cwd=cwd,
        env={**cli_env(), "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


# -- symbolic links ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "planted",
    [
        "in.results.csv",
        "in.results.csv.lock",
        "in.results.csv.journal",
        "in.results.csv.journal-wal",  # SQLite opens its side files itself, following links
        "in.results.csv.journal-shm",
    ],
)
def test_an_output_that_is_a_symlink_is_refused(
    hostile: HostileServer, tmp_path: Path, planted: str
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 3)
    target = tmp_path / "target"
    before = precious(target)
    (tmp_path / planted).symlink_to(target)
    done = run_to(hostile, csv, "--resume")  # --resume: the journal is opened, not deleted
    refused(done, "symbolic link", planted)
    assert snapshot(target) == before  # not truncated, not filled, not chmodded
    assert hostile.requests == []


def test_a_planted_temp_file_link_is_not_followed(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 3)
    target = tmp_path / "target"
    before = precious(target)
    (tmp_path / ".in.results.csv.tmp").symlink_to(target)
    done = run_to(hostile, csv)
    assert done.code == 0, done.stderr
    assert snapshot(target) == before
    results = tmp_path / "in.results.csv"
    assert not results.is_symlink()
    assert [r["status"] for r in read_results(results)] == ["imported"] * 3


def test_a_killed_runs_leftover_temp_files_are_removed_and_nothing_else(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """``kill -9`` during a rewrite leaves ``.in.results.csv.<random>.tmp``; the next run
    (holding the lock) deletes it, and only it: a link, another mode, another name stay."""
    csv = tmp_path / "in.csv"
    write_numbers(csv, 3)
    leftover = tmp_path / ".in.results.csv.k3_x9q0a.tmp"
    leftover.write_text("row,phone_number\n")
    leftover.chmod(0o600)
    target = tmp_path / "target"
    before = precious(target)
    keep = {
        ".in.results.csv.link0000.tmp": "link",
        ".in.results.csv.public00.tmp": "0644",
        ".in.results.csv.toolong000.tmp": "0600",
        ".in.results.csv.tmp": "0600",
        ".other.csv.abcdefgh.tmp": "0600",
    }
    for name, kind in keep.items():
        if kind == "link":
            (tmp_path / name).symlink_to(target)
        else:
            (tmp_path / name).write_text("x")
            (tmp_path / name).chmod(int(kind, 8))
    done = run_to(hostile, csv)
    assert done.code == 0, done.stderr
    assert not leftover.exists()
    assert "removed .in.results.csv.k3_x9q0a.tmp" in done.stderr
    assert all(os.path.lexists(tmp_path / name) for name in keep)
    assert snapshot(target) == before


@as_nobody
def test_a_lock_planted_by_another_user_does_not_truncate_roots_file(
    hostile: HostileServer, shared_dir: Path
) -> None:
    """``fs.protected_symlinks`` may be 0 (it is in many containers): O_NOFOLLOW decides."""
    victim = shared_dir.parent / "root-owned"
    before = precious(victim, 0o600)
    csv = shared_dir / "in.csv"
    write_numbers(csv, 2)
    planted = as_user(NOBODY, "ln", "-s", str(victim), "in.results.csv.lock", cwd=shared_dir)
    assert planted.code == 0, planted.stderr
    done = run_to(hostile, csv)
    refused(done, "symbolic link")
    assert snapshot(victim) == before
    assert hostile.requests == []


@as_nobody
@pytest.mark.parametrize("planted", ["in.results.csv", "in.results.csv.lock"])
def test_symlinks_are_refused_for_an_unprivileged_user(
    hostile: HostileServer, shared_dir: Path, planted: str
) -> None:
    home = shared_dir / "nobody"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    victim = home / "victim"
    before = precious(victim)
    os.chown(victim, NOBODY, NOBODY)
    csv = home / "in.csv"
    write_numbers(csv, 2)
    os.chown(csv, NOBODY, NOBODY)
    (home / planted).symlink_to(victim)
    os.lchown(home / planted, NOBODY, NOBODY)
    command = cli_command("run", str(csv), "--base-url", hostile.url, "--no-progress")
    done = as_user(NOBODY, *command, cwd=home)
    refused(done, "symbolic link")
    assert snapshot(victim) == before
    assert hostile.requests == []


@as_nobody
def test_an_unprivileged_run_writes_its_outputs(hostile: HostileServer, shared_dir: Path) -> None:
    home = shared_dir / "nobody"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    csv = home / "in.csv"
    write_numbers(csv, 2)
    os.chown(csv, NOBODY, NOBODY)
    command = cli_command(
        "run", str(csv), "--base-url", hostile.url, "--no-progress",
        "--log-file", str(home / "run.log"), "--summary-json", str(home / "s.json"),
    )  # fmt: skip
    done = as_user(NOBODY, *command, cwd=home)
    assert done.code == 0, done.stderr
    for name in ("in.results.csv", "run.log", "s.json", "in.results.csv.journal"):
        info = (home / name).stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o600), name


# -- special files ------------------------------------------------------------------------


def test_summary_to_dev_stdout_appends_to_the_redirected_log(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """``--summary-json /dev/stdout >> cron.log`` must neither truncate nor chmod cron.log."""
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    cron_log = tmp_path / "cron.log"
    cron_log.write_text("yesterday's run\n")
    cron_log.chmod(0o644)
    command = cli_command(
        "run", str(csv), "--base-url", hostile.url, "--no-progress", "--summary-json", "/dev/stdout"
    )
    with cron_log.open("a") as out:
        proc = subprocess.run(
            command, env=cli_env(), stdout=out, stderr=subprocess.PIPE, text=True, check=False
        )
    assert proc.returncode == 0, proc.stderr
    text = cron_log.read_text()
    assert text.startswith("yesterday's run\n")
    assert json.loads(text.removeprefix("yesterday's run\n"))["counts"]["imported"] == 2
    assert stat.S_IMODE(cron_log.stat().st_mode) == 0o644


def test_summary_into_a_fifo(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo, 0o644)
    received: list[str] = []

    def read() -> None:
        with fifo.open() as f:
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done = run_to(hostile, csv, "--summary-json", str(fifo))
    reader.join(timeout=30)
    assert done.code == 0, done.stderr
    assert json.loads(received[0])["counts"]["imported"] == 2
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644


@as_root
def test_a_device_as_log_keeps_its_mode(hostile: HostileServer, tmp_path: Path) -> None:
    """Our own /dev/null (a node in tmp_path): never chmod the real one in a test."""
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"can't make a device node here: {exc}")
    null.chmod(0o666)
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    done = run_to(hostile, csv, "--log-file", str(null), "--summary-json", str(null))
    assert done.code == 2  # not both to one file
    done = run_to(hostile, csv, "--log-file", str(null))
    assert done.code == 0, done.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    assert stat.S_IMODE(null.stat().st_mode) == 0o666


def test_a_fifo_or_device_as_results_file_is_refused(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    refused(run_to(hostile, csv, "--output", str(fifo)), "FIFO", "--output")
    refused(run_to(hostile, csv, "--output", "/dev/stdout"), "symbolic link", "--output")
    assert hostile.requests == []


# -- the input, other runs' files, two outputs in one ---------------------------------------


def test_output_as_a_hard_link_to_the_input_is_refused(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    before = csv.read_bytes()
    os.link(csv, tmp_path / "in-link.csv")
    done = run_to(hostile, csv, "--output", str(tmp_path / "in-link.csv"))
    refused(done, "the input file", "another name")
    assert csv.read_bytes() == before
    assert hostile.requests == []


@pytest.mark.parametrize("flag", ["--output", "--summary-json", "--log-file"])
def test_another_runs_journal_is_refused_as_an_output(
    hostile: HostileServer, tmp_path: Path, flag: str
) -> None:
    shared = tmp_path / "shared.csv"
    write_numbers(shared, 1)
    first = run_to(hostile, shared)
    assert first.code == 0
    journal = tmp_path / "shared.results.csv.journal"
    before = journal.read_bytes()
    csv = tmp_path / "in.csv"
    write_numbers(csv, 1, start=10)
    hostile.requests.clear()
    done = run_to(hostile, csv, flag, str(journal))
    refused(done, "journal", flag)
    assert journal.read_bytes() == before
    assert hostile.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ("--summary-json", "{input}"),
        ("--log-file", "{input}"),
        ("--output", "{input}"),
        ("--summary-json", "{dir}/x.csv", "--output", "{dir}/x.csv"),
        ("--log-file", "{dir}/x.log", "--summary-json", "{dir}/x.log"),
        ("--summary-json", "{dir}/in.results.csv.lock"),
    ],
)
def test_two_outputs_or_an_output_and_the_input_in_one_file_are_refused(
    hostile: HostileServer, tmp_path: Path, args: tuple[str, ...]
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    before = csv.read_bytes()
    given = [a.format(input=csv, dir=tmp_path) for a in args]
    refused(run_to(hostile, csv, *given))
    assert csv.read_bytes() == before
    assert hostile.requests == []


# -- every output checked before the first request and before anything is touched ----------


@pytest.mark.parametrize(
    ("flag", "path", "words"),
    [
        ("--summary-json", "/nonexistent/x.json", ("--summary-json", "does not exist")),
        ("--log-file", "/nonexistent/run.log", ("--log-file", "does not exist")),
        ("--output", "/nonexistent/r.csv", ("--output", "does not exist")),
        ("--summary-json", "{dir}", ("--summary-json", "is a directory")),
    ],
)
def test_a_bad_output_path_sends_nothing(
    hostile: HostileServer, tmp_path: Path, flag: str, path: str, words: tuple[str, ...]
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    refused(run_to(hostile, csv, flag, path.format(dir=tmp_path)), *words)
    assert hostile.requests == []


def test_output_a_directory_leaves_no_lock_behind(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    (tmp_path / "files").mkdir()
    refused(run_to(hostile, csv, "--output", str(tmp_path / "files")), "is a directory")
    assert not (tmp_path / "files.lock").exists()
    assert hostile.requests == []


def test_a_journal_path_that_is_a_directory_is_refused(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    (tmp_path / "in.results.csv.journal").mkdir()
    refused(run_to(hostile, csv), "journal", "is a directory")
    assert hostile.requests == []


def test_a_bad_log_file_is_found_before_old_results_and_journal_are_touched(
    hostile: HostileServer, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    assert run_to(hostile, csv).code == 0
    results, journal = tmp_path / "in.results.csv", tmp_path / "in.results.csv.journal"
    before = (results.read_bytes(), journal.read_bytes())
    hostile.requests.clear()
    refused(run_to(hostile, csv, "--log-file", "/nonexistent/run.log"), "--log-file")
    assert (results.read_bytes(), journal.read_bytes()) == before
    assert hostile.requests == []


# -- check_outputs itself -----------------------------------------------------------------


def test_check_outputs_accepts_new_files_and_stream_names(tmp_path: Path) -> None:
    check_outputs(
        [
            *results_outputs(tmp_path / "r.csv"),
            Output("--summary-json", Path("/dev/stdout"), Kind.REPLACED, streams=True),
            Output("--log-file", tmp_path / "log", Kind.APPENDED, streams=True),
        ],
        inputs=[("the input file", tmp_path / "in.csv")],
    )


def test_check_outputs_refuses_a_symlinked_parent_component_only_at_the_last_step(
    tmp_path: Path,
) -> None:
    """A link in the directory part is how paths are (/tmp -> /private/tmp); only the last
    component of an output may not be one."""
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    check_outputs(results_outputs(tmp_path / "alias" / "r.csv"))


def test_check_outputs_refuses_any_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(UsageError, match="database"):
        check_outputs([Output("--summary-json", db, Kind.REPLACED)])


@as_root
def test_check_outputs_refuses_a_lock_or_journal_of_another_user(tmp_path: Path) -> None:
    lock = tmp_path / "r.csv.lock"
    lock.write_text("")
    os.chown(lock, NOBODY, NOBODY)
    with pytest.raises(UsageError, match="another user"):
        check_outputs(results_outputs(tmp_path / "r.csv"))


def test_check_outputs_refuses_a_lock_with_another_hard_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.link(victim, tmp_path / "r.csv.lock")
    with pytest.raises(UsageError, match="hard link"):
        check_outputs(results_outputs(tmp_path / "r.csv"))


@as_root
def test_check_outputs_refuses_a_read_only_directory(tmp_path: Path) -> None:
    with (
        small_tmpfs(tmp_path / "ro", "64k", read_only=True) as ro,
        pytest.raises(UsageError, match="not writable"),
    ):
        check_outputs([Output("--log-file", ro / "log", Kind.APPENDED)])


# -- a full disk ------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    where.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"can't mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> None:
    with (directory / "filler").open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()


@as_root
def test_disk_full_at_the_lock(hostile: HostileServer, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 2)
    with small_tmpfs(tmp_path / "full", "64k") as full:
        fill(full)
        done = run_to(hostile, csv, "--output", str(full / "r.csv"))
    refused(done, "lock", "no space left")
    assert hostile.requests == []


@as_root
def test_disk_full_during_a_dry_run(tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 3000)
    with small_tmpfs(tmp_path / "small", "64k") as small:
        done = run_cli("run", str(csv), "--dry-run", "--output", str(small / "r.csv"))
        left = sorted(p.name for p in small.iterdir())
    refused(done, "results file", "no space left")
    assert left == []  # no half-written temp file (and the lock is removed)


@as_root
def test_disk_full_mid_run_stops_with_a_message_and_resume_finishes(
    sandbox: object, tmp_path: Path
) -> None:
    from bulk_import.sandbox import SandboxServer

    assert isinstance(sandbox, SandboxServer)
    csv = tmp_path / "in.csv"
    numbers = write_numbers(csv, 400)
    env = cli_env(api_key="sandbox-key")
    with small_tmpfs(tmp_path / "small", "256k") as small:
        out = str(small / "r.csv")
        args = ("run", str(csv), "--base-url", sandbox.url, "--no-progress", "--output", out)
        done = run_cli(*args, env=env)
        assert done.code == 3, done.stderr
        assert "Traceback" not in done.stderr
        assert "internal error" not in done.stderr
        assert "no space left" in done.stderr or "disk is full" in done.stderr
        sent = sum(sandbox.state.created.values())
        assert 0 < sent < 400
        (small / "filler").unlink(missing_ok=True)
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)
        again = run_cli(*args, "--resume", env=env)
        assert again.code == 0, again.stderr
        rows = read_results(small / "r.csv")
    assert [r["status"] for r in rows] == ["imported"] * 400
    assert sandbox.state.created == dict.fromkeys(numbers, 1)  # each exactly once


def test_a_journal_write_failing_mid_run_is_exit_3(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same without a tmpfs: SQLite's "disk is full" injected after two rows."""
    csv = tmp_path / "in.csv"
    write_numbers(csv, 5)
    real = Journal.record
    calls = 0

    def record(self: Journal, result: object, **how: object) -> None:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise WriteError("can't write the journal: database or disk is full")
        real(self, result, **how)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "record", record)
    opts = RunOptions(file=csv, base_url=hostile.url, api_key="k", progress=False, concurrency=1)
    with pytest.raises(WriteError) as raised:
        run_import(opts, say=lambda _: None, handle_signals=False)
    assert raised.value.exit_code == 3
    assert 2 < len(hostile.requests) < 5


def test_a_full_disk_before_the_first_request_is_exit_2(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "in.csv"
    write_numbers(csv, 3)

    def sending(self: Journal, job: object) -> None:
        raise WriteError("can't write the journal: database or disk is full")

    monkeypatch.setattr(Journal, "sending", sending)
    opts = RunOptions(file=csv, base_url=hostile.url, api_key="k", progress=False)
    with pytest.raises(ResultsFileError) as raised:
        run_import(opts, say=lambda _: None, handle_signals=False)
    assert raised.value.exit_code == 2
    assert hostile.requests == []


def test_enospc_is_described_in_words() -> None:
    from bulk_import.outputs import describe

    assert describe(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on the device"
    )
    assert "symbolic link" in describe(OSError(errno.ELOOP, "Too many levels"))


@pytest.mark.parametrize("name", ["t.csv", "t.xlsx"])
def test_template_refuses_a_symlink_and_writes_a_new_file(tmp_path: Path, name: str) -> None:
    target = tmp_path / "target"
    before = precious(target)
    (tmp_path / name).symlink_to(target)
    refused(run_cli("template", str(tmp_path / name)), "symbolic link")
    assert snapshot(target) == before
    (tmp_path / name).unlink()
    done = run_cli("template", str(tmp_path / name))
    assert done.code == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "target"])
