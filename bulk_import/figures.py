"""figures: what a run's requests did, second by second, for the summary and its renderings.

``RequestLog`` is handed to ``submit`` and told about every request that left (the ones
``SubmitReport.requests`` counts): when its answer came, its HTTP status (None: no answer),
and how long it took.  ``RequestLog.figures()`` turns that into the few numbers the summary
JSON carries and the metrics file, the health-check ping and the HTML report render from
(docs/architecture.md, "Watching a run"):

- ``latency``: p50/p95/p99 of every request, in seconds;
- ``responses``: requests by HTTP status (``"none"``: no answer came);
- ``timeline``: one entry per second of sending (requests answered in it, 429s among
  them, and that second's p50/p95/p99).

Memory stays flat in the requests: the latencies of the second being filled are kept as
they are (exact percentiles per second), and every latency goes into a histogram of 1 %-wide
buckets for the whole run's percentiles (within 1 % of the exact ones).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypedDict

#: The percentiles every figure gives, by name.
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
#: The histogram's buckets grow by this factor: the whole run's percentiles are within 1 %.
_GROWTH = 1.01
_LOG_GROWTH = math.log(_GROWTH)
#: The status key of a request that got no answer (a reset, a timeout).
NO_ANSWER = "none"


class Second(TypedDict):
    """One second of sending: ``t`` seconds after the first request left."""

    t: int
    requests: int
    throttled: int
    p50: float
    p95: float
    p99: float


class Figures(TypedDict):
    """The whole run's request figures (the summary JSON's ``latency``, ``responses``,
    ``timeline``)."""

    latency: dict[str, float] | None
    responses: dict[str, int]
    timeline: list[Second]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of sorted ``values`` (not empty)."""
    rank = max(1, math.ceil(q * len(values)))
    return values[rank - 1]


class RequestLog:
    """Every request of one run, as it is answered (``record``); see the module docstring.

    ``clock`` is injected (``time.monotonic`` by default): tests give their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.t0: float | None = None
        self.responses: Counter[str] = Counter()
        self._buckets: Counter[int] = Counter()
        self._count = 0
        self._seconds: list[Second] = []
        self._second = -1
        self._open: list[float] = []
        self._open_throttled = 0

    def started(self) -> float:
        """The clock now, the start of one request (the first one starts the timeline)."""
        now = self.clock()
        if self.t0 is None:
            self.t0 = now
        return now

    def record(self, status: int | None, started: float) -> None:
        """A request begun at ``started`` (``started()``) was answered with ``status``
        (None: it got no answer) now."""
        now = self.clock()
        if self.t0 is None:
            self.t0 = started
        seconds = max(0.0, now - started)
        second = max(0, int(now - self.t0))
        if second != self._second:
            self._close()
            self._second = second
        self._open.append(seconds)
        self._open_throttled += status == 429
        self.responses[NO_ANSWER if status is None else str(status)] += 1
        self._buckets[_bucket(seconds)] += 1
        self._count += 1

    def _close(self) -> None:
        if not self._open:
            return
        values = sorted(self._open)
        entry = Second(
            t=self._second,
            requests=len(values),
            throttled=self._open_throttled,
            p50=_round(percentile(values, 0.50)),
            p95=_round(percentile(values, 0.95)),
            p99=_round(percentile(values, 0.99)),
        )
        self._seconds.append(entry)
        self._open, self._open_throttled = [], 0

    def figures(self) -> Figures:
        """The figures so far (the second being filled included)."""
        self._close()
        return Figures(
            latency=self._latency(),
            responses=dict(sorted(self.responses.items())),
            timeline=list(self._seconds),
        )

    def _latency(self) -> dict[str, float] | None:
        if not self._count:
            return None
        out: dict[str, float] = {}
        for name, q in PERCENTILES.items():
            rank = max(1, math.ceil(q * self._count))
            seen = 0
            for bucket in sorted(self._buckets):
                seen += self._buckets[bucket]
                if seen >= rank:
                    out[name] = _round(_value(bucket))
                    break
        return out


def empty_figures() -> Figures:
    """The figures of a run that sent nothing (a dry run)."""
    return Figures(latency=None, responses={}, timeline=[])


def _bucket(seconds: float) -> int:
    """The histogram bucket of a latency: 1 %-wide from 10 microseconds up."""
    return max(0, math.ceil(math.log(max(seconds, 1e-5) / 1e-5) / _LOG_GROWTH))


def _value(bucket: int) -> float:
    """The top of a histogram bucket (a percentile is never reported below its value)."""
    return 1e-5 * _GROWTH**bucket


def _round(seconds: float) -> float:
    return round(seconds, 6)
