"""interrupts: a stop signal held back over the few lines that must run whole.

A dry run turns SIGINT, SIGTERM and SIGHUP into ``KeyboardInterrupt`` (``interrupt``, the
handler ``runner`` installs), so that it cleans up and the CLI exits 130.  Python raises it
between any two bytecodes of the main thread, so it can land between making a file and
keeping its name for the clean-up: ``mkstemp`` has made ``.results.csv.x1y2z3w4.tmp`` and
the caller has not yet stored its path, and nothing removes it (docs/architecture.md,
"Interrupts").  ``held()`` closes such a window: a stop signal that arrives inside it is
noted, and raised as the block ends, where the caller knows what to remove.

Only the main thread is ever interrupted this way (Python runs signal handlers there), so
``held()`` in another thread holds nothing back.  With a handler that is not ``interrupt``
(the library's default: Ctrl-C is Python's own ``KeyboardInterrupt``) nothing is held.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_depth = 0  # how many ``held()`` blocks the main thread is in
_noted: list[str] = []  # the signals that came inside them, by name


def interrupt(signum: int, _frame: FrameType | None) -> None:
    """The stop signals' handler: ``KeyboardInterrupt``, at once or as ``held()`` ends."""
    name = signal.Signals(signum).name
    if _depth:
        _noted.append(name)
        return
    raise KeyboardInterrupt(name)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Run the block whole: a stop signal that arrives in it is raised as it ends (after
    the block's own exception, if any, which it replaces: the run was interrupted)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not _depth:
        _noted.clear()  # left over by an interrupt raised at once while one was noted
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _noted:
            name = _noted[0]
            _noted.clear()
            raise KeyboardInterrupt(name)
