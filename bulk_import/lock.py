"""One run per results file: an advisory ``flock`` on ``<results>.lock``.

The kernel drops the lock when the process that holds it dies, however it dies, so a lock
left by a killed run never blocks the next one.  The file holds the holder's PID and start
time, so the second run can say who is running.  A run removes its lock file when it ends
(only a killed run leaves one): it unlinks the file while still holding the lock, and a
run that locked a file meanwhile unlinked finds that out and locks the new one instead.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import LockedError, ResultsFileError
from .outputs import describe, lock_path, open_own

__all__ = ["RunLock", "lock_path"]


class RunLock:
    """``with RunLock(results_path):`` holds the lock for the body, or raises LockedError."""

    def __init__(self, results: Path) -> None:
        self.path = lock_path(results)
        self.results = results
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = self._lock_once()
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed it as we locked it: lock the one there now
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {stamp}\n".encode())
        except OSError as exc:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise ResultsFileError(
                f"can't write the lock file {self.path}: {describe(exc)}",
                hint="free some space, or choose another place with output",
                param="output",
            ) from exc
        self._fd = fd

    def _lock_once(self) -> int:
        try:
            fd = open_own(self.path)  # never through a link, never another user's file
        except OSError as exc:
            raise ResultsFileError(
                f"can't create the lock file {self.path}: {describe(exc)}",
                hint="choose another place with output",
                param="output",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockedError(
                f"another run ({holder}) is writing {self.results}",
                hint="wait for it to finish, or choose another output",
                param="output",
            ) from exc
        return fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            # Unlinked while locked: a run waiting on this inode sees it is gone (acquire).
            if _same_file(self._fd, self.path):
                self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a lock file left behind is harmless
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        there = os.stat(path)
    except OSError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"
