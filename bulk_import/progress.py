"""Progress for people and for cron: a tqdm bar on a terminal, plain lines elsewhere.

On a terminal: one bar (rows done, rate, ETA, failures so far).  When stderr is not a
terminal (cron, CI, a pipe): no control codes at all, one plain line every ``every``
seconds instead.  ``enabled=False`` (``--quiet``/``--no-progress``) shows nothing.
``unit`` names what is counted: rows (``update`` with each result), or the numbers
``export`` has listed (``advance`` with each page's count).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Never, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

from .models import OK_STATUSES, RowResult, Status


class Progress:
    def __init__(
        self,
        total: int | None,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "row",
    ) -> None:
        self.stream = stream or sys.stderr
        self.unit = unit
        self.total = total
        self.done = 0
        self.problems = 0
        self._clock = clock
        self._started = clock()
        self._every = every
        self._last_line = self._started
        self._bar: tqdm[Never] | None = None
        self._plain = enabled and not _isatty(self.stream)
        if enabled and not self._plain:
            from tqdm import tqdm  # here: cron and --no-progress never load it

            self._bar = tqdm(
                total=total, unit=unit, file=self.stream, dynamic_ncols=True, smoothing=0.1
            )

    def update(self, result: RowResult) -> None:
        if result.status is Status.NOT_ATTEMPTED:
            return  # not done: a stopped run's bar stays where it stopped
        self.done += 1
        if result.status not in OK_STATUSES:
            self.problems += 1
        if self._bar is not None:
            self._bar.update(1)
            if result.status not in OK_STATUSES:
                self._bar.set_postfix(failed=self.problems, refresh=False)
        elif self._plain:
            self._maybe_line()

    def advance(self, count: int) -> None:
        """``count`` more done, none of them a problem (a page of numbers listed)."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self._plain:
            self._maybe_line()

    def _maybe_line(self) -> None:
        now = self._clock()
        if now - self._last_line >= self._every:
            self._last_line = now
            self.stream.write(self.text(now) + "\n")
            self.stream.flush()

    def text(self, now: float | None = None) -> str:
        elapsed = max((now if now is not None else self._clock()) - self._started, 1e-9)
        of = f"/{self.total}" if self.total else ""
        unit = self.unit
        if unit != "row":
            return f"progress: {self.done}{of} {unit}s, {self.done / elapsed:.0f} {unit}s/s"
        return (
            f"progress: {self.done}{of} rows, {self.problems} invalid or failed, "
            f"{self.done / elapsed:.0f} rows/s"
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, text: str, fallback: Callable[[str], None]) -> None:
        """Print ``text`` on a line of its own above the bar (else through ``fallback``)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            fallback(text)

    def close(self) -> None:
        """Stop where it is: later rows (marked not attempted) do not move it."""
        self._plain = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
