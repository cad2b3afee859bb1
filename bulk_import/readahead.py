"""readahead: a big CSV's dry run reads the file in a second process while this one checks.

A dry run of a large CSV spends about half its CPU reading (the csv reader, decoding,
trimming: ``Table.chunks()``) and the other half checking the cells and writing the
results file.  ``chunks`` runs ``Table.chunks()`` in a forked child and hands its chunks
back through a pipe, so the two halves run on two cores.  The chunks are the very ones
``Table.chunks()`` gives (same rows, cells, problems, in order); an error the reading
raises (a changed file, an unreadable one) is raised here, in its place in the stream.

Only for files of at least ``READ_AHEAD_BYTES`` (a small file's dry run keeps its
start-up: no fork), on a system with ``os.fork``, from a process with no other thread
running.  The child never outlives the run: it ignores SIGINT (Ctrl-C reaches the whole
process group; this process stops it), dies of SIGTERM/SIGHUP and of SIGPIPE (its
reader gone: this process killed), and this process kills and reaps it when the stream
is closed early (an interrupt, an error while checking or writing).  The stop signals
are blocked over the fork and unblocked in the child once its handlers are its own, and
the fork's pid is kept before an interrupt can land (``interrupts.held``); a child ended
by a stop signal (sent to the whole group) makes an interrupt here, not an error
(docs/architecture.md, "The dry run").

A chunk crosses the pipe as one pickle, each column joined into one text on a separator
no cell of it holds (checked: the joined text has exactly one separator fewer than the
column has cells), else as its list of cells; a run of consecutive row numbers as its
first and its count.  That costs a fraction of pickling the lists themselves.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import threading
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from . import interrupts
from .errors import InputFileError
from .models import Chunk

if TYPE_CHECKING:
    from .load import Table

#: Files smaller than this are read in this process (about 60,000 realistic rows).
READ_AHEAD_BYTES = 8 << 20


_SEP = "\x00"
_HEAD = struct.Struct("<Q")
_PIPE_BYTES = 1 << 20
_HEAD_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux's fcntl; ignored where it is not known
_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def worth_it(table: Table) -> bool:
    """Whether ``table``'s dry run reads it in a second process: a big CSV that the stdlib
    reader reads (``os.fork`` needed).  A file whose first MB has no quote and no NUL is
    most likely one that pandas' C parser reads (``csvfast``): reading it costs so little
    that the hand-over would cost about what the second core saves.

    Never with another thread running (a library user's): a fork copies a lock another
    thread holds, held for ever in the child, and only the main thread can set the
    child's signal handlers."""
    from . import csvfast
    from .load import _CsvReader

    reader = table._reader
    if not hasattr(os, "fork") or not isinstance(reader, _CsvReader):
        return False
    if not _alone():
        return False
    try:
        if table.path.stat().st_size < READ_AHEAD_BYTES:
            return False
        head = os.pread(reader.file.fileno(), _HEAD_BYTES, 0)
    except OSError:
        return False
    plain = not reader.long_lines and reader.errors == "strict" and "16" not in reader.encoding
    return not (plain and not any(b in head for b in csvfast._UNSAFE))


def _alone() -> bool:
    """Only the main thread runs, and this is it: nothing else can hold a lock the fork
    would copy, and the child's signal handlers can be set."""
    return threading.current_thread() is threading.main_thread() and threading.active_count() == 1


def chunks(table: Table) -> Generator[Chunk, None, None]:
    """``table.chunks()``, read by a forked child process (see the module's notes)."""
    with interrupts.held():  # both ends kept before an interrupt can land
        read_fd, write_fd = os.pipe()
        pipe = open(read_fd, "rb", buffering=_PIPE_BYTES)  # noqa: SIM115 - closed below
        child = _Child(write_fd)
    with contextlib.suppress(OSError):
        import fcntl

        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    with pipe:
        try:
            _fork(child, table, read_fd)
            while True:
                kind, body = _receive(pipe, child)
                if kind == "chunk":
                    yield _unpacked(body)
                elif kind == "error":
                    raise body
                else:
                    child.done = True
                    return
        finally:
            with interrupts.held():  # a second interrupt: once the child is stopped
                child.stop()


class _Child:
    """The forked reader, once there is one: its pid, its end of the pipe while this
    process holds it too, and whether it is done with."""

    def __init__(self, write_fd: int) -> None:
        self.pid = 0
        self.write_fd = write_fd  # -1 once closed here
        self.done = False  # it sent its end: it exits by itself
        self.status: int | None = None  # its wait status, once reaped

    def close_write_end(self) -> None:
        fd, self.write_fd = self.write_fd, -1
        if fd >= 0:
            os.close(fd)

    def reap(self) -> int:
        """Wait for it to end (once: a reaped pid may be another process's)."""
        if self.status is None:
            try:
                self.status = os.waitpid(self.pid, 0)[1]
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler)
                self.status = 0
        return self.status

    def stop(self) -> None:
        """Kill it (unless it is done) and reap it; close this process's write end."""
        with contextlib.suppress(OSError):
            self.close_write_end()
        if self.pid and self.status is None:
            if not self.done:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            self.reap()


def _fork(child: _Child, table: Table, read_fd: int) -> None:
    """Fork the reader, keeping its pid before any interrupt can land (``interrupts``).

    The stop signals are blocked over the fork: the child starts with them blocked and
    unblocks them once it has its own handlers (``_child``), so that a signal sent to the
    whole group in that moment does what it does to the child (SIGINT nothing, SIGTERM
    and SIGHUP end it), never this process's handler run in the child, on this process's
    stack (its clean-up is this process's, its temporary results file among it)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        with interrupts.held():
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
            pid = os.fork()
            if pid == 0:  # the child: never returns
                _child(table, read_fd, child.write_fd, before)
            child.pid = pid
            child.close_write_end()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _receive(pipe: BinaryIO, child: _Child) -> tuple[str, Any]:
    head = pipe.read(_HEAD.size)
    if len(head) == _HEAD.size:
        (size,) = _HEAD.unpack(head)
        body = pipe.read(size)
        if len(body) == size:
            kind, value = pickle.loads(body)  # noqa: S301 - our own child's, through a pipe
            return kind, value
    status = child.reap()
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in _STOPS:
        # A stop signal to the whole group (a service manager's SIGTERM) may end the child
        # before this process has handled its own: the run was interrupted all the same.
        raise KeyboardInterrupt(signal.Signals(os.WTERMSIG(status)).name)
    raise InputFileError(
        f"the process reading the file (pid {child.pid}) stopped before the end of it",
        hint="run again; if it happens again, report it",
    )


def _child(table: Table, read_fd: int, write_fd: int, mask: Iterable[int]) -> None:
    """Read ``table`` and send its chunks, then an end (or the error); exit, run nothing
    of this process's (no ``finally``, no ``atexit``, no buffered output flushed twice).
    Started with the stop signals blocked (``_fork``): its own handlers first."""
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_fd)
        with open(write_fd, "wb", buffering=_PIPE_BYTES) as pipe:
            try:
                for chunk in table.chunks():
                    _send(pipe, "chunk", _packed(chunk))
            except Exception as exc:  # noqa: BLE001 - raised in the parent, in its place
                _send(pipe, "error", _portable(exc, table))
            else:
                _send(pipe, "end", None)
    except BaseException:  # noqa: BLE001 - the parent reports the stream's end
        status = 1
    finally:
        os._exit(status)


def _portable(exc: Exception, table: Table) -> Exception:
    """``exc`` if it comes back from a pickle as itself, else an ``InputFileError`` with
    its text (an error whose ``__init__`` takes other arguments than its message)."""
    try:
        back = pickle.loads(pickle.dumps(exc, protocol=5))  # noqa: S301 - our own bytes
    except Exception:  # noqa: BLE001 - any failure: its text
        back = None
    if type(back) is type(exc) and str(back) == str(exc):
        return exc
    return InputFileError(f"{table.path}: {exc}")


def _send(pipe: BinaryIO, kind: str, value: object) -> None:
    body = pickle.dumps((kind, value), protocol=5)
    pipe.write(_HEAD.pack(len(body)))
    pipe.write(body)
    pipe.flush()


def _joined(cells: list[str]) -> str | list[str]:
    """``cells`` as one text if no cell holds the separator (and there is a cell)."""
    joined = _SEP.join(cells)
    return joined if cells and joined.count(_SEP) == len(cells) - 1 else cells


def _packed(chunk: Chunk) -> tuple[Any, ...]:
    rows = chunk.rows
    span = rows and rows[-1] - rows[0] == len(rows) - 1  # rising numbers: consecutive
    columns = {name: _joined(cells) for name, cells in chunk.cells.items()}
    return ((rows[0], len(rows)) if span else rows), columns, chunk.problems


def _unpacked(body: tuple[Any, ...]) -> Chunk:
    rows, columns, problems = body
    if isinstance(rows, tuple):
        rows = list(range(rows[0], rows[0] + rows[1]))
    cells = {n: c.split(_SEP) if isinstance(c, str) else c for n, c in columns.items()}
    return Chunk(rows, cells, problems)
