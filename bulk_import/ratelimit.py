"""A token bucket shared by every worker, that finds the API's real rate limit (AIMD).

Tokens are handed out on a schedule (GCRA: a token is due one interval after the last,
``burst`` of them may come at once); waits are exact, testable with a fake clock and sleep.  A shared
``pause`` (a 429's Retry-After) holds every worker, not only the one that was throttled.

Adaptation, when ``adaptive``:

- ``on_throttled``: pause, then decrease the rate once per throttling episode: a 429 for a
  request sent before the last decrease is the same episode.  The new rate is half of what
  was really being sent (90 % of it when at or under an announced ``X-RateLimit-Limit``),
  but not below 90 % of the rate the API accepted over the last second, nor above 95 %
  of an announced limit.
- ``on_success``: after each second without throttling, add ``max(1, 2 % of the start
  rate)`` requests/second, up to the configured rate (and 95 % of an announced limit).
- ``observe``: an announced limit caps the rate at once (read as per second: a limit per
  minute or hour then simply does not bind); ``Remaining: 0`` pauses until ``Reset``;
  a ``Remaining`` too low to last until ``Reset`` slows the rate until then.

Until the first answer arrives (it may announce the limit), at most 10 requests/second
are sent: a blind burst at a high ``--rate`` would only collect 429s.

With ``rate=None`` there is no schedule until the API throttles; the rate is then set from
what was being sent, and additive increase probes upward without a ceiling.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from .api import RateLimitInfo

WINDOW = 1.0  # seconds: rates are measured over this window; increases come this often
LIMIT_SHARE = 0.95  # of an announced limit: the highest rate the limiter will use
GOODPUT_SHARE = 0.9  # a decrease never goes below this share of the accepted rate
DECREASE = 0.5  # multiplicative decrease on a 429 ...
GENTLE_DECREASE = 0.9  # ... and at or under an announced limit
WARMUP_RATE = 10.0  # requests/second until the first answer (which may announce a limit)
DEFAULT_PAUSE = 1.0  # a 429 without Retry-After pauses this long
MAX_PAUSE = 120.0


class RateLimiter:
    """Requests per second across every worker, with shared pauses and AIMD adaptation."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        burst: float = 1.0,
        adaptive: bool = True,
        min_rate: float = 1.0,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        self._clock = clock
        self._sleep = sleep
        self._burst = max(1.0, burst)
        self._adaptive = adaptive
        self._min_rate = min_rate
        self._configured = rate
        self._rate = rate
        self._step = max(1.0, 0.02 * rate) if rate is not None else 1.0
        self._announced: float | None = None  # 95 % of X-RateLimit-Limit
        self._cap: float | None = None  # from a low X-RateLimit-Remaining ...
        self._cap_until = -math.inf  # ... until its Reset
        self._tat = -math.inf  # when the next token is due (GCRA "theoretical arrival time")
        self._paused_until = -math.inf
        self._start = clock()
        self._last_change = self._start
        self._last_throttle = -math.inf
        self._last_decrease = -math.inf
        self._sent: deque[float] = deque()  # grant times within the last WINDOW
        self._accepted: deque[float] = deque()  # non-429 answer times within the last WINDOW
        self._warming = True  # no answer yet
        self._lock = asyncio.Lock()

    @property
    def current_rate(self) -> float | None:
        """The rate in force (requests/second), None while unlimited."""
        rate = self._rate
        if self._cap is not None and self._clock() < self._cap_until:
            rate = self._cap if rate is None else min(rate, self._cap)
        if self._warming and self._adaptive:
            rate = WARMUP_RATE if rate is None else min(rate, WARMUP_RATE)
        return rate

    @property
    def paused_until(self) -> float:
        return self._paused_until

    async def acquire(self) -> float:
        """Wait for a token; returns the (clock) time it was granted.

        Waiters queue (FIFO) behind one that sleeps until the next token is due, and that
        one looks again on waking: a pause, or a new rate, set meanwhile takes effect.
        """
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0:
                    rate = self.current_rate
                    if rate is None:
                        return self._granted(now)
                    interval = 1.0 / rate
                    wait = self._tat - (self._burst - 1.0) * interval - now
                    if wait <= 0:  # keep the schedule through a late wake-up, not an idle spell
                        due = self._tat if now - self._tat < interval else now
                        self._tat = due + interval
                        return self._granted(now)
                await self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every worker until ``seconds`` from now; then resume at the rate, not at once."""
        until = self._clock() + min(max(0.0, seconds), MAX_PAUSE)
        if until > self._paused_until:
            self._paused_until = until
            self._tat = max(self._tat, until)

    def on_throttled(
        self, retry_after: float | None = None, *, sent_at: float | None = None
    ) -> None:
        """A 429: pause everyone, and (once per episode) decrease the rate.

        ``sent_at`` is the grant time ``acquire`` returned for the throttled request; a
        429 for a request sent before the last decrease belongs to that decrease.  Without
        it, decreases are at most one per second.
        """
        now = self._clock()
        self._warming = False
        self._last_throttle = now
        self.pause(DEFAULT_PAUSE if retry_after is None else retry_after)
        if not self._adaptive:
            return
        if sent_at is not None:
            if sent_at < self._last_decrease:
                return
        elif now - self._last_decrease < WINDOW:
            return
        sent = self._measured(self._sent, now)
        base = sent if self._rate is None else min(self._rate, sent or self._rate)
        # Half, but only a tenth when at or under an announced limit: that 429 is jitter
        # (or a drained burst), not a limit we do not know.
        known = self._announced is not None and base <= self._announced
        new = (GENTLE_DECREASE if known else DECREASE) * base
        if now - self._start >= WINDOW:  # a full window: the accepted rate is meaningful
            new = max(new, GOODPUT_SHARE * self._measured(self._accepted, now))
        if self._announced is not None:
            new = min(new, self._announced)
        self._rate = max(self._min_rate, new)
        self._last_decrease = self._last_change = now

    def on_success(self) -> None:
        """A non-429 answer: count it, and after a calm second, increase the rate."""
        now = self._clock()
        self._warming = False
        self._accepted.append(now)
        self._prune(self._accepted, now)
        if not self._adaptive or self._rate is None:
            return
        if now - self._last_change < WINDOW or now - self._last_throttle < WINDOW:
            return
        ceiling = min(self._configured or math.inf, self._announced or math.inf)
        if self._rate < ceiling:
            self._rate = min(ceiling, self._rate + self._step)
        self._last_change = now

    def observe(self, info: RateLimitInfo) -> None:
        """Use the API's ``X-RateLimit-*`` headers to slow down before a 429."""
        if not self._adaptive:
            return
        now = self._clock()
        self._warming = False
        if info.limit is not None and info.limit > 0:
            self._announced = max(self._min_rate, LIMIT_SHARE * info.limit)
            if self._rate is None or self._rate > self._announced:
                self._rate = self._announced  # a decrease: 429s of earlier requests are its own
                self._last_decrease = self._last_change = now
        if info.remaining is None or info.reset is None or info.reset <= 0:
            return
        if info.remaining <= 0:
            self.pause(info.reset)
            return
        budget = info.remaining / info.reset
        rate = self.current_rate
        if rate is None or budget < rate:
            self._cap = max(self._min_rate, budget)
            self._cap_until = now + info.reset

    def _granted(self, now: float) -> float:
        self._sent.append(now)
        self._prune(self._sent, now)
        return now

    def _measured(self, times: deque[float], now: float) -> float:
        """Events per second over the last window (or since the start, if shorter)."""
        self._prune(times, now)
        span = min(WINDOW, now - self._start)
        return len(times) / span if span > 0 else 0.0

    @staticmethod
    def _prune(times: deque[float], now: float) -> None:
        while times and times[0] <= now - WINDOW:
            times.popleft()
