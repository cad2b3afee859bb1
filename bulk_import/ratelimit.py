"""The client's pace: one schedule shared by every worker, which finds the API's limit.

Tokens come on a schedule (GCRA: one every ``1/rate`` seconds, ``burst`` of them at once
after an idle spell); waiters queue behind one that sleeps until the next is due.  Waits
are exact, so tests check them with a fake clock and sleep.  ``pause`` holds every
worker (a 429's Retry-After is for the client, not for one request).

Answers are the truth, rate-limit headers are hints (docs/architecture.md, "rate
control").  APIs announce limits in ways that look alike and mean different things, so
the headers are read for what their numbers do over time (``_Headers``):

- a **bucket** (``Reset`` of a second or two; ``Remaining`` climbs back as it refills):
  ``Limit`` is the rate per second.  ``Remaining``/``Reset`` are never read as a budget
  (that made a 50/s bucket run at 3/s); a bucket falling (by 2 or more since the rate
  was set) to under half full on ``DRAINED_ANSWERS`` answers in a row means the rate is
  above its refill rate (a bucket left half empty by a burst, but steady, is not): the last
  increase is undone (or, above a trusted announced rate or without one, the rate steps
  down by ``GENTLE_DECREASE``) before a 429 comes.  Its freshest ``Remaining``, less the
  requests granted since, plus its measured refill until the next one arrives, is a
  budget: under one token, the next grant waits (``_budget_hold``), so an announced rate
  above the refill does not empty the bucket before the refill is measured;
- a **fixed window** (``Reset`` counting down to the same instant on every answer,
  ``Remaining`` only falling): ``Limit`` is per window, not a rate.  The client sends at
  its rate while the window has quota, counting what it sends, and pauses until the
  window's end when the quota is spent.  Believing a window takes ``WINDOW_SPAN``
  seconds of answers; before that, when ``WINDOW_EVIDENCE`` answers agree on its end
  (a ``Reset`` above ``SMALL_RESET``) and the requests in flight spend what is left, the
  client waits for that end too, rather than draw a 429 from each of them.  A
  whole-second ``Reset`` ends a window up to a second late: for a window anchored at
  its first request, its end is inferred (``_Headers.resume_at``) and one request is
  sent there, the others held until it is answered; a 429 to it turns that off;
- the IETF draft's ``RateLimit-Policy: 100;w=60`` names the window: its rate is
  ``100/60`` per second;
- **silent** (only 429 + Retry-After): the 429s alone find the limit, the second episode
  measuring the bucket's refill against the first (``_refill_found``).

Adaptation (``adaptive=True``):

- Slow start: a ``--rate`` above ``START_RATE`` is not trusted blindly.  The schedule
  starts at ``START_RATE`` and doubles after each ``SLOW_START_STEP`` of answers to
  requests sent at the current rate (counted from the first grant, not from start-up),
  none of them a 429, up to the configured rate.  The
  first 429 ends it: the rate falls back to the last one that drew none, which is then
  taken as the limit (the "wall").  (An API's burst allowance can hide an overload for
  a step; the next 429 then decreases as below.)
- An announced rate ends the slow start and is used as is (the configured one if lower).
  It is checked: a 429 at or under it makes it suspect (it no longer caps or softens
  anything).  When a bucket's ``Remaining`` shows that sending at the announced rate
  never drains it (for ``PROBE_AFTER`` seconds, really sending at that rate), the rate
  is raised by ``PROBE_FACTOR`` at a time until the bucket drains, then stays at the last
  rate that did not: an API announcing less than it accepts is not obeyed for long.  A
  bucket that does not stay (all but one token) full at the announced rate is binding:
  no probe above it (that would drain it and cost a whole-second Retry-After pause).
- A bucket's refill rate is measured (``_Refill``): over the last second of answers in
  which it was never full, the change in ``Remaining`` plus the requests it accepted.
  When the bucket drains, or on a 429 (the first of an episode or a later one of it, as
  the measurement comes in), a refill measured under the rate is the real limit,
  whatever the headers announce: the rate goes to ``REFILL_SHARE`` of it at once,
  instead of stepping down one pause episode at a time.
- ``on_throttled`` (429): pause, and decrease once per episode (a 429 for a request sent
  before the last decrease belongs to it): back to the rate before an increase that drew
  it, else to half of what was really being sent since
  the last pause ended (the first at or under a trusted announced limit: 90 %, and back
  to the limit after a calm second, for it may be jitter), but not below
  ``GOODPUT_SHARE`` of the rate the API accepted over the last second (when that second
  had no pause); that is close to the API's real limit.  The rate that was throttled
  becomes the wall.  The rate "really sent" is also measured from the phase's first
  grant (an idle start, waiting for the first answers, is not a slow rate).  Without
  headers, a later episode settles at ``FOUND_SHARE`` of the refill found from two
  phases (``_refill_found``), near the wall: no probe before ``HOLD`` calm seconds.
- ``on_success``: after each calm second of sending (no 429, no pause), increase
  additively: by 5 % of the wall while under 85 % of it; near it, only after ``HOLD``
  calm seconds (60: a probe too high costs a whole-second pause, so it must be rare),
  then by 1 % of it (at least 1/s), up to the configured rate and a trusted announced
  rate; a 429 while probing goes back to the rate that was held (on a bucket, the
  probe's small steps drain it slowly: the step before the 429 may be too high too).
  A probe above the real limit costs one 429 episode (a pause of Retry-After) or, when
  a bucket's ``Remaining`` is known, one undone increase.
  With ``rate=None`` (no schedule until the first 429) there is no ceiling.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal

from .models import RateLimitInfo

WINDOW = 1.0  # seconds: rates are measured over this window; increases come this often
START_RATE = 100.0  # requests/second: a higher --rate is reached by doubling from here
SLOW_START_STEP = 0.25  # seconds of calm answers at a rate before it doubles
DECREASE = 0.5  # multiplicative decrease on a 429 ...
GENTLE_DECREASE = 0.9  # ... at or under a trusted announced limit (jitter, not a wrong limit)
GOODPUT_SHARE = 0.95  # a decrease goes to this share of the accepted rate, if higher
CAUTION = 0.85  # of the wall: above it, increases wait for HOLD calm seconds
FAST_STEP = 0.05  # of the wall: the increase per calm second, far below it
PROBE_STEP = 0.01  # of the wall: the increase per calm second near it, after HOLD
HOLD = 60.0  # calm seconds near the wall before probing above it (a probe costs a pause)
DEFAULT_PAUSE = 1.0  # a 429 without Retry-After pauses this long
MAX_PAUSE = 120.0
CATCH_UP = 0.05  # seconds: how far behind schedule a stall may leave the tokens
SMALL_RESET = 2.0  # seconds: a Reset up to this is a small bucket (or a window as short)
STABLE_END = 1.5  # seconds: how far estimates of one window's end may differ (rounding)
WINDOW_EVIDENCE = 3  # answers agreeing on one window's end before it is believed ...
WINDOW_SPAN = 2.0  # ... over at least this many seconds (a bucket's end slides by then)
PROBE_AFTER = 0.5  # seconds at an announced rate, bucket never draining, before going above
PROBE_FACTOR = 1.25  # each such step
DRAINED_ANSWERS = 3  # answers in a row showing the bucket falling under half full ...
DRAIN_SPAN = 0.05  # ... for requests sent over this long (not one burst): above its refill
USED_SHARE = 0.8  # an increase is earned only when at least this share of the rate is sent
REFILL_SPAN = 0.1  # seconds of a bucket's Remaining, at least, to measure its refill rate
REFILL_BELOW = 0.95  # a refill measured under this share of the rate (or announced) is real
HOLD_STEP = 0.001  # seconds: the shortest hold for a bucket's token (a clock's grain)
PROBE_POLL = 0.01  # seconds: how often waiters look whether a window's probe has answered
REFILL_SHARE = 0.97  # of a measured refill rate: the rate settled on (margin for jitter)
IDLE_GAP = 3.0  # intervals without a grant: the sending stopped (a bucket refills, unseen)
FOUND_SPAN = 0.25  # seconds: a phase this much longer than the first one bounds the refill
FOUND_SHARE = 0.99  # of a refill found from two phases (a lower bound): the rate settled on

COMPACT_AT = 4096  # dropped times freed at once when there are this many (and half)
OUTCOMES = 20_000  # answers kept for the phases of a silent limit (about 400 s at 50/s)

Style = Literal["unknown", "bucket", "window"]
NOT_EARLY = (math.inf, -math.inf)


class _Times:
    """Clock times in the order they came, the oldest dropped (``drop_before``).

    Held as C doubles (8 bytes each) rather than float objects in a deque (about 32):
    the grants of the last ``MAX_PAUSE`` seconds are every request of a fast run, so
    this is what a sending run kept per row (docs/architecture.md, "rate control").
    """

    def __init__(self) -> None:
        self._times = array("d")
        self._head = 0  # the times before it are dropped (freed in bulk, see drop_before)

    def __len__(self) -> int:
        return len(self._times) - self._head

    def append(self, t: float) -> None:
        self._times.append(t)

    def drop_before(self, limit: float) -> None:
        """Drop the oldest times while they are under ``limit``."""
        times, head = self._times, self._head
        while head < len(times) and times[head] < limit:
            head += 1
        if head > COMPACT_AT and head * 2 > len(times):
            del times[:head]
            head = 0
        self._head = head

    def __reversed__(self) -> Iterator[float]:
        times = self._times
        for i in range(len(times) - 1, self._head - 1, -1):
            yield times[i]


class _Headers:
    """What the rate-limit headers have shown so far, and which style they follow.

    Window ends are estimated as ``now + Reset``; with whole-second Resets rounded up, the
    estimates of one window's end differ by under ``STABLE_END`` and the smallest is the
    tightest that is not early.
    """

    def __init__(self) -> None:
        self.style: Style = "unknown"
        self._limit: float | None = None
        self.max_remaining = 0  # bucket: the fullest it has been seen (about its size)
        self.window_end: float | None = None
        self.window_votes = 0  # answers agreeing on ``window_end`` ...
        self.votes_since = -math.inf  # ... since this time
        self.freshest: float = -math.inf  # send time of the answer the counts come from
        self.last_remaining: int | None = None
        # The window's phase: a window anchored at its first request started after the
        # earliest send and before the earliest answer it counted (``opened_*``), so its
        # length is at most its end less that send (``length_max``, over past windows).
        self.opened_sent = math.inf
        self.opened_answer = math.inf
        self.opener_seen = False  # an answer of this window showed Limit - 1 left
        self.length_max = math.inf
        self.length_min = -math.inf
        self.infer = True  # until an end inferred earlier than a Reset draws a 429

    def update(self, info: RateLimitInfo, now: float, sent_at: float) -> None:
        if info.reset is None or info.remaining is None:
            return
        self._limit = info.limit
        fresh = sent_at >= self.freshest
        if info.reset <= SMALL_RESET:
            if self.style != "window" or (self.window_end is not None and now > self.window_end):
                self.style = "bucket"
            self.max_remaining = max(self.max_remaining, info.remaining)
        else:
            self._window(now + info.reset, info.remaining, now, fresh, sent_at)
        if fresh:
            self.freshest = sent_at
            self.last_remaining = info.remaining

    def _opened(self, sent: float, now: float, remaining: int) -> None:
        self.opened_sent = min(self.opened_sent, sent)
        self.opened_answer = min(self.opened_answer, now)
        if self._limit is not None and remaining >= self._limit - 1:
            self.opener_seen = True

    def resume_at(self) -> float | None:
        """When the window surely ends: its Reset, or earlier by its inferred phase.

        A whole-second Reset (a Unix time, or seconds rounded up) is up to a second late.
        A window anchored at its first request (docs/architecture.md, "rate control")
        started between the earliest send and the earliest answer it counted, so its
        length ``W`` is at most ``Reset - send`` and more than ``Reset - 1 - answer``,
        over every window seen.  A whole number of seconds in that range is taken for
        it (windows are); the end is then at most ``answer + W``, used when earlier than
        the Reset but never more than a second before it.
        """
        end = self.window_end
        if end is None or not self.infer or not self.opener_seen:
            return end  # (not opened by this client: its phase is unknown)
        high = min(self.length_max, end - self.opened_sent)
        low = max(self.length_min, end - 1.0 - self.opened_answer)
        length = math.floor(high) if math.floor(high) > low else high
        return max(end - 1.0, min(end, self.opened_answer + length))

    def _window(self, end: float, remaining: int, now: float, fresh: bool, sent: float) -> None:
        known = self.window_end
        if known is not None and abs(end - known) <= STABLE_END:
            climbed = (
                fresh and self.last_remaining is not None and remaining > self.last_remaining + 2
            )
            if climbed:  # climbing back before the end: a bucket, not a window
                self.window_votes = 0
                self.style = "bucket"
                return
            self.window_votes += 1
            self.window_end = min(known, end)
            self._opened(sent, now, remaining)
        elif known is None or end > known:
            passed = known is not None and now >= known - STABLE_END
            whole = self.last_remaining is not None and remaining > self.last_remaining
            if passed and (self.style == "window" or whole):
                # The count only fell, then came back whole at its end: the next window.
                self.window_votes = WINDOW_EVIDENCE
                self.votes_since = -math.inf
            else:
                self.window_votes, self.votes_since = 1, now  # first, or an end that slid
                if known is not None:
                    self.style = "bucket"
            if known is not None and self.opener_seen:  # the window before: its length
                self.length_max = min(self.length_max, known - self.opened_sent)
                self.length_min = max(self.length_min, known - 1.0 - self.opened_answer)
            self.opened_sent = self.opened_answer = math.inf
            self.opener_seen = False
            self.window_end = end
            self._opened(sent, now, remaining)
        else:  # an earlier end than believed: the stale one was a bucket's or wrong
            self.window_end, self.window_votes, self.votes_since = end, 1, now
            self.opened_sent = self.opened_answer = math.inf
            self.opener_seen = False
            self._opened(sent, now, remaining)
        if self.window_votes >= WINDOW_EVIDENCE and now - self.votes_since >= WINDOW_SPAN:
            self.style = "window"

    def drained(self, remaining: int) -> bool:
        """A bucket under half full: being drained faster than it refills."""
        return (
            self.style == "bucket"
            and self.max_remaining >= 2
            and (remaining <= self.max_remaining // 2)
        )


class _Refill:
    """A bucket's refill rate, measured from its ``Remaining`` over the last second.

    Between two answers, the tokens the bucket gained are the change in ``Remaining``
    plus the requests it accepted meanwhile: over a span in which it was never full (a
    full bucket wastes its refill), that over the span's length is the refill rate, the
    real limit, whatever the headers announce.
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, int]] = deque()  # (time, remaining, accepted)
        self.accepted = 0  # non-429 answers so far

    def sample(self, now: float, remaining: int, full: int) -> None:
        if remaining >= full:  # full: the refill before now was wasted; start afresh
            self._samples.clear()
        self._samples.append((now, remaining, self.accepted))
        while self._samples and self._samples[0][0] < now - WINDOW:
            self._samples.popleft()

    def rate(self, now: float) -> float | None:
        """Tokens per second over the last second's samples, None over too short a span."""
        if len(self._samples) < 2:
            return None
        t0, r0, a0 = self._samples[0]
        t1, r1, a1 = self._samples[-1]
        if t1 - t0 < REFILL_SPAN or now - t1 > WINDOW:
            return None
        return max(0.0, (r1 - r0 + a1 - a0) / (t1 - t0))


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
        self._announced: float | None = None  # the rate the headers announce, per second
        self._trusted = True  # no 429 at or under ``_announced`` yet
        self._binds = True  # ``_announced`` caps increases (until a bucket shows it does not)
        self._headers = _Headers()
        self._drained = 0  # answers in a row showing the bucket draining at this rate ...
        self._drain_ref: int | None = None  # ... from the Remaining of its first answer
        self._drain_since = -math.inf  # ... over requests sent since then
        self._lowest: int | None = None  # the least Remaining seen at this rate
        self._refill = _Refill()
        self._before_increase: float | None = None  # the rate before the last increase
        self._recover_to: float | None = None  # after a first 429 at a trusted limit
        self._window_left: int | None = None  # a window's quota left, counted here
        self._early = NOT_EARLY  # (inferred end, Reset) when resuming before the Reset
        self._probe_sent = False  # ... one request sent then, the others held until it tells
        self._recent = _Times()  # grant times, to count those after an answer's
        self._wall: float | None = None  # the rate last throttled (near the real limit)
        self._calm: float | None = None  # slow start: the rate before the last doubling
        self._held: float | None = None  # the rate held HOLD calm seconds, before probing
        self._start = clock()
        self._last_change = self._start
        self._last_throttle = -math.inf
        self._last_decrease = -math.inf
        self._sent: deque[float] = deque()  # grant times within the last WINDOW
        self._last_grant = -math.inf
        self._refill_rate: float | None = None  # a bucket's last measured refill, per second
        self._answer: tuple[float, float, int] | None = None  # (sent, answered, Remaining)
        # Silent limits (no Remaining): phases of sending from a full bucket (docs/
        # architecture.md, "rate control"): the grants each began with, the rates' changes.
        self._phase_start = -math.inf  # the phase's first grant (a pause's end, an idle gap)
        self._anchors: list[float] = []  # the phase's start and its rate changes
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=OUTCOMES)  # (sent, accepted)
        # The first phase: (its first grant, its first 429's grant), and what it accepted
        # (answers arriving after that 429's are counted as they come).
        self._first_phase: tuple[float, float] | None = None
        self._first_accepted = 0
        self._found: float | None = None  # the refill found from two phases
        self._accepted: deque[float] = deque()  # non-429 answer times within the last WINDOW

    @property
    def current_rate(self) -> float | None:
        """The rate in force (requests/second), None while unlimited."""
        return self._rate

    @property
    def style(self) -> Style:
        """How the API's headers announce its limit, as far as they have shown it."""
        return self._headers.style

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
            slept = held = False
            while True:
                now = self._clock()
                wait = self._paused_until - now
                if self._probe_sent and self._early is not NOT_EARLY:
                    wait = min(wait, PROBE_POLL)  # the probe's answer may end the hold
                if wait <= 0:
                    rate = self.current_rate
                    if rate is None:
                        return self._granted(now)
                    interval = 1.0 / rate  # at the rate in force now
                    due = max(self._due + interval, self._paused_until)
                    wait = due - (self._burst - 1.0) * interval - now
                    if wait <= 0:
                        hold = self._budget_hold(now)
                        if hold > 0:  # the bucket's tokens are spent by those in flight
                            await self._sleep(hold)
                            slept = held = True
                            continue
                        late = now - due
                        if held:  # not a stall: no catching up after the bucket's hold
                            self._due, self._behind = now, False
                        elif slept or self._behind:  # a stall
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
        self._outcome(sent_at, accepted=False)
        self._last_throttle = now
        if sent_at is not None and self._early[0] <= sent_at < self._early[1]:
            # The probe sent at a window's inferred end, before its Reset, was throttled:
            # the window is not anchored at its first request.  Wait for Resets from now.
            self._headers.infer = False
            self._early = NOT_EARLY
        if self._adaptive and self._new_episode(now, sent_at):
            self._decrease(now, sent_at)
        elif self._adaptive and self._rate is not None:
            # A later 429 of the same episode: the bucket's refill may be measured by now.
            refill = self._refill.rate(now)
            if refill is not None and refill < REFILL_BELOW * self._rate:
                self._settle_on_refill(refill, now)
        self.pause(DEFAULT_PAUSE if retry_after is None else retry_after)

    def on_success(self, *, sent_at: float | None = None) -> None:
        """A non-429 answer: count it, and increase the rate when calm (see the module).

        ``sent_at`` (the grant time of the request answered) tells the slow start whether
        the answer is about the current rate.
        """
        now = self._clock()
        self._outcome(sent_at, accepted=True)
        self._accepted.append(now)
        self._prune(self._accepted, now)
        self._refill.accepted += 1
        early, reset = self._early
        if sent_at is not None and early <= sent_at < reset:
            # The probe at a window's inferred end was accepted: the window has begun.
            self._early = NOT_EARLY
            if self._paused_until == reset:
                self._paused_until = now
        if not self._adaptive or self._rate is None:
            return
        if self._slow_start:
            fresh = sent_at is None or sent_at >= self._last_change
            since = max(self._last_change, min(self._phase_start, now))  # (not before sending)
            if fresh and now - since >= SLOW_START_STEP:
                self._calm = self._rate
                self._set_rate(min(self._ceiling(), 2 * self._rate), now)
                self._slow_start = self._rate < self._ceiling()
            return
        if self._probe_above_announced(now):
            return
        calm_since = max(self._last_change, self._last_throttle, self._paused_until)
        if now - calm_since < WINDOW:  # a calm second of sending, not of waiting
            return
        if self._recover_to is not None:  # the one 429 at a trusted limit was jitter
            recover, self._recover_to = self._recover_to, None
            self._set_rate(max(self._rate, min(self._ceiling(), recover)), now)
            return
        rate, wall = self._rate, self._wall or self._rate
        if rate < CAUTION * wall:
            step = FAST_STEP * wall
        elif now - self._last_throttle >= HOLD:
            step = PROBE_STEP * wall
            if self._held is None:
                self._held = rate
        else:
            return
        self._set_rate(max(rate, min(self._ceiling(), rate + max(1.0, step))), now)

    def observe(self, info: RateLimitInfo, *, sent_at: float | None = None) -> None:
        """Read an answer's rate-limit headers (see the module): hints, checked over time.

        ``sent_at`` is the grant time of the request answered; it orders the answers, which
        may arrive out of order, and tells which later requests a count does not include.
        """
        if not self._adaptive:
            return
        now = self._clock()
        sent = now if sent_at is None else sent_at
        headers = self._headers
        headers.update(info, now, sent)
        self._announce(info, now)
        if info.remaining is None:
            return
        if headers.style == "window":
            if sent >= headers.freshest and headers.window_end is not None:
                self._window_left = info.remaining - self._granted_after(sent)
                self._spend_window(now)
            return
        if self._window_spent(info, sent):
            # Not yet believed a window (that takes WINDOW_SPAN), but every answer so far
            # says one, and its quota is spent by what is in flight: wait for its end
            # rather than draw a 429 from each request in flight.
            self._window_left = 0
            self._spend_window(now)
            return
        if self._answer is None or sent >= self._answer[0]:
            self._answer = (sent, now, info.remaining)
        if sent >= headers.freshest and headers.style == "bucket":
            self._refill.sample(now, info.remaining, max(2, headers.max_remaining))
            refill = self._refill.rate(now)
            if refill is not None:
                self._refill_rate = refill
        if sent >= self._last_change and sent >= headers.freshest:
            low = self._lowest
            self._lowest = info.remaining if low is None else min(low, info.remaining)
            if self._drain_ref is None:
                self._drain_ref = info.remaining  # where the bucket was at this rate's start
            falling = info.remaining <= self._drain_ref - 2
            if not (falling and headers.drained(info.remaining)):
                self._drained = 0
                return
            if not self._drained:
                self._drain_since = sent
            self._drained += 1
            if self._drained >= DRAINED_ANSWERS and sent - self._drain_since >= DRAIN_SPAN:
                self._drained_bucket(now)

    def _announce(self, info: RateLimitInfo, now: float) -> None:
        """An announced rate ends the slow start, and caps the rate while it is trusted."""
        rate = info.per_second
        small = info.reset is None or info.reset <= SMALL_RESET
        if rate is None and info.limit is not None and small and self._headers.style != "window":
            rate = info.limit  # a bucket's (or an unnamed) limit: per second
        if rate is None or rate <= 0 or not self._trusted:
            return
        first = self._announced is None
        self._announced = max(self._min_rate, rate)
        if not self._binds:
            return
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
        elif first:
            self._last_change = now

    def _probe_above_announced(self, now: float) -> bool:
        """Raise the rate above an announced one that a bucket shows is not binding.

        Only when a bucket's ``Remaining`` is known (so an increase too far is seen as a
        draining bucket and undone, not as 429s), no wall was found, the rate has been
        really used for ``PROBE_AFTER`` seconds, and the bucket never drained meanwhile.
        """
        rate = self._rate
        if (
            rate is None
            or self._announced is None
            or self._wall is not None
            or self._headers.style != "bucket"
            or self._drained
            or not self._stays_full()
            or rate < self._announced
            or now - max(self._last_change, self._paused_until) < PROBE_AFTER
        ):
            return False
        if self._measured(self._sent, now) < USED_SHARE * rate:
            return False
        self._binds = False
        new = min(self._ceiling(), rate * PROBE_FACTOR)
        if new <= rate:
            return False
        self._set_rate(new, now)
        return True

    def _window_spent(self, info: RateLimitInfo, sent: float) -> bool:
        headers = self._headers
        return (
            info.remaining is not None
            and info.reset is not None
            and info.reset > SMALL_RESET
            and sent >= headers.freshest
            and headers.window_votes >= WINDOW_EVIDENCE
            and headers.window_end is not None
            and info.remaining - self._granted_after(sent) <= 0
        )

    def _stays_full(self) -> bool:
        """The bucket stayed (all but one token) full at this rate: it refills faster."""
        lowest, full = self._lowest, self._headers.max_remaining
        return lowest is not None and full >= 2 and lowest >= full - 1

    def _drained_bucket(self, now: float) -> None:
        """The bucket drains: undo the last increase, or step down (before any 429)."""
        before, rate = self._before_increase, self._rate
        if rate is None:
            return
        refill = self._refill.rate(now)
        if refill is not None and refill < REFILL_BELOW * rate:  # measured: go there
            self._settle_on_refill(refill, now)
            return
        within = self._announced is not None and rate <= self._announced * 1.01
        if before is None and within and self._trusted:
            return  # a burst at a trusted limit (a stall caught up): 429s will tell
        if within:
            self._trusted = False  # draining at (or under) the announced rate: it is wrong
        self._wall = rate
        self._last_throttle = self._last_decrease = now
        new = before if before is not None and before < rate else GENTLE_DECREASE * rate
        self._set_rate(max(self._min_rate, new), now)

    def _settle_on_refill(self, refill: float, now: float) -> None:
        """A bucket's measured refill rate is the limit: settle just under it."""
        rate = self._rate
        if self._announced is not None and refill < REFILL_BELOW * self._announced:
            self._trusted = False  # the headers announce more than the bucket refills
        self._wall = rate
        self._recover_to = None
        self._last_throttle = self._last_decrease = now
        self._set_rate(max(self._min_rate, REFILL_SHARE * refill), now)

    def _spend_window(self, now: float) -> None:
        """A window's quota is spent: everyone waits for its end."""
        end = self._headers.resume_at()
        reset = self._headers.window_end
        if self._window_left is not None and self._window_left <= 0 and end is not None:
            if end > now:
                self.pause(end - now)
            if reset is not None and end < reset:  # one probe first (``_granted``)
                self._early, self._probe_sent = (end, reset), False
            self._window_left = None  # unknown until the new window's first answer

    def _budget_hold(self, now: float) -> float:
        """How long to hold the next grant: a bucket's tokens are spent by those in flight.

        The freshest answer's ``Remaining`` was the bucket when its request was taken;
        the requests granted after it take a token each, and the bucket refills at its
        measured rate (none assumed before it is measured) until the next request would
        arrive, one round trip after its grant as that one did.  Under one token left,
        the grant waits (an answer or the refill will tell), instead of drawing a 429
        and its whole-second pause before the refill rate is known.
        """
        answer = self._answer
        if answer is None or not self._adaptive or self._headers.style != "bucket":
            return 0.0
        sent, _, remaining = answer
        after = self._granted_after(sent)
        if after == 0:  # nothing in flight after it: never hold (a stale count)
            return 0.0
        refill = self._refill_rate or 0.0
        tokens = remaining - after + refill * (now - sent)
        if tokens >= 1.0 - 1e-9:
            return 0.0
        if refill <= 0:
            return PROBE_POLL
        return min(PROBE_POLL, max(HOLD_STEP, (1.0 - tokens) / refill))

    def _outcome(self, sent_at: float | None, *, accepted: bool) -> None:
        if sent_at is not None and self._adaptive and self._headers.style == "unknown":
            self._outcomes.append((sent_at, accepted))
            first = self._first_phase
            if accepted and first is not None and first[0] <= sent_at < first[1]:
                self._first_accepted += 1  # a late answer of the first phase

    def _refill_found(self, sent_at: float | None) -> float | None:
        """A silent limit's refill rate, from this phase and the first one (or None).

        A phase sends from a full bucket (the start, a pause's end, an idle spell) until
        the first 429, sent at ``sent_at``.  The first phase drained the whole bucket:
        its ``A1`` accepted requests over ``D1`` seconds are ``C + r * D1`` (``C`` the
        bucket, ``r`` its refill).  A later one accepted at most ``C + r * D`` since any
        of its anchors (its start or a change of rate), so ``r >= (A - A1) / (D - D1)``;
        the best bound of them, over a phase ``FOUND_SPAN`` longer than the first, is
        the refill within a request or two (docs/architecture.md, "rate control").
        """
        if sent_at is None or self._headers.style != "unknown" or self._rate is None:
            return None

        def accepted_since(start: float) -> int:
            return sum(1 for sent, ok in self._outcomes if ok and start <= sent < sent_at)

        if self._first_phase is None:
            if sent_at > self._phase_start:
                self._first_phase = (self._phase_start, sent_at)
                self._first_accepted = accepted_since(self._phase_start)
            return None
        first_accepted = self._first_accepted
        first_span = self._first_phase[1] - self._first_phase[0]
        best: float | None = None
        for anchor in self._anchors:
            span = sent_at - anchor
            if span < first_span + FOUND_SPAN:
                continue
            bound = (accepted_since(anchor) - first_accepted) / (span - first_span)
            best = bound if best is None else max(best, bound)
        return best

    def _granted_after(self, sent: float) -> int:
        count = 0
        for t in reversed(self._recent):
            if t <= sent:
                break
            count += 1
        return count

    # -- internals --------------------------------------------------------------------

    def _ceiling(self) -> float:
        announced = self._announced if self._binds and self._trusted else None
        return min(self._configured or math.inf, announced or math.inf)

    def _set_rate(self, rate: float, now: float) -> None:
        old = self._rate
        self._before_increase = old if old is not None and rate > old else None
        self._rate = rate
        self._last_change = now
        self._anchors.append(now)
        self._drained = 0
        self._drain_ref = None
        self._lowest = None

    def _new_episode(self, now: float, sent_at: float | None) -> bool:
        if sent_at is not None:
            return sent_at >= self._last_decrease
        return now - self._last_decrease >= WINDOW

    def _decrease(self, now: float, sent_at: float | None) -> None:
        at = now if sent_at is None else sent_at
        found = self._refill_found(sent_at)
        if found is not None and self._rate is not None and 0 < found < self._rate:
            # A silent limit's refill, from two phases of sending from a full bucket.
            self._found = self._wall = found
            self._slow_start = False
            self._held = self._recover_to = None
            self._set_rate(max(self._min_rate, FOUND_SHARE * found), now)
            self._last_decrease = now
            return
        refill = self._refill.rate(now)
        if refill is not None and self._rate is not None and refill < self._rate:
            # A bucket that shows its refill rate: that is the limit, whatever was sent.
            self._slow_start = False
            self._held = None
            self._settle_on_refill(refill, now)
            return
        if self._slow_start and self._calm is not None and at >= self._last_change:
            # Throttled at the rate just doubled: the one before drew no 429; it is the wall.
            new = self._wall = self._calm
        elif self._held is not None and self._rate is not None and self._rate > self._held:
            # Throttled while probing above a rate held for HOLD seconds: back to it (the
            # probe's small steps drain a bucket slowly: the step before may be too high).
            new, self._wall = self._held, self._rate
        elif self._before_increase is not None and at >= self._last_change and self._rate:
            # Throttled at the rate just raised: back to the one before, which drew none.
            new, self._wall = self._before_increase, self._rate
        else:
            sent = max(self._measured(self._sent, now), self._phase_rate())
            base = sent if self._rate is None else min(self._rate, sent or self._rate)
            gentle = False
            if self._announced is not None and base <= self._announced * 1.01:
                gentle = self._trusted  # once: it may be jitter at a true limit ...
                self._trusted = False  # ... but the next one says the headers are wrong
            new = (GENTLE_DECREASE if gentle else DECREASE) * base
            self._recover_to = base if gentle else None
            clean = now - self._start >= WINDOW and now - self._paused_until >= WINDOW
            if clean:  # a full second without a pause: the accepted rate is meaningful
                accepted = self._measured(self._accepted, now)
                new = max(new, GOODPUT_SHARE * min(accepted, base))
            if self._announced is not None and self._trusted and self._binds:
                new = min(new, self._announced)
            self._wall = base
        self._slow_start = False
        self._held = None
        self._set_rate(max(self._min_rate, new), now)
        self._last_decrease = now

    def _granted(self, now: float) -> float:
        rate = self._rate
        gap = IDLE_GAP / rate if rate else math.inf
        if self._phase_start < self._paused_until <= now or now - self._last_grant > gap:
            self._phase_start = now  # a full bucket again: a new phase (``_refill_found``)
            self._anchors = [now]
        self._last_grant = now
        self._sent.append(now)
        self._prune(self._sent, now)
        self._recent.append(now)
        self._recent.drop_before(now - MAX_PAUSE)
        early, reset = self._early
        if early <= now < reset and not self._probe_sent:
            self._probe_sent = True  # the others wait for its answer (or the Reset)
            self._paused_until = max(self._paused_until, reset)
        if self._headers.style == "window" and self._window_left is not None:
            self._window_left -= 1
            self._spend_window(now)
        return now

    def _phase_rate(self) -> float:
        """Grants per second since this phase began (an idle start is not a slow rate)."""
        grants = [t for t in self._sent if t >= self._phase_start]
        if len(grants) < 2 or grants[-1] <= grants[0]:
            return 0.0
        return (len(grants) - 1) / (grants[-1] - grants[0])

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
