"""A token bucket shared by every worker, that finds the API's real rate limit (AIMD).

Tokens come on a schedule (GCRA: one every ``1/rate`` seconds, ``burst`` of them at once
after an idle spell); waiters queue behind one that sleeps until the next is due.  Waits
are exact, so tests check them with a fake clock and sleep.  ``pause`` holds every
worker (a 429's Retry-After is for the client, not for one request).

Adaptation (``adaptive=True``), for an API that may or may not say what its limit is:

- Slow start: a ``--rate`` above ``START_RATE`` is not trusted blindly.  The schedule
  starts at ``START_RATE`` and doubles after each ``SLOW_START_STEP`` of answers to
  requests sent at the current rate, none of them a 429, up to the configured rate.  The
  first 429 ends it: the rate falls back to the last one that drew none, which is then
  taken as the limit (the "wall").  (An API's burst allowance can hide an overload for
  a step; the next 429 then decreases as below.)
- ``observe`` (``X-RateLimit-*``): an announced limit ends the slow start and is the
  highest rate used (the configured one if lower); ``Remaining: 0`` pauses until
  ``Reset``; a ``Remaining`` too small to last until ``Reset`` at the current rate slows
  it until then.  The limit is read as per second (a limit per minute or hour then simply
  does not bind).
- ``on_throttled`` (429): pause, and decrease once per episode (a 429 for a request sent
  before the last decrease belongs to it): to half of what was really being sent since
  the last pause ended (90 % at or under an announced limit), but not below
  ``GOODPUT_SHARE`` of the rate the API accepted over the last second (when that second
  had no pause); that is close to the API's real limit.  The rate that was throttled
  becomes the wall.
- ``on_success``: after each calm second of sending (no 429, no pause), increase
  additively: by 5 % of the wall while under 85 % of it; near it, only after ``HOLD``
  calm seconds, then by 1 % of it (at least 1/s), up to the configured rate and an
  announced limit.  A probe above the real limit costs one 429 episode (a pause of
  Retry-After), so it is rare.  With ``rate=None`` (no schedule until the first 429)
  there is no ceiling.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from .api import RateLimitInfo

WINDOW = 1.0  # seconds: rates are measured over this window; increases come this often
START_RATE = 100.0  # requests/second: a higher --rate is reached by doubling from here
SLOW_START_STEP = 0.25  # seconds of calm answers at a rate before it doubles
DECREASE = 0.5  # multiplicative decrease on a 429 ...
GENTLE_DECREASE = 0.9  # ... at or under an announced limit (jitter, not an unknown limit)
GOODPUT_SHARE = 0.95  # a decrease goes to this share of the accepted rate, if higher
CAUTION = 0.85  # of the wall: above it, increases wait for HOLD calm seconds
FAST_STEP = 0.05  # of the wall: the increase per calm second, far below it
PROBE_STEP = 0.01  # of the wall: the increase per calm second near it, after HOLD
HOLD = 20.0  # calm seconds near the wall before probing above it
DEFAULT_PAUSE = 1.0  # a 429 without Retry-After pauses this long
MAX_PAUSE = 120.0
CATCH_UP = 0.05  # seconds: how far behind schedule a stall may leave the tokens


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
        self._slow_start = adaptive and rate is not None and rate > START_RATE
        self._rate = min(rate, START_RATE) if self._slow_start and rate else rate
        self._lock = asyncio.Lock()
        self._behind = False  # a stall left the next token already due: catch up
        self._due = -math.inf  # when the last token was due (GCRA); the next, one interval on
        self._paused_until = -math.inf
        self._announced: float | None = None  # X-RateLimit-Limit
        self._cap: float | None = None  # from a low X-RateLimit-Remaining ...
        self._cap_until = -math.inf  # ... until its Reset
        self._wall: float | None = None  # the rate last throttled (near the real limit)
        self._calm: float | None = None  # slow start: the rate before the last doubling
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
        return rate

    async def acquire(self) -> float:
        """Wait for a token; returns the (clock) time it was granted.

        The waiter at the head of the queue sleeps until the next token is due and looks
        again on waking, so a pause or a new rate set meanwhile takes effect.  A token
        granted late keeps the schedule when the lateness is a stall (a waiter overslept:
        the event loop was busy), catching up at most ``CATCH_UP`` seconds; when it is an
        idle spell (nobody was waiting), the schedule starts afresh from now.  The first
        token after a pause is due when the pause ends.
        """
        async with self._lock:
            slept = False
            while True:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0:
                    rate = self.current_rate
                    if rate is None:
                        return self._granted(now)
                    interval = 1.0 / rate  # at the rate in force now
                    due = max(self._due + interval, self._paused_until)
                    wait = due - (self._burst - 1.0) * interval - now
                    if wait <= 0:
                        late = now - due
                        if slept or self._behind:  # a stall
                            self._due = due if late < CATCH_UP else now - CATCH_UP
                            self._behind = now - self._due >= interval
                        else:  # an idle spell, or on time
                            self._due = due if late < interval else now
                        return self._granted(now)
                await self._sleep(wait)
                slept = True

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
        self._last_throttle = now
        if self._adaptive and self._new_episode(now, sent_at):
            self._decrease(now, sent_at)
        self.pause(DEFAULT_PAUSE if retry_after is None else retry_after)

    def on_success(self, *, sent_at: float | None = None) -> None:
        """A non-429 answer: count it, and increase the rate when calm (see the module).

        ``sent_at`` (the grant time of the request answered) tells the slow start whether
        the answer is about the current rate.
        """
        now = self._clock()
        self._accepted.append(now)
        self._prune(self._accepted, now)
        if not self._adaptive or self._rate is None:
            return
        if self._slow_start:
            fresh = sent_at is None or sent_at >= self._last_change
            if fresh and now - self._last_change >= SLOW_START_STEP:
                self._calm = self._rate
                self._set_rate(min(self._ceiling(), 2 * self._rate), now)
                self._slow_start = self._rate < self._ceiling()
            return
        calm_since = max(self._last_change, self._last_throttle, self._paused_until)
        if now - calm_since < WINDOW:  # a calm second of sending, not of waiting
            return
        rate, wall = self._rate, self._wall or self._rate
        if rate < CAUTION * wall:
            step = FAST_STEP * wall
        elif now - self._last_throttle >= HOLD:
            step = PROBE_STEP * wall
        else:
            return
        self._set_rate(max(rate, min(self._ceiling(), rate + max(1.0, step))), now)

    def observe(self, info: RateLimitInfo) -> None:
        """Use the API's ``X-RateLimit-*`` headers: its limit, and how much is left."""
        if not self._adaptive:
            return
        now = self._clock()
        if info.limit is not None and info.limit > 0:
            self._announced = max(self._min_rate, info.limit)
            old = new = self._rate
            if self._slow_start:  # the limit is known: no need to look for it
                self._slow_start = False
                new = self._ceiling()
            elif old is None or old > self._announced:
                new = self._announced
            if new is not None and new != old:
                self._set_rate(new, now)
                if old is None or new < old:  # a decrease: 429s of earlier requests are its own
                    self._last_decrease = now
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

    def _ceiling(self) -> float:
        return min(self._configured or math.inf, self._announced or math.inf)

    def _set_rate(self, rate: float, now: float) -> None:
        self._rate = rate
        self._last_change = now

    def _new_episode(self, now: float, sent_at: float | None) -> bool:
        if sent_at is not None:
            return sent_at >= self._last_decrease
        return now - self._last_decrease >= WINDOW

    def _decrease(self, now: float, sent_at: float | None) -> None:
        at = now if sent_at is None else sent_at
        if self._slow_start and self._calm is not None and at >= self._last_change:
            # Throttled at the rate just doubled: the one before drew no 429; it is the wall.
            new = self._wall = self._calm
        else:
            sent = self._measured(self._sent, now)
            base = sent if self._rate is None else min(self._rate, sent or self._rate)
            gentle = self._announced is not None and base <= self._announced
            new = (GENTLE_DECREASE if gentle else DECREASE) * base
            clean = now - self._start >= WINDOW and now - self._paused_until >= WINDOW
            if clean:  # a full second without a pause: the accepted rate is meaningful
                accepted = self._measured(self._accepted, now)
                new = max(new, GOODPUT_SHARE * min(accepted, base))
            if self._announced is not None:
                new = min(new, self._announced)
            self._wall = base
        self._slow_start = False
        self._set_rate(max(self._min_rate, new), now)
        self._last_decrease = now

    def _granted(self, now: float) -> float:
        self._sent.append(now)
        self._prune(self._sent, now)
        return now

    def _measured(self, times: deque[float], now: float) -> float:
        """Events per second over the last window, or since the start or the end of the
        last pause if that is shorter (a pause is not a slow rate)."""
        self._prune(times, now)
        since = max(self._start, min(self._paused_until, now))
        span = min(WINDOW, now - since)
        if span <= 0:
            return 0.0
        return sum(1 for t in times if t >= since) / span

    @staticmethod
    def _prune(times: deque[float], now: float) -> None:
        while times and times[0] <= now - WINDOW:
            times.popleft()
