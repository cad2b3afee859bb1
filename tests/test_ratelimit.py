"""RateLimiter: exact waits with a fake clock and sleep, shared pauses, AIMD adaptation."""

from __future__ import annotations

import asyncio

import pytest

from bulk_import.models import RateLimitInfo
from bulk_import.ratelimit import HOLD, SLOW_START_STEP, START_RATE, RateLimiter

from support import FakeTime


def limiter(rate: float | None, t: FakeTime, **kw: object) -> RateLimiter:
    return RateLimiter(rate, clock=t.clock, sleep=t.sleep, **kw)  # type: ignore[arg-type]


def grants(lim: RateLimiter, n: int) -> list[float]:
    async def go() -> list[float]:
        return [round(await lim.acquire(), 9) for _ in range(n)]

    return asyncio.run(go())


def test_tokens_are_spaced_one_interval_apart() -> None:
    t = FakeTime()
    assert grants(limiter(10, t, adaptive=False), 3) == [0.0, 0.1, 0.2]
    assert t.sleeps == [0.1, 0.1]


def test_burst_allows_that_many_at_once_then_the_rate() -> None:
    t = FakeTime()
    assert grants(limiter(10, t, adaptive=False, burst=3), 4) == [0.0, 0.0, 0.0, 0.1]
    assert t.sleeps == [0.1]


def test_an_idle_spell_banks_no_more_than_the_burst() -> None:
    t = FakeTime()
    lim = limiter(10, t, adaptive=False)
    grants(lim, 1)
    t.now = 5.0
    assert grants(lim, 2) == [5.0, 5.1]


def test_unlimited_never_waits() -> None:
    t = FakeTime()
    lim = limiter(None, t, adaptive=False)
    assert grants(lim, 100) == [0.0] * 100
    assert t.sleeps == []
    assert lim.current_rate is None


def test_a_stall_is_caught_up_but_an_idle_spell_is_not() -> None:
    t = FakeTime()
    lim = limiter(100, t, adaptive=False)
    grants(lim, 1)

    async def oversleep(seconds: float) -> None:
        await t.sleep(seconds + 0.03)  # the event loop was busy for 30 ms

    lim._sleep = oversleep
    assert grants(lim, 1) == [0.04]  # due at 0.01, woke at 0.04
    lim._sleep = t.sleep
    assert grants(lim, 4) == [0.04, 0.04, 0.04, 0.05]  # 0.02, 0.03, 0.04 caught up
    t.now = 5.0  # nobody asked for a token for seconds: no catching up
    assert grants(lim, 2) == [5.0, 5.01]


def test_a_long_stall_is_caught_up_only_for_catch_up_seconds() -> None:
    t = FakeTime()
    lim = limiter(100, t, adaptive=False)
    grants(lim, 1)

    async def oversleep(seconds: float) -> None:
        await t.sleep(seconds + 1.0)

    lim._sleep = oversleep
    assert grants(lim, 1) == [1.01]
    lim._sleep = t.sleep
    assert grants(lim, 7) == [1.01] * 5 + [1.02, 1.03]  # 50 ms: 5 tokens, then the rate


def test_many_workers_at_the_start_get_no_burst() -> None:
    t = FakeTime()
    lim = limiter(100, t, adaptive=False)

    async def go() -> list[float]:
        return list(await asyncio.gather(*(lim.acquire() for _ in range(4))))

    assert [round(g, 9) for g in asyncio.run(go())] == [0.0, 0.01, 0.02, 0.03]


def test_slow_start_doubles_from_start_rate_after_calm_answers() -> None:
    t = FakeTime()
    lim = limiter(1000, t)
    assert lim.current_rate == START_RATE
    t.now = 0.3
    lim.on_success(sent_at=0.0)  # a calm answer, 0.3 s after the last change
    assert lim.current_rate == 2 * START_RATE
    t.now = 0.6
    lim.on_success(sent_at=0.2)  # sent before the doubling: says nothing of the new rate
    assert lim.current_rate == 2 * START_RATE
    lim.on_success(sent_at=0.35)
    assert lim.current_rate == 4 * START_RATE
    t.now = 0.7
    lim.on_success(sent_at=0.65)  # too soon after the last doubling
    assert lim.current_rate == 4 * START_RATE
    for step in range(1, 5):
        t.now = 0.6 + step * SLOW_START_STEP
        lim.on_success(sent_at=t.now - 0.01)
    assert lim.current_rate == 1000  # never above --rate


def doubled_once(t: FakeTime) -> RateLimiter:
    """A limiter at --rate 1000, slow-started from 100/s to 200/s; the clock at 0.4 s."""
    lim = limiter(1000, t)
    t.now = 0.3
    lim.on_success(sent_at=0.0)
    assert lim.current_rate == 2 * START_RATE
    t.now = 0.4
    return lim


def test_a_429_in_slow_start_falls_back_to_the_last_calm_rate() -> None:
    t = FakeTime()
    lim = doubled_once(t)
    lim.on_throttled(1.0, sent_at=0.35)  # sent at 200/s: throttled
    assert lim.current_rate == START_RATE
    assert grants(lim, 1) == [1.4]  # and everyone paused for Retry-After
    for i in range(1, 10):  # calm seconds, near the wall (the calm rate): held, no probe
        t.now = 1.4 + i
        lim.on_success(sent_at=t.now)
    assert lim.current_rate == START_RATE


def test_a_low_rate_is_not_slow_started() -> None:
    t = FakeTime()
    assert limiter(START_RATE / 2, t).current_rate == START_RATE / 2
    assert limiter(None, t).current_rate is None
    assert limiter(1000, t, adaptive=False).current_rate == 1000


def test_a_pause_holds_every_worker_and_then_resumes_at_the_rate() -> None:
    t = FakeTime()
    lim = limiter(10, t, adaptive=False)
    lim.pause(1.5)

    async def go() -> list[float]:
        return list(await asyncio.gather(*(lim.acquire() for _ in range(3))))

    assert [round(g, 9) for g in asyncio.run(go())] == [1.5, 1.6, 1.7]
    assert t.sleeps == [1.5, 0.1, 0.1]


def test_a_pause_set_while_waiting_for_a_token_is_honoured() -> None:
    t = FakeTime()
    lim = limiter(10, t, adaptive=False)
    grants(lim, 1)

    async def sleep_and_get_throttled(seconds: float) -> None:
        if not t.sleeps:
            lim.pause(1.0)  # another worker's 429 arrives while this one waits
        await t.sleep(seconds)

    lim._sleep = sleep_and_get_throttled
    assert grants(lim, 1) == [1.0]
    assert t.sleeps == [0.1, 0.9]


def test_unlimited_still_honours_a_pause() -> None:
    t = FakeTime()
    lim = limiter(None, t)
    lim.on_throttled(2.0, sent_at=0.0)
    t.now = 0.5
    lim.on_success()  # rate from what was sent: nothing, so the floor
    assert grants(lim, 1) == [2.0]
    assert t.sleeps == [1.5]


def test_throttled_halves_the_rate_and_pauses_everyone() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    t.now = 2.0
    lim.on_throttled(3.0, sent_at=2.0)
    assert lim.current_rate == 50
    assert grants(lim, 2) == [5.0, 5.02]


def test_a_burst_of_429s_from_one_episode_decreases_once() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    t.now = 2.0
    lim.on_throttled(0.0, sent_at=1.9)
    lim.on_throttled(0.0, sent_at=1.95)  # sent before the decrease: same episode
    assert lim.current_rate == 50
    t.now = 2.5
    lim.on_throttled(0.0, sent_at=2.1)  # sent after it, at the new rate: a new episode
    assert lim.current_rate == 25


def test_without_send_times_decreases_are_one_per_second() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    t.now = 2.0
    lim.on_throttled(0.0)
    t.now = 2.5
    lim.on_throttled(0.0)
    assert lim.current_rate == 50
    t.now = 3.0
    lim.on_throttled(0.0)
    assert lim.current_rate == 25


def test_decrease_is_floored_by_the_rate_the_api_accepted() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    for i in range(1, 81):  # 80 answers over the last second, no pause in it
        t.now = 4.0 + i / 80
        lim.on_success()
    t.now = 5.0
    lim.on_throttled(0.0, sent_at=5.0)
    assert lim.current_rate == pytest.approx(76)  # 95 % of 80 accepted, not half of 100


def test_decrease_uses_what_was_really_sent_not_an_unreached_rate() -> None:
    t = FakeTime()
    lim = limiter(1000, t)
    for i in range(40):  # concurrency-bound: 40/s really sent
        t.now = 2.0 + i * 0.025
        asyncio.run(lim.acquire())
    lim.on_throttled(0.0, sent_at=t.now)
    assert lim.current_rate == pytest.approx(20)


def test_the_rate_never_drops_below_min_rate() -> None:
    t = FakeTime()
    lim = limiter(2, t, min_rate=1.5)
    for i in range(3):
        t.now = 2.0 + 2 * i
        lim.on_throttled(0.0, sent_at=t.now)
    assert lim.current_rate == 1.5


def test_additive_increase_after_calm_seconds_up_to_the_configured_rate() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    t.now = 2.0
    lim.on_throttled(0.0, sent_at=2.0)
    assert lim.current_rate == 50
    t.now = 2.5
    lim.on_success()  # less than a second since the 429: no increase
    assert lim.current_rate == 50
    t.now = 3.0
    lim.on_success()
    assert lim.current_rate == pytest.approx(55)  # + 5 % of the wall (100)
    for i in range(1, int(HOLD) + 30):  # near the wall, after HOLD calm seconds
        t.now = 3.0 + i
        lim.on_success()
    assert lim.current_rate == 100


def test_near_the_wall_the_rate_holds_then_probes_additively() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    for i in range(1, 81):
        t.now = 1.0 + i / 80
        lim.on_success()
    t.now = 2.0
    lim.on_throttled(0.0, sent_at=2.0)  # the wall: 100; 95 % of 80 accepted = 76
    assert lim.current_rate == pytest.approx(76)
    t.now = 3.0
    lim.on_success()
    assert lim.current_rate == pytest.approx(81)  # under 85 % of the wall: + 5 % of it
    t.now = 4.0
    lim.on_success()
    assert lim.current_rate == pytest.approx(86)  # now near the wall
    for second in range(5, int(2.0 + HOLD)):
        t.now = second
        lim.on_success()
    assert lim.current_rate == pytest.approx(86)  # held until HOLD calm seconds
    rates = []
    for second in range(int(2.0 + HOLD), int(2.0 + HOLD) + 3):
        t.now = second
        lim.on_success()
        rates.append(lim.current_rate)
    assert rates == pytest.approx([87, 88, 89])  # + 1 % of the wall a second


def test_an_announced_limit_ends_the_slow_start_and_caps_the_rate() -> None:
    t = FakeTime()
    lim = limiter(1000, t)
    lim.observe(RateLimitInfo(limit=300, remaining=50, reset=0.01))
    assert lim.current_rate == 300  # straight to the limit: no need to look for it
    lim.observe(RateLimitInfo(limit=100, remaining=50, reset=0.01))
    assert lim.current_rate == 100
    for i in range(1, 5):
        t.now = i
        lim.on_success()
    assert lim.current_rate == 100


def test_a_429_at_an_announced_limit_decreases_gently() -> None:
    t = FakeTime()
    lim = limiter(1000, t)
    lim.observe(RateLimitInfo(limit=100))
    t.now = 2.0
    lim.on_throttled(1.0, sent_at=2.0)
    assert lim.current_rate == pytest.approx(90)


def test_not_adaptive_pauses_but_keeps_its_rate() -> None:
    t = FakeTime()
    lim = limiter(100, t, adaptive=False)
    lim.on_throttled(2.0, sent_at=0.0)
    lim.observe(RateLimitInfo(limit=10))
    assert lim.current_rate == 100
    assert grants(lim, 1) == [2.0]


def test_unknown_rate_is_set_from_what_was_sent_when_throttled() -> None:
    t = FakeTime()
    lim = limiter(None, t)
    for _ in range(50):
        asyncio.run(lim.acquire())
        t.now += 0.01
    lim.on_throttled(0.0, sent_at=t.now)
    assert lim.current_rate == pytest.approx(50)  # half of 100/s really sent
    for i in range(1, 4):
        t.now = 1.0 + i
        lim.on_success()
    assert lim.current_rate is not None
    assert lim.current_rate > 50


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_announced_limit_keeps_a_configured_rate_within_it() -> None:
    within = RateLimiter(100.0)
    within.observe(RateLimitInfo(limit=100, remaining=None, reset=None))
    assert within.current_rate == 100.0  # the user's --rate, at the limit: kept
    above = RateLimiter(1000.0)
    above.observe(RateLimitInfo(limit=100, remaining=None, reset=None))
    assert above.current_rate == 100.0  # unknown limit: the announced one


def test_a_limit_announced_by_a_429_in_slow_start_is_the_decrease() -> None:
    t = FakeTime()
    lim = doubled_once(t)
    lim.observe(RateLimitInfo(limit=100))  # the 429's headers come first ...
    lim.on_throttled(1.0, sent_at=0.35)  # ... and its request was sent at 200/s
    assert lim.current_rate == 100  # the limit, not 90 % of it
    assert grants(lim, 1) == [1.4]


def test_a_pause_does_not_count_as_a_slow_rate() -> None:
    t = FakeTime()
    lim = limiter(100, t)
    t.now = 2.0
    lim.on_throttled(1.0, sent_at=2.0)  # 50/s, everyone paused until 3.0
    assert grants(lim, 10)[-1] == pytest.approx(3.18)  # 10 sent at 50/s after the pause
    t.now = 3.2
    lim.on_throttled(1.0, sent_at=3.19)
    assert lim.current_rate == pytest.approx(25)  # half of 50/s, not of 10 per second
    t.now = 4.2 + 0.5
    lim.on_success()  # the pause ended at 4.2: half a calm second, no increase yet
    assert lim.current_rate == pytest.approx(25)


class Bucket:
    """A bucket of 5 refilling at ``refill``/s that announces ``announced``/s; answers
    come at once, a 429 with ``Retry-After: 1`` when it is empty."""

    def __init__(self, t: FakeTime, announced: float, refill: float) -> None:
        self.t, self.announced, self.refill = t, announced, refill
        self.tokens, self.stamp = 5.0, t.now
        self.throttled: list[float] = []

    def answer(self, lim: RateLimiter, sent: float) -> None:
        now = self.t.now
        self.tokens = min(5.0, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        refused = self.tokens < 1.0
        if not refused:
            self.tokens -= 1.0
        info = RateLimitInfo(limit=self.announced, remaining=int(self.tokens), reset=1.0)
        lim.observe(info, sent_at=sent)
        if refused:
            self.throttled.append(now)
            lim.on_throttled(1.0, sent_at=sent)
        else:
            lim.on_success(sent_at=sent)


def send_for(lim: RateLimiter, bucket: Bucket, seconds: float) -> list[float]:
    """Requests as fast as ``lim`` grants them, for ``seconds``; their grant times."""

    async def go() -> list[float]:
        times: list[float] = []
        end = bucket.t.now + seconds
        while bucket.t.now < end:
            sent = await lim.acquire()
            times.append(sent)
            bucket.answer(lim, sent)
        return times

    return asyncio.run(go())


def test_a_bucket_draining_under_its_announced_rate_settles_on_its_measured_refill() -> None:
    # Announced 100/s, refilling at 50/s: its Remaining over the last answers measures the
    # refill, and the rate goes just under it before any 429 (no pause).
    t = FakeTime()
    lim = limiter(1000, t)
    bucket = Bucket(t, announced=100, refill=50)
    times = send_for(lim, bucket, 3.0)
    assert lim.current_rate is not None
    assert 44 <= lim.current_rate <= 53  # just under the refill, measured (whole tokens)
    assert len(bucket.throttled) <= 2  # at most two episodes, not one per step down
    assert times[-1] - times[0] == pytest.approx(3.0, abs=0.05)
    lim.observe(RateLimitInfo(limit=100, remaining=0, reset=1.0), sent_at=t.now)
    assert lim.current_rate <= 53  # the announced rate is no longer believed


def test_a_later_429_of_the_same_episode_settles_on_the_measured_refill() -> None:
    t = FakeTime()
    lim = limiter(1000, t)
    bucket = Bucket(t, announced=100, refill=50)
    for i in range(7):
        t.now = i * 0.01
        bucket.answer(lim, t.now)
    assert lim.current_rate == 100  # too short a span to measure anything yet
    t.now = 0.07
    lim.on_throttled(1.0, sent_at=0.06)  # a 429 at a trusted limit: 90 %, maybe jitter
    assert lim.current_rate == pytest.approx(90)
    for i, remaining in enumerate([0, 0, 0, 0, 0]):  # answers of requests in flight
        t.now = 0.08 + i * 0.02
        lim.observe(RateLimitInfo(limit=100, remaining=remaining, reset=1.0), sent_at=t.now)
        lim.on_success(sent_at=t.now - 0.05)
    t.now = 0.17
    lim.on_throttled(1.0, sent_at=0.065)  # the same episode: sent before the decrease
    assert lim.current_rate is not None
    assert lim.current_rate < 60  # measured: (0 - 4 + 11 accepted) / 0.12 s, not 90
    assert grants(lim, 1) == [pytest.approx(1.17)]  # each Retry-After is honoured in full


def test_no_probe_above_an_announced_bucket_that_does_not_stay_full() -> None:
    # 50/s announced and enforced: a bucket left at 2 of 5 by a start-up burst is binding,
    # not a sign that the API accepts more (probing above it draws a 429).
    t = FakeTime()
    lim = limiter(500, t)
    lim.observe(RateLimitInfo(limit=50, remaining=4, reset=1.0), sent_at=0.0)
    assert lim.current_rate == 50

    async def run() -> None:
        for i in range(100):  # 2 s at the rate, the bucket at 2 or 3 of 5
            sent = await lim.acquire()
            info = RateLimitInfo(limit=50, remaining=2 + i % 2, reset=1.0)
            lim.observe(info, sent_at=sent)
            lim.on_success(sent_at=sent)

    asyncio.run(run())
    assert lim.current_rate == 50


def test_a_probe_that_draws_a_429_falls_back_to_the_rate_it_held() -> None:
    # Probes step 1 % of the wall a second; on a bucket a step a little too high drains it
    # slowly, so the 429 comes steps later: back to the rate held for HOLD seconds.
    t = FakeTime()
    lim = limiter(100, t)
    t.now = 1.0
    lim.on_throttled(0.0, sent_at=1.0)
    assert lim.current_rate == 50  # the wall: 100
    for second in range(2, 12):
        t.now = second
        lim.on_success()
    held = lim.current_rate
    assert held == pytest.approx(85)  # 85 % of the wall: held
    for second in range(12, int(1 + HOLD) + 3):
        t.now = second
        lim.on_success()
    assert lim.current_rate == pytest.approx(held + 3)  # probing: + 1 a second
    t.now += 0.5
    lim.on_throttled(0.0, sent_at=t.now)
    assert lim.current_rate == pytest.approx(held)


def test_a_window_spent_by_the_requests_in_flight_is_waited_out_before_it_is_believed() -> None:
    # 10 per window: ten requests sent, then their answers count down to the same end
    # (5.0).  Believing a window takes WINDOW_SPAN seconds of answers, but by the third
    # agreeing one the quota is spent by what is in flight: wait for its end, do not draw
    # a 429 (and a whole-window Retry-After) from each request sent meanwhile.
    t = FakeTime()
    lim = limiter(100, t)
    sent = grants(lim, 10)
    assert sent == pytest.approx([i / 100 for i in range(10)])
    for k in range(3):
        t.now = 0.1 + k * 0.001
        info = RateLimitInfo(limit=10, remaining=9 - k, reset=5.0 - t.now)
        lim.observe(info, sent_at=sent[k])
        lim.on_success(sent_at=sent[k])
    assert grants(lim, 1) == [pytest.approx(5.0)]


class AnsweringTime(FakeTime):
    """A fake clock that delivers answers (callbacks) as the sleeps pass their times."""

    def __init__(self) -> None:
        super().__init__()
        self.due: list[tuple[float, object]] = []

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        for at, answer in [d for d in self.due if d[0] <= self.now + 1e-9]:
            self.due.remove((at, answer))
            answer()  # type: ignore[operator]


def test_a_bucket_spent_by_the_requests_in_flight_holds_the_next_grant() -> None:
    # The first answer says 2 tokens left, and 3 requests are in flight after it: the
    # next grant waits for an answer showing a token (the refill is not measured yet),
    # instead of drawing a 429 and its whole-second pause.
    t = AnsweringTime()
    lim = limiter(500, t)
    assert grants(lim, 4) == [0.0, 0.01, 0.02, 0.03]
    t.now = 0.05
    lim.observe(RateLimitInfo(limit=100, remaining=2, reset=1.0), sent_at=0.0)
    lim.on_success(sent_at=0.0)

    def answer() -> None:  # the last one in flight: 1 left, nothing granted after it
        lim.observe(RateLimitInfo(limit=100, remaining=1, reset=1.0), sent_at=0.03)
        lim.on_success(sent_at=0.03)

    t.due.append((0.08, answer))
    assert grants(lim, 1) == [pytest.approx(0.08)]  # not 0.05, when it was due


def test_a_bucket_holds_no_grant_while_its_measured_refill_covers_those_in_flight() -> None:
    t = FakeTime()
    lim = limiter(50, t)
    lim._refill_rate = 50.0  # measured: 50 tokens a second
    assert grants(lim, 3) == [0.0, 0.02, 0.04]
    t.now = 0.05
    lim.observe(RateLimitInfo(limit=50, remaining=1, reset=1.0), sent_at=0.0)
    # 1 left when the first was taken, 2 taken since, 3 refilled by the next's arrival.
    assert grants(lim, 1) == [pytest.approx(0.06)]


def test_the_first_decrease_halves_the_rate_sent_since_an_idle_start() -> None:
    # One request, an idle spell (its answer awaited), then 100/s: the rate sent is 100/s,
    # not the 62/s the last second's grants average with the idle spell in it.
    t = FakeTime()
    lim = limiter(500, t)
    grants(lim, 1)
    t.now = 0.06
    assert grants(lim, 14)[-1] == pytest.approx(0.19)
    t.now = 0.24
    lim.on_throttled(1.0, sent_at=0.19)
    assert lim.current_rate == pytest.approx(50)


def test_a_silent_limit_is_found_from_two_phases_and_not_probed_again() -> None:
    # No headers.  The first phase (from a full bucket at 100/s) accepted 9 in 0.09 s;
    # the second, from the pause's end, accepted A in D seconds: the refill is at least
    # (A - 9) / (D - 0.09), and the rate settles just under that, with no eager probe.
    t = FakeTime()
    lim = limiter(500, t)

    async def send(until: float, throttle_at: float | None = None) -> list[float]:
        sent: list[float] = []
        while True:
            at = await lim.acquire()
            if throttle_at is not None and at >= throttle_at:
                lim.on_throttled(1.0, sent_at=at)
                return sent
            if at >= until:
                return sent
            lim.on_success(sent_at=at)
            sent.append(at)

    first = asyncio.run(send(1.0, throttle_at=0.09))
    assert len(first) == 9
    assert lim.current_rate == pytest.approx(50)
    second = asyncio.run(send(3.0))
    assert lim.current_rate == pytest.approx(55)  # a calm second: +5 % of the 100 throttled
    throttled = t.now  # the request granted at 3.0 s draws a 429
    lim.on_throttled(1.0, sent_at=throttled)
    assert lim.current_rate is not None
    start = second[0]
    bound = (len(second) - 9) / (throttled - start - 0.09)  # the phase from the pause's end
    assert lim.current_rate == pytest.approx(0.99 * bound, rel=0.02)
    assert 48 <= lim.current_rate < 50
    settled = lim.current_rate
    asyncio.run(send(20.0))  # calm seconds after: held (no probe that would cost a pause)
    assert lim.current_rate == settled


def test_a_late_answer_of_the_first_phase_still_counts_in_the_refill_found() -> None:
    # The first phase: 100/s from 0, its 429 (sent at 0.09) answered before the answer
    # of the request sent at 0.08.  That one counts when it comes: the refill found later
    # is (A - 9) / (D - 0.09), not (A - 8) / (D - 0.09), which overestimates it.
    t = FakeTime()
    lim = limiter(500, t)
    sent = grants(lim, 10)
    for at in sent[:8]:
        lim.on_success(sent_at=at)
    t.now = 0.14
    lim.on_throttled(1.0, sent_at=sent[9])
    lim.on_success(sent_at=sent[8])  # late
    t.now = 1.14

    async def unrounded(n: int) -> list[float]:
        return [await lim.acquire() for _ in range(n)]

    second = asyncio.run(unrounded(101))  # 2 s at 50/s from the pause's end, accepted ...
    for at in second[:-1]:
        lim.on_success(sent_at=at)
    lim.on_throttled(1.0, sent_at=second[-1])  # ... until a 429
    bound = (100 - 9) / (second[-1] - second[0] - 0.09)
    assert lim.current_rate == pytest.approx(0.99 * bound)


def test_the_slow_start_step_counts_from_the_first_grant_not_from_creation() -> None:
    # Created at 0, first request at 0.2 (start-up, the account's listing): the first
    # doubling comes a SLOW_START_STEP of calm answers after 0.2, not at 0.25.
    t = FakeTime()
    lim = limiter(500, t)
    t.now = 0.2
    sent = grants(lim, 10)  # 0.2 .. 0.29 at 100/s
    t.now = 0.3
    lim.on_success(sent_at=sent[-1])
    assert lim.current_rate == START_RATE
    t.now = 0.2 + SLOW_START_STEP
    lim.on_success(sent_at=sent[-1])
    assert lim.current_rate == 2 * START_RATE
