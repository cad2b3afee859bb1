"""A token bucket shared by every worker, that finds the API's real rate limit (AIMD).

Tokens come on a schedule (GCRA: one every ``1/rate`` seconds, ``burst`` of them at once
after an idle spell); waiters queue behind one that sleeps until the next is due.  Waits
are exact, so tests check them with a fake clock and sleep.  ``pause`` holds every
worker (a 429's Retry-After is for the client, not for one request).

Adaptation (``adaptive=True``):

- Warm-up: until the first answer, at most 10 requests/second: it may announce the limit,
  and a blind burst at a high ``--rate`` would only collect 429s.
- ``observe`` (``X-RateLimit-*``): an announced limit caps the rate at 95 % of it (at
  100 % when the configured rate is within it, the user's own choice), read as
  per second (a limit per minute or hour then simply does not bind); ``Remaining: 0``
  pauses until ``Reset``; a ``Remaining`` too small to last until ``Reset`` at the current
  rate slows it until then.
- ``on_throttled`` (429): pause, and decrease once per episode (a 429 for a request sent
  before the last decrease belongs to it): to half of what was really being sent (90 %
  at or under an announced limit), but not below 90 % of the rate the API accepted over
  the last second (when that second had no pause), nor above an announced limit.  The
  rate that was throttled is remembered.
- ``on_success``: after each calm second, increase: by ``max(1, 2 % of the start rate,
  5 % of the rate)`` while under 85 % of the last throttled rate, then by 1 % of the rate
  (at least 1), up to the configured rate and an announced limit; with ``rate=None``
  (no schedule until the first 429) there is no ceiling.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from .api import RateLimitInfo

WINDOW = 1.0  # seconds: rates are measured over this window; increases come this often
WARMUP_RATE = 10.0  # requests/second until the first answer
LIMIT_SHARE = 0.95  # of an announced limit: the highest rate used
DECREASE = 0.5  # multiplicative decrease on a 429 ...
GENTLE_DECREASE = 0.9  # ... at or under an announced limit (jitter, not an unknown limit)
GOODPUT_SHARE = 0.9  # a decrease never goes below this share of the accepted rate
CAUTION = 0.85  # of the last throttled rate: above it, increase slowly
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
        self._rate = rate  # None: no schedule
        self._lock = asyncio.Lock()
        self._due = -math.inf  # when the last token was due (GCRA); the next, one interval on
        self._paused_until = -math.inf
        self._warming = adaptive  # no answer yet
        self._announced: float | None = None  # LIMIT_SHARE of X-RateLimit-Limit
        self._cap: float | None = None  # from a low X-RateLimit-Remaining ...
        self._cap_until = -math.inf  # ... until its Reset
        self._throttled_at: float | None = None  # the rate of the last decrease's episode
        self._start = clock()
        self._last_change = self._start
        self._last_throttle = -math.inf
        self._last_decrease = -math.inf
        self._sent: deque[float] = deque()  # grant times within the last WINDOW
        self._accepted: deque[float] = deque()  # non-429 answer times within the last WINDOW

    @property
    def current_rate(self) -> float | None:
        """The rate in force (requests/second), None while unlimited."""
        rate = self._rate
        if self._cap is not None and self._clock() < self._cap_until:
            rate = self._cap if rate is None else min(rate, self._cap)
        if self._warming:
            rate = WARMUP_RATE if rate is None else min(rate, WARMUP_RATE)
        return rate

    async def acquire(self) -> float:
        """Wait for a token; returns the (clock) time it was granted.

        The waiter at the head of the queue sleeps until the next token is due and looks
        again on waking, so a pause or a new rate set meanwhile takes effect.
        """
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0:
                    rate = self.current_rate
                    if rate is None:
                        return self._granted(now)
                    interval = 1.0 / rate  # at the rate in force now, whatever came before
                    due = self._due + interval
                    wait = due - (self._burst - 1.0) * interval - now
                    if wait <= 0:  # keep the schedule through a late wake-up, not an idle spell
                        self._due = due if now - due < interval else now
                        return self._granted(now)
                await self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every worker until ``seconds`` from now (at most ``MAX_PAUSE``)."""
        until = self._clock() + min(max(0.0, seconds), MAX_PAUSE)
        self._paused_until = max(self._paused_until, until)

    def on_throttled(
        self, retry_after: float | None = None, *, sent_at: float | None = None
    ) -> None:
        """A 429: decrease the rate (once per episode), and pause everyone.

        ``sent_at`` is the time ``acquire`` granted the throttled request; without it,
        decreases are at most one per second.
        """
        now = self._clock()
        self._warming = False
        self._last_throttle = now
        if self._adaptive and self._new_episode(now, sent_at):
            self._decrease(now)
        self.pause(DEFAULT_PAUSE if retry_after is None else retry_after)

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
        self._last_change = now
        rate = self._rate
        if self._throttled_at is None or rate < CAUTION * self._throttled_at:
            step = max(1.0, 0.02 * (self._configured or 0.0), 0.05 * rate)
        else:
            step = max(1.0, 0.01 * rate)
        ceiling = min(self._configured or math.inf, self._announced or math.inf)
        self._rate = max(rate, min(ceiling, rate + step))

    def observe(self, info: RateLimitInfo) -> None:
        """Use the API's ``X-RateLimit-*`` headers to slow down before a 429."""
        if not self._adaptive:
            return
        now = self._clock()
        self._warming = False
        if info.limit is not None and info.limit > 0:
            # A --rate within the announced limit is the user's choice: keep it.  Above it
            # (the limit was unknown), stay a little under the limit.
            within = self._configured is not None and self._configured <= info.limit
            share = 1.0 if within else LIMIT_SHARE
            self._announced = max(self._min_rate, share * info.limit)
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

    # -- internals --------------------------------------------------------------------

    def _new_episode(self, now: float, sent_at: float | None) -> bool:
        if sent_at is not None:
            return sent_at >= self._last_decrease
        return now - self._last_decrease >= WINDOW

    def _decrease(self, now: float) -> None:
        sent = self._measured(self._sent, now)
        base = sent if self._rate is None else min(self._rate, sent or self._rate)
        gentle = self._announced is not None and base <= self._announced
        new = (GENTLE_DECREASE if gentle else DECREASE) * base
        clean = now - self._start >= WINDOW and now - self._paused_until >= WINDOW
        if clean:  # a full second without a pause: the accepted rate is meaningful
            new = max(new, GOODPUT_SHARE * self._measured(self._accepted, now))
        if self._announced is not None:
            new = min(new, self._announced)
        self._throttled_at = base
        self._rate = max(self._min_rate, new)
        self._last_decrease = self._last_change = now

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
