"""outputs: every file a command writes, checked before anything is sent, and opened safely.

A command lists what it will write (``Output``: which flag names it, the path, how it is
written) and calls ``check_outputs`` before its first request and before it truncates,
replaces or deletes anything.  That refuses, with a ``UsageError`` (exit 2) naming the flag:

- a path whose directory is missing or not writable, or that is a directory;
- a path that is a symbolic link (outputs are never written through links: name the
  target itself);
- a path that is an input (compared by device and inode, so a hard link counts), or the
  same file as another output;
- a name that is another results file's journal or lock, or any SQLite database;
- a special file (FIFO, character device) where a regular file is needed, and a file the
  tool writes in place (log, lock, journal) that has other hard links or, for the tool's
  own lock and journal, another owner.

The openers below never follow a link at the last path component (``O_NOFOLLOW``), never
truncate a file in place (a new file is made with ``mkstemp`` beside the target and renamed
over it), and never change the mode of a file they did not create.  ``/dev/stdout`` and
``/dev/stderr`` (for ``--summary-json`` and ``--log-file``) are written through the
process's own stream, and a FIFO or character device is written as it is, without
truncating it or changing its mode.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TextIO, cast

from .errors import UsageError


def is_workbook_path(path: Path) -> bool:
    """True for an output that is written as a workbook (``.xlsx``)."""
    return path.suffix.lower() == ".xlsx"


JOURNAL_SUFFIX = ".journal"
LOCK_SUFFIX = ".lock"
#: The files SQLite keeps beside a database (WAL, shared memory, rollback journal).
DATABASE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
_SIDE_FILE_SUFFIXES = (
    LOCK_SUFFIX,
    JOURNAL_SUFFIX,
    *(JOURNAL_SUFFIX + s for s in DATABASE_SIDE_SUFFIXES),
)
_SQLITE_MAGIC = b"SQLite format 3\x00"

#: Paths that name the process's own standard streams.
STREAMS: dict[str, int] = {
    "/dev/stdout": 1,
    "/dev/stderr": 2,
    "/dev/fd/1": 1,
    "/dev/fd/2": 2,
    "/proc/self/fd/1": 1,
    "/proc/self/fd/2": 2,
}


class Kind(Enum):
    """How an output is written, which decides what an existing file there may be."""

    REPLACED = "replaced"  # a new file renamed over the path (results, summary)
    APPENDED = "appended"  # written in place at its end (the log)
    DATABASE = "database"  # the journal and its SQLite side files, written in place
    LOCK = "lock"  # the lock file, written in place


@dataclass(frozen=True, slots=True)
class Output:
    """One file a command will write: ``what`` is how the user names it (``--log-file``)."""

    what: str
    path: Path
    kind: Kind
    streams: bool = False  # /dev/stdout, a FIFO or a character device are accepted


def report_outputs(summary_json: Path | None, log_file: Path | None) -> list[Output]:
    """The ``--summary-json`` and ``--log-file`` outputs, where given."""
    outputs = []
    if summary_json is not None:
        outputs.append(Output("--summary-json", summary_json, Kind.REPLACED, streams=True))
    if log_file is not None:
        outputs.append(Output("--log-file", log_file, Kind.APPENDED, streams=True))
    return outputs


def journal_path(results: Path) -> Path:
    return results.with_name(results.name + JOURNAL_SUFFIX)


def lock_path(results: Path) -> Path:
    return results.with_name(results.name + LOCK_SUFFIX)


def results_outputs(results: Path, *, what: str = "--output", journal: bool = True) -> list[Output]:
    """A results file and what lives beside it: its lock and (unless a dry run) journal."""
    outputs = [
        Output(what, results, Kind.REPLACED),
        Output(f"the lock file of {what}", lock_path(results), Kind.LOCK),
    ]
    if journal:
        db = journal_path(results)
        outputs.append(Output(f"the journal of {what}", db, Kind.DATABASE))
        outputs += [
            Output(f"the journal of {what}", Path(f"{db}{s}"), Kind.DATABASE)
            for s in DATABASE_SIDE_SUFFIXES
        ]
    return outputs


def check_outputs(outputs: Iterable[Output], *, inputs: Sequence[tuple[str, Path]] = ()) -> None:
    """Refuse (``UsageError``, exit 2) any output that can't or must not be written.

    ``inputs`` are ``(what, path)`` of the files the command reads; no output may be one.
    Pass only the outputs this run will write.
    """
    seen: dict[object, Output] = {}
    input_ids: dict[object, tuple[str, Path]] = {}
    for what, path in inputs:
        try:
            st = os.stat(path)
        except OSError:
            continue  # reading it will say what is wrong
        input_ids[(st.st_dev, st.st_ino)] = (what, path)
    for out in outputs:
        identity = _check_one(out)
        clash = input_ids.get(identity) if isinstance(identity, tuple) else None
        if clash is not None:
            what, path = clash
            link = "" if _same_path(out.path, path) else " (the same file under another name)"
            raise UsageError(
                f"{out.what} {out.path} is {what} {path}{link}: it would be overwritten",
                hint=f"choose another path for {_flag(out)}",
            )
        other = seen.get(identity)
        if other is not None:
            raise UsageError(
                f"{out.what} and {other.what} are the same file: {out.path}",
                hint=f"give {_flag(out)} a path of its own",
            )
        seen[identity] = out


def _flag(out: Output) -> str:
    """The flag that moves an output (side files move with ``--output``)."""
    return out.what.rsplit(" of ", 1)[-1]


def _same_path(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _check_one(out: Output) -> object:
    """Check one output; return what identifies its file (to find two outputs in one)."""
    path, what, fix = out.path, out.what, f"choose another path for {_flag(out)}"
    if out.streams and str(path) in STREAMS:
        return ("stream", STREAMS[str(path)])
    if not path.name or path.name in (".", ".."):
        raise UsageError(f"{what} {path} is not a file name", hint=fix)
    _check_name(out)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return _check_new(out)
    except OSError as exc:
        raise UsageError(f"{what} {path} can't be used: {describe(exc)}", hint=fix) from exc
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        target = _link_target(path)
        raise UsageError(
            f"{what} {path} is a symbolic link{target}: outputs are never written through links",
            hint=f"name the file itself, or remove the link ({fix})",
        )
    if stat.S_ISDIR(mode):
        example = (path / "name").as_posix()
        raise UsageError(
            f"{what} {path} is a directory", hint=f"give a file path, such as {example}"
        )
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        if not out.streams:
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device"
            raise UsageError(
                f"{what} {path} is {kind}, not a regular file",
                hint=f"this output is replaced and kept beside its journal and lock: {fix}",
            )
        if not os.access(path, os.W_OK):
            raise UsageError(f"{what} {path} is not writable", hint=fix)
        return (st.st_dev, st.st_ino)
    if not stat.S_ISREG(mode):
        raise UsageError(f"{what} {path} is not a regular file", hint=fix)
    if out.kind is not Kind.REPLACED:  # written in place: the file itself must do
        if st.st_nlink > 1:
            raise UsageError(
                f"{what} {path} has {st.st_nlink - 1} other hard link(s): writing it would "
                "change those files too",
                hint=f"remove the other links, or {fix}",
            )
        if out.kind is not Kind.APPENDED and st.st_uid != os.geteuid():
            raise UsageError(
                f"{what} {path} belongs to another user (uid {st.st_uid})",
                hint=f"if no run of theirs is using it, delete it; or {fix}",
            )
        if not os.access(path, os.R_OK | os.W_OK):
            raise UsageError(f"{what} {path} is not writable", hint=fix)
    if out.kind in (Kind.REPLACED, Kind.APPENDED) and _is_sqlite(path):
        raise UsageError(
            f"{what} {path} is a database (the journal of a run?): it would be destroyed",
            hint=fix,
        )
    _check_directory(out)
    return (st.st_dev, st.st_ino)


def _check_name(out: Output) -> None:
    """Refuse a user-named output that is the journal or lock of a results file."""
    if out.kind not in (Kind.REPLACED, Kind.APPENDED):
        return
    name = out.path.name
    for suffix in _SIDE_FILE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            owner = out.path.with_name(name[: -len(suffix)])
            if os.path.lexists(out.path) or os.path.lexists(owner):
                role = "lock" if suffix == LOCK_SUFFIX else "journal"
                raise UsageError(
                    f"{out.what} {out.path} is the {role} file of the results file {owner}",
                    hint=f"choose another path for {_flag(out)}",
                )


def _check_new(out: Output) -> object:
    """A path that does not exist yet: its directory must exist and be writable."""
    parent = _check_directory(out)
    return ("new", os.path.realpath(parent), out.path.name)


def _check_directory(out: Output) -> Path:
    parent = out.path.parent
    fix = f"create it, or choose another path for {_flag(out)}"
    try:
        st = os.stat(parent)
    except FileNotFoundError as exc:
        raise UsageError(
            f"{out.what} {out.path}: the directory {parent} does not exist", hint=fix
        ) from exc
    except OSError as exc:
        raise UsageError(f"{out.what} {out.path}: {parent}: {describe(exc)}", hint=fix) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{out.what} {out.path}: {parent} is not a directory", hint=fix)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"{out.what} {out.path}: the directory {parent} is not writable",
            hint=f"choose another path for {_flag(out)}",
        )
    return parent


def _link_target(path: Path) -> str:
    try:
        return f" (to {os.readlink(path)})"
    except OSError:
        return ""


def _is_sqlite(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.read(fd, len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def describe(exc: OSError) -> str:
    """What went wrong with a file, in words (``O_NOFOLLOW``'s ELOOP means "a link")."""
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link (outputs are never written through links)"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


# -- opening --------------------------------------------------------------------------


class UnsafeFileError(OSError):
    """An output turned out to be a link, a special file or another's file when opened."""


def new_file_beside(path: Path) -> tuple[TextIO, Path]:
    """A new owner-only (0600) text file beside ``path`` (``O_EXCL``); returns it and its path.

    Write it, then ``os.replace`` it over ``path``: that renames, so nothing at ``path``
    (a link, a hard link, another user's file) is ever written through.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    return cast(TextIO, open(fd, "w", encoding="utf-8", newline="")), Path(name)


#: The random part ``mkstemp`` puts in a name: 8 of these characters.
_TEMP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def remove_leftovers(path: Path) -> list[Path]:
    """Delete what ``new_file_beside`` made for ``path`` and a killed run never renamed:
    ``.<name>.<8 random characters>.tmp``, a regular owner-only file of this user.

    Call it only while holding ``path``'s lock (lock.py): no live run is writing them then.
    A name that merely looks alike (a link, another mode, another owner) is left alone.
    Returns what was deleted.
    """
    prefix = f".{path.name}."
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix) : -len(".tmp")]
        if len(middle) != 8 or not set(middle) <= _TEMP_CHARS:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (
                stat.S_ISREG(st.st_mode)
                and st.st_uid == os.getuid()
                and stat.S_IMODE(st.st_mode) == 0o600
            ):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to delete
    return removed


def open_stream(path: Path) -> TextIO | None:
    """A text stream to ``path`` if it is a standard stream, a FIFO or a device, else None.

    Nothing is created, truncated or chmodded: ``/dev/stdout`` writes through the process's
    own stream (so ``>> cron.log`` appends), a FIFO or a device is opened as it is.
    """
    if str(path) in STREAMS:
        fd = os.dup(STREAMS[str(path)])
    else:
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            return None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a FIFO nobody reads: don't wait forever
                raise UnsafeFileError(errno.ENXIO, "no process is reading this FIFO") from exc
            raise
        st = os.fstat(fd)
        if not (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            os.close(fd)
            raise UnsafeFileError(errno.EEXIST, "the file changed while it was opened")
        os.set_blocking(fd, True)
    return cast(TextIO, open(fd, "w", encoding="utf-8", newline=""))


def open_append(path: Path) -> TextIO:
    """``path`` opened to append, created owner-only if absent, never through a link.

    A standard stream, FIFO or device is written as it is; an existing regular file keeps
    its mode, and must have no other hard link.
    """
    stream = open_stream(path)
    if stream is not None:
        return stream
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = os.open(path, flags | os.O_NONBLOCK)
        _own_regular(fd, path, owner=False)
        os.set_blocking(fd, True)
    return cast(TextIO, open(fd, "a", encoding="utf-8", newline=""))


def open_own(path: Path) -> int:
    """``path`` opened read-write, created owner-only if absent; a file of the tool's own.

    Refuses (``UnsafeFileError``) a link, a special file, a file with other hard links or
    another user's file; an existing one is made owner-only (through the descriptor).
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    _own_regular(fd, path, owner=True)
    os.set_blocking(fd, True)
    os.fchmod(fd, 0o600)
    return fd


def prepare_database(path: Path) -> None:
    """Create (or check) a SQLite database and its side files as files of the tool's own.

    SQLite opens them itself and follows links, so each is made here first, with
    ``open_own``; a rollback journal left beside it must not be a link either.
    """
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        os.close(open_own(p))
    rollback = Path(f"{path}-journal")
    if os.path.islink(rollback):
        raise UnsafeFileError(errno.ELOOP, "is a symbolic link", str(rollback))


def _own_regular(fd: int, path: Path, *, owner: bool) -> None:
    st = os.fstat(fd)
    problem = ""
    if not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_nlink > 1:
        problem = "has other hard links"
    elif owner and st.st_uid != os.geteuid():
        problem = f"belongs to another user (uid {st.st_uid})"
    if problem:
        os.close(fd)
        raise UnsafeFileError(errno.EPERM, problem, str(path))
