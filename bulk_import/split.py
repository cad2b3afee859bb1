"""split: a big CSV's dry run in two processes, each reading, checking and writing half.

A dry run of a large CSV is about half reading (the stdlib csv reader: ``Table.chunks()``)
and half checking and formatting the results lines.  ``checked`` cuts the file in two at
the start of a line near the middle (``SHARE``): a forked child reads, checks and formats
the second part by itself, while this process does the first.  Only small things cross
the pipe, once: the second part's results lines (one text), its counts, and the numbers
it saw first.  This process's own run is the one-process run: it reads the whole file
with one reader, which pauses where the second part starts (``Table.paused_chunks``).
There it takes the child's lines only if they are, provably, what it would write itself:

* the reader has read exactly the lines before the cut, so a record ends there: the cut
  is not inside a quoted cell, and the child's reader, starting there, starts where this
  one would (the csv reader's state at the start of a record is the same whatever came
  before it);
* the next row number is the one the child gave its first record (the lines before the
  cut, plus one): no record before the cut took more than one line;
* no number the child saw first is one the first part holds: every ``duplicate of row
  N`` the child wrote names the whole file's first row with that number (the child's own
  first rows are the file's), and no first row of the child's is a duplicate.

Otherwise (a cut inside a quoted cell, a multi-line cell before the cut, a duplicate
across the parts, an error in the child's part, a child that died) the child is killed
and this process's reader simply reads on past the pause: the one-process run, to the end
(an error in the second part is then raised in its place, by this process's reader).

Only for files of at least ``SPLIT_BYTES`` that the stdlib reader reads (a plain file goes
to pandas' reader: ``csvfast``), in an encoding where the bytes ``\\n`` and ``\\r`` are
those characters wherever they stand, on a system with ``os.fork``, from a process with no
other thread running (a fork copies the locks other threads hold).  The child never
outlives the run: it ignores SIGINT (Ctrl-C reaches the whole process group; this process
stops it), dies of SIGTERM/SIGHUP and of SIGPIPE (this process gone), and this process
kills and reaps it when the run ends early.  The stop signals are blocked over the fork
and unblocked in the child once its handlers are its own, and the fork's pid is kept
before an interrupt can land (``interrupts.held``); a child ended by a stop signal (sent to
the whole group) makes an interrupt here (docs/architecture.md, "The dry run").
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import pickle
import signal
import struct
import threading
from array import array
from collections import Counter
from collections.abc import Generator, Iterable
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple

from . import interrupts
from .models import ResultColumns, ResultLines

if TYPE_CHECKING:
    from .load import Pause, Table
    from .validate import Validator

#: Files smaller than this are read in one process (about 60,000 realistic rows).
SPLIT_BYTES = 8 << 20
#: The part of the file (in bytes) this process reads; the child reads the rest.  Less
#: than half: this process also writes the results file and the child's lines.
SHARE = 0.48

#: Rows a chunk (at most): a chunk's cells, as the csv reader lays them out (a row's
#: together), then stay in the CPU's cache for the checks that scan them column by
#: column; 10,000-row chunks cost about a quarter more CPU (benchmarks/README.md)
CHUNK_ROWS = 1000

_HEAD = struct.Struct("<Q")
_PIPE_BYTES = 1 << 20
_SCAN = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux's fcntl; ignored where it is not known
_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Codecs in which the bytes 0x0A and 0x0D are always "\n" and "\r" and decoding can start
#: at any line (no state carried across lines, no BOM: UTF-8's BOM is read by ``load``)
_LINE_SAFE = frozenset({"utf-8", "utf-8-sig", "ascii", "iso8859-1", "cp1252", "iso8859-15"})


class Cut(NamedTuple):
    """Where the child's part starts: the byte, and how many lines come before it."""

    start: int
    lines: int


def worth_it(table: Table) -> bool:
    """Whether ``table``'s dry run is split: a big CSV that the stdlib reader reads
    (a file whose first MB has no quote and no NUL most likely goes to pandas' faster
    reader instead), in a line-safe encoding, with ``os.fork``, and no other thread."""
    from . import csvfast
    from .load import _CsvReader

    reader = table._reader
    if not hasattr(os, "fork") or not isinstance(reader, _CsvReader) or not _alone():
        return False
    try:
        if codecs.lookup(reader.encoding).name not in _LINE_SAFE:
            return False
        if table.path.stat().st_size < SPLIT_BYTES:
            return False
        head = os.pread(reader.file.fileno(), _SCAN, 0)
    except (OSError, LookupError):
        return False
    plain = not reader.long_lines and reader.errors == "strict"
    return not (plain and not any(b in head for b in csvfast._UNSAFE))


def _alone() -> bool:
    """Only the main thread runs, and this is it: nothing else can hold a lock the fork
    would copy, and the child's signal handlers can be set."""
    return threading.current_thread() is threading.main_thread() and threading.active_count() == 1


def cut(fd: int, size: int) -> Cut | None:
    """The start of the first line at or after ``SHARE`` of the file, and the number of
    lines before it (``\\n``, ``\\r`` and ``\\r\\n`` each end one, as the text stream
    splits them); None if there is no such line."""
    at = int(size * SHARE)
    tail = os.pread(fd, _SCAN, at)
    newline = tail.find(b"\n")
    if newline < 0 or at + newline + 1 >= size:
        return None
    start = at + newline + 1
    lines, pos, last = 0, 0, 0
    buffer = bytearray(_SCAN)
    while pos < start:
        block = memoryview(buffer)[: min(_SCAN, start - pos)]
        got = os.preadv(fd, [block], pos)
        if not got:
            return None
        lines += buffer.count(b"\n", 0, got)
        if buffer.find(b"\r", 0, got) >= 0:  # a lone "\r" ends a line too, "\r\n" one
            lines += buffer.count(b"\r", 0, got) - buffer.count(b"\r\n", 0, got)
        if last == 0x0D and buffer[0] == 0x0A:  # a "\r\n" across two blocks: one line
            lines -= 1
        last = buffer[got - 1]
        pos += got
    return Cut(start, lines)


def checked(
    table: Table, validator: Validator
) -> Generator[ResultColumns | ResultLines, None, None]:
    """The dry run's results of ``table`` in order, as ``validator.check_chunk`` over
    ``table.chunks()`` gives them, the second part as lines a child wrote when they are
    provably the same (see the module's notes)."""
    where = cut(table._reader.file.fileno(), table.path.stat().st_size)  # type: ignore[union-attr]
    if where is None:
        yield from map(validator.check_chunk, table.chunks())
        return
    from .load import Pause

    with interrupts.held():  # both ends kept before an interrupt can land
        read_fd, write_fd = os.pipe()
        pipe = io.BufferedReader(io.FileIO(read_fd, "rb"), _PIPE_BYTES)
        child = _Child(write_fd)
    with contextlib.suppress(OSError):
        import fcntl

        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    with pipe:
        try:
            _fork(child, table, validator, where, read_fd)
            pause = Pause(where.lines)
            seen = validator._seen
            assert isinstance(seen, dict)  # a dry run's (``Validator``)
            mine = array("q")  # the hashes of the numbers this part saw first
            for chunk in table.paused_chunks(pause, min(table.chunk_rows, CHUNK_ROWS)):
                if chunk is not None:
                    before = len(seen)
                    columns = validator.check_chunk(chunk)
                    _new_hashes(seen, before, mine)
                    yield columns
                    continue
                lines = _taken(pipe, child, mine, pause, where)
                if lines is not None:
                    yield lines
                    return
                child.stop()  # the one-process run from here: the reader reads on
                child.interrupted()
        finally:
            with interrupts.held():  # a second interrupt: once the child is stopped
                child.stop()


def _taken(
    pipe: io.BufferedReader[io.FileIO], child: _Child, mine: array[int], pause: Pause, where: Cut
) -> ResultLines | None:
    """The child's lines, if they are what this process would write from the pause on."""
    if pause.lines != where.lines or pause.next_row != where.lines + 1:
        return None  # the cut is inside a record, or a record before it took two lines
    # Numbers are compared by their hashes (the child's are this process's: the same hash
    # secret); two numbers with one hash are taken for one (then this process reads on:
    # slower, never wrong).
    ours = set(mine)  # while the child may still be at work
    got = _receive(pipe, child)
    if got is None:
        return None
    counts, theirs, text = got
    if not ours.isdisjoint(theirs):
        return None  # a duplicate across the parts: its first row is in the first part
    return ResultLines(text, counts)


def _new_hashes(seen: dict[str, int], before: int, into: array[int]) -> None:
    """Add the hashes of the numbers ``seen`` got since it held ``before`` (the last ones
    in it: a dict keeps its order), while they are still in the CPU's caches."""
    into.extend(map(hash, islice(reversed(seen), len(seen) - before)))


class _Child:
    """The forked child, once there is one: its pid, its end of the pipe while this
    process holds it too, and whether it is done with."""

    def __init__(self, write_fd: int) -> None:
        self.pid = 0
        self.write_fd = write_fd  # -1 once closed here
        self.done = False  # it sent its lines: it exits by itself
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

    def interrupted(self) -> None:
        """Raise ``KeyboardInterrupt`` if a stop signal ended it (once reaped): a signal to
        the whole group (a service manager's SIGTERM) may end it before this process has
        handled its own, and the run was interrupted all the same."""
        status = self.status
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) in _STOPS:
            raise KeyboardInterrupt(signal.Signals(os.WTERMSIG(status)).name)

    def stop(self) -> None:
        """Kill it (unless it is done) and reap it; close this process's write end."""
        with contextlib.suppress(OSError):
            self.close_write_end()
        if self.pid and self.status is None:
            if not self.done:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            self.reap()


def _fork(child: _Child, table: Table, validator: Validator, where: Cut, read_fd: int) -> None:
    """Fork the child, keeping its pid before any interrupt can land (``interrupts``).

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
                _child(table, validator, where, read_fd, child.write_fd, before)
            child.pid = pid
            child.close_write_end()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _receive(
    pipe: io.BufferedReader[io.FileIO], child: _Child
) -> tuple[dict[str, int], array[int], str] | None:
    """The child's counts, the hashes of the numbers it saw first and its lines; None if it
    failed or died (a stop signal that ended it is an interrupt here)."""
    head = pipe.read(_HEAD.size)
    if len(head) == _HEAD.size:
        (size,) = _HEAD.unpack(head)
        body = pipe.read(size)
        if len(body) == size:
            got = pickle.loads(body)  # noqa: S301 - our own child's, through a pipe
            if got is None:
                child.done = True
                return None
            counts, hash_bytes, text_bytes = got
            hashes = array("q", bytes(hash_bytes))
            raw = pipe.read(text_bytes) if pipe.readinto(hashes) == hash_bytes else b""
            if len(raw) == text_bytes:
                child.done = True
                return counts, hashes, raw.decode("utf-8", "surrogatepass")
    child.reap()
    child.interrupted()
    return None


def _child(
    table: Table,
    validator: Validator,
    where: Cut,
    read_fd: int,
    write_fd: int,
    mask: Iterable[int],
) -> None:
    """Read, check and format the part from ``where`` on and send the lines, the counts
    and the numbers seen first (or None: an error, which this process's reader will meet
    in its place); exit, running nothing of this process's (no ``finally``, no ``atexit``,
    no buffered output flushed twice).  Started with the stop signals blocked
    (``_fork``): its own handlers first."""
    from .record import _csv_lines

    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_fd)
        seen: dict[str, int] = {}
        validator._seen = seen  # this part's numbers only: the first part's are checked there
        head: tuple[dict[str, int], int, int] | None
        try:
            texts: list[bytes] = []
            counts: Counter[str] = Counter()
            hashes = array("q")
            rows = min(table.chunk_rows, CHUNK_ROWS)
            for chunk in table.chunks_from(where.start, where.lines + 1, rows):
                before = len(seen)
                columns = validator.check_chunk(chunk)
                _new_hashes(seen, before, hashes)
                texts.append(_csv_lines(columns).encode("utf-8", "surrogatepass"))
                counts.update(columns.status)
            head = (dict(counts), len(hashes) * hashes.itemsize, sum(map(len, texts)))
        except Exception:  # noqa: BLE001 - this process's reader meets it in its place
            head, hashes, texts = None, array("q"), []
        body = pickle.dumps(head, protocol=5)
        with open(write_fd, "wb", buffering=0) as pipe:
            for data in (_HEAD.pack(len(body)), body, hashes.tobytes(), *texts):
                view = memoryview(data)
                while view:
                    view = view[pipe.write(view) or 0 :]
    except BaseException:  # noqa: BLE001 - this process reads on by itself
        status = 1
    finally:
        os._exit(status)
