"""lock: one run per results file; a dead holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulk_import.errors import LockedError
from bulk_import.lock import RunLock, lock_path

HOLD = """
import sys, time
from pathlib import Path
from bulk_import.lock import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def _holder(results: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(results)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_is_refused_and_names_the_holder(tmp_path: Path) -> None:
    results = tmp_path / "out.csv"
    proc = _holder(results)
    try:
        with pytest.raises(LockedError) as info:
            RunLock(results).acquire()
        assert f"pid {proc.pid}" in str(info.value)
        assert info.value.exit_code == 75
    finally:
        proc.kill()
        proc.communicate()  # waits, and closes the pipe


def test_lock_of_a_killed_run_does_not_block(tmp_path: Path) -> None:
    results = tmp_path / "out.csv"
    proc = _holder(results)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # waits, and closes the pipe
    assert lock_path(results).exists()  # the stale file is still there...
    with RunLock(results):  # ...and does not block
        pass


def test_lock_released_after_the_body(tmp_path: Path) -> None:
    results = tmp_path / "out.csv"
    with RunLock(results), pytest.raises(LockedError):
        RunLock(results).acquire()
    started = time.monotonic()
    with RunLock(results):
        pass
    assert time.monotonic() - started < 1
