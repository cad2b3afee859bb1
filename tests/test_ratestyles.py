"""The rate controller against each way an API announces its limit, on an injected clock.

Each test drives a ``RateLimiter`` with the answers of the sandbox's own limit emulation
(``bulk_import.sandbox.limits``) over simulated time: requests are granted by the
limiter, answered ``LATENCY`` later by the emulated API (its headers parsed by
``api.parse_rate_limit``), 429s sent again.  Nothing sleeps for real, so the figures
are exact: the rate it settles on, how long the rows took, how many 429s it drew.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bulk_import.api import parse_rate_limit
from bulk_import.models import RateLimitInfo
from bulk_import.ratelimit import RateLimiter
from bulk_import.sandbox import limits
from bulk_import.sandbox.limits import FixedWindow, RateLimit
from bulk_import.sandbox.settings import SandboxConfig

LATENCY = 0.05
EPOCH = 1_700_000_000.0


@dataclass
class Outcome:
    span: float  # first grant to last accepted answer
    requests: int
    throttled: int
    limiter: RateLimiter
    accepted_at: list[float]
    throttled_at: list[float]

    @property
    def episodes(self) -> int:
        """Runs of 429s, as the sandbox counts them (one 0.25 s after the last starts one)."""
        starts = [
            t
            for i, t in enumerate(self.throttled_at)
            if not i or t - self.throttled_at[i - 1] >= 0.25
        ]
        return len(starts)

    def rate_between(self, start: float, end: float) -> float:
        return sum(1 for t in self.accepted_at if start <= t < end) / (end - start)


class Simulation:
    """An API (``SandboxConfig``'s rate style) and a client limiter on one fake clock."""

    def __init__(self, config: SandboxConfig, rate: float | None, concurrency: int) -> None:
        self.now = 0.0
        self.api = RateLimit(config, clock=self.clock, wall_clock=lambda: EPOCH + self.now)
        self.limiter = RateLimiter(rate, clock=self.clock, sleep=self.sleep)
        self.concurrency = concurrency
        self.in_flight: list[tuple[float, int, float]] = []  # (answer at, seq, sent at)
        self.seq = 0
        self.to_send = 0
        self.requests = self.throttled = 0
        self.accepted_at: list[float] = []
        self.throttled_at: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        target = self.now + seconds
        self.deliver(until=target)
        self.now = max(self.now, target)
        await asyncio.sleep(0)

    def deliver(self, until: float) -> None:
        while self.in_flight and self.in_flight[0][0] <= until:
            at, _, sent = heapq.heappop(self.in_flight)
            self.now = max(self.now, at)
            wait = self.api.take()  # the sandbox checks after its latency, then answers
            headers = httpx.Headers(self.api.headers(throttled=wait > 0))
            info = parse_rate_limit(headers, now=EPOCH + self.now)
            if info is not None:
                self.limiter.observe(info, sent_at=sent)
            if wait > 0:
                self.throttled += 1
                self.throttled_at.append(self.now)
                self.to_send += 1
                self.limiter.on_throttled(math.ceil(wait), sent_at=sent)
            else:
                self.accepted_at.append(self.now)
                self.limiter.on_success(sent_at=sent)

    async def _run(self, rows: int) -> Outcome:
        self.to_send = rows
        first: float | None = None
        while self.to_send or self.in_flight:
            self.deliver(until=self.now)
            if not self.to_send or len(self.in_flight) >= self.concurrency:
                self.deliver(until=self.in_flight[0][0])
                continue
            sent = await self.limiter.acquire()
            first = sent if first is None else first
            self.to_send -= 1
            self.requests += 1
            self.seq += 1
            heapq.heappush(self.in_flight, (sent + LATENCY, self.seq, sent))
        assert first is not None
        return Outcome(
            span=self.accepted_at[-1] - first,
            requests=self.requests,
            throttled=self.throttled,
            limiter=self.limiter,
            accepted_at=self.accepted_at,
            throttled_at=self.throttled_at,
        )


def simulate(
    rows: int, client: float | None, /, *, concurrency: int = 16, **config: Any
) -> Outcome:
    """``rows`` sent by a client at ``--rate client`` to an API of ``SandboxConfig(**config)``."""
    sim = Simulation(SandboxConfig(**config), client, concurrency)
    return asyncio.run(sim._run(rows))


# -- token bucket, whole-second Reset ----------------------------------------------------


def test_bucket_at_its_known_rate_runs_at_it_not_at_a_window_budget() -> None:
    # 50/s, a bucket of 5, Reset whole seconds rounded up: the case that ran at 3/s when
    # Remaining/Reset were read as a window's budget.
    out = simulate(500, 50, rate_style="bucket", rate=50, burst=5)
    assert out.throttled == 0
    assert out.span <= 1.02 * 500 / 50
    assert out.limiter.current_rate == 50
    assert out.limiter.style == "bucket"


def test_bucket_with_the_limit_unknown_settles_on_the_announced_rate() -> None:
    out = simulate(1000, 1000, concurrency=32, rate_style="bucket", rate=50, burst=5)
    assert out.span <= 1.10 * 1000 / 50
    assert out.throttled <= 0.03 * out.requests
    assert out.limiter.current_rate is not None
    assert 45 <= out.limiter.current_rate <= 56
    assert out.rate_between(5, 15) >= 0.95 * 50


def test_bucket_that_announces_the_limit_once_is_not_run_at_remaining_over_reset() -> None:
    t = 0.0
    lim = RateLimiter(50, clock=lambda: t)
    for i in range(100):  # a bucket at its limit: 0-4 tokens left, full within a second
        t = i * 0.02
        lim.observe(RateLimitInfo(limit=50, remaining=i % 3, reset=1.0), sent_at=t)
        lim.on_success(sent_at=t)
    assert lim.current_rate == 50


# -- fixed window ---------------------------------------------------------------------------


@pytest.mark.parametrize("epoch", [False, True], ids=["reset-seconds", "reset-unix-time"])
def test_window_spends_each_window_then_waits_for_its_end(epoch: bool) -> None:
    # 300 per 20 s (a scaled-down 600 per 60 s), 750 rows: windows at 0, 20 and 40 s.
    out = simulate(750, 100, rate_style="window", rate=15, window=20, reset_epoch=epoch)
    assert out.limiter.style == "window"
    assert out.throttled <= 0.01 * out.requests
    # The last window starts at 40 s (a whole-second Reset makes each start up to 1 s
    # late, and a window starts at the first request after the last one ended); 150 rows
    # at 100/s then take 1.5 s.
    assert out.span <= 40 + 2 * 1 + 1.5 + 0.5
    assert out.rate_between(0, 1.5) >= 90  # bursts: never paced at quota / window


@pytest.mark.parametrize("offset", [0.0, 0.3, 0.6, 0.9])
def test_window_with_unix_time_reset_resumes_at_its_inferred_end(
    offset: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100 per 5 s, 400 rows at 100/s: windows open at the first request (0.05 s) and end
    # 5 s later.  A whole-second Unix-time Reset is up to 1 s late and a resume at it
    # makes every window after start at a whole second (each then 0.95 s late: span
    # 18.1 s on the old code); the window's phase inferred from its first answers ends
    # each at its real end, plus one probe's round trip.  Whatever the clock's phase.
    monkeypatch.setattr(sys.modules[__name__], "EPOCH", EPOCH + offset)
    out = simulate(400, 100, rate_style="window", rate=20, window=5, reset_epoch=True)
    assert out.limiter.style == "window"
    assert out.throttled == 0
    assert out.span <= 15 + 4 * LATENCY + 1.0 + 0.3  # three window ends, the last 100


class _ClockAlignedWindow(FixedWindow):
    """A window on the clock's grid (every 5 s from -0.3 s), not at the first request."""

    def _roll(self, start: bool) -> None:
        now = self._clock()
        if now >= self._end:
            self._end = (math.floor((now + 0.3) / self.window) + 1) * self.window - 0.3
            self._used = 0


@pytest.mark.parametrize("epoch", [False, True], ids=["reset-seconds", "reset-unix-time"])
def test_window_on_the_clock_grid_costs_one_probe_then_uses_its_reset(
    epoch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window not anchored at the first request (the batch starts 0.3 s into one): the
    # phase inferred from the first window is wrong, and the one probe sent before the
    # next Reset draws a 429; from then on, the Resets alone.
    monkeypatch.setattr(limits, "FixedWindow", _ClockAlignedWindow)
    out = simulate(400, 100, rate_style="window", rate=20, window=5, reset_epoch=epoch)
    assert out.throttled <= 1
    assert not out.limiter._headers.infer
    assert out.span <= 4.7 + 2 * 5 + 1 + 0.5


def test_window_at_its_known_rate_draws_no_429() -> None:
    out = simulate(500, 10, rate_style="window", rate=10, window=20)
    assert out.throttled == 0
    assert out.span <= 500 / 10 + 2


# -- IETF draft headers ---------------------------------------------------------------------


@pytest.mark.parametrize("trio", [False, True], ids=["policy-and-ratelimit", "trio"])
def test_ietf_headers_settle_on_the_policy_rate(trio: bool) -> None:
    out = simulate(1000, 1000, concurrency=32, rate_style="ietf", rate=50, ietf_trio=trio)
    assert out.throttled <= 0.03 * out.requests
    assert out.span <= 1.10 * 1000 / 50
    assert out.rate_between(5, 15) >= 0.95 * 50


def test_ietf_policy_names_the_window() -> None:
    headers = httpx.Headers(
        {"RateLimit-Policy": "600;w=60", "RateLimit": "limit=600, remaining=50, reset=30"}
    )
    info = parse_rate_limit(headers)
    assert info == RateLimitInfo(limit=600, remaining=50, reset=30, window=60)
    assert info.per_second == 10
    newer = httpx.Headers(
        {"RateLimit-Policy": '"default";q=100;w=10', "RateLimit": '"default";r=7;t=2'}
    )
    assert parse_rate_limit(newer) == RateLimitInfo(limit=100, remaining=7, reset=2, window=10)
    trio = httpx.Headers(
        {"RateLimit-Limit": "100", "RateLimit-Remaining": "3", "RateLimit-Reset": "1"}
    )
    assert parse_rate_limit(trio) == RateLimitInfo(limit=100, remaining=3, reset=1)


def test_of_several_structured_policies_the_most_restrictive_is_honoured() -> None:
    # A loose daily quota listed first must not hide the burst policy that binds.
    headers = httpx.Headers(
        {
            "RateLimit-Policy": '"daily";q=50000;w=86400, "burst";q=100;w=2',
            "RateLimit": '"daily";r=49000;t=80000, "burst";r=7;t=1',
        }
    )
    assert parse_rate_limit(headers) == RateLimitInfo(limit=100, remaining=7, reset=1, window=2)
    spent = httpx.Headers(  # the daily quota nearly spent: now it is the one that binds
        {
            "RateLimit-Policy": '"burst";q=100;w=2, "daily";q=50000;w=86400',
            "RateLimit": '"burst";r=90;t=1, "daily";r=3;t=600',
        }
    )
    assert parse_rate_limit(spent) == RateLimitInfo(
        limit=50000, remaining=3, reset=600, window=86400
    )


def test_of_several_policies_without_remaining_the_lowest_rate_is_honoured() -> None:
    older = httpx.Headers(
        {"RateLimit-Policy": "36000;w=3600, 100;w=20", "RateLimit-Remaining": "4"}
    )
    assert parse_rate_limit(older) == RateLimitInfo(limit=100, remaining=4, window=20)
    unnamed = httpx.Headers(  # the field's item names no policy of the list
        {"RateLimit-Policy": '"a";q=600;w=60, "b";q=100;w=60', "RateLimit": '"x";r=5;t=3'}
    )
    assert parse_rate_limit(unnamed) == RateLimitInfo(limit=100, remaining=5, reset=3, window=60)


# -- silent ---------------------------------------------------------------------------------


def test_silent_limit_is_found_from_429s_alone() -> None:
    out = simulate(2000, 1000, concurrency=32, rate_style="silent", rate=100)
    assert out.throttled <= 0.03 * out.requests
    assert out.span <= 1.15 * 2000 / 100
    assert out.limiter.style == "unknown"


# -- wrong headers --------------------------------------------------------------------------


def test_a_limit_announced_too_high_is_not_kept() -> None:
    out = simulate(2000, 1000, concurrency=32, rate_style="bucket", rate=100, announce_rate=200)
    assert out.throttled <= 0.03 * out.requests
    assert out.span <= 1.20 * 2000 / 100
    assert out.limiter.current_rate is not None
    assert out.limiter.current_rate <= 115


def test_a_limit_announced_too_low_is_not_obeyed_for_long() -> None:
    out = simulate(2000, 1000, concurrency=32, rate_style="bucket", rate=100, announce_rate=50)
    assert out.throttled <= 0.03 * out.requests
    assert out.span <= 1.20 * 2000 / 100
    assert out.rate_between(5, 15) >= 0.9 * 100


def test_a_limit_announced_too_low_is_passed_up_to_the_users_rate() -> None:
    out = simulate(1000, 100, rate_style="bucket", rate=100, announce_rate=50)
    assert out.throttled == 0
    assert out.span <= 1.10 * 1000 / 100


def test_the_controller_loads_no_http_stack() -> None:
    code = (
        "import sys, bulk_import.ratelimit; "
        "print(sorted(m for m in ('httpx', 'aiohttp', 'bulk_import.api') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_one_429_at_a_trusted_limit_is_jitter_but_a_second_one_is_not() -> None:
    t = 0.0
    lim = RateLimiter(1000, clock=lambda: t)
    lim.observe(RateLimitInfo(limit=100, remaining=9, reset=1.0), sent_at=0.0)
    t = 2.0
    lim.on_throttled(0.0, sent_at=2.0)
    assert lim.current_rate == pytest.approx(90)
    t = 3.1
    lim.on_success(sent_at=3.0)  # a calm second: back to the announced limit
    assert lim.current_rate == 100
    t = 4.0
    lim.on_throttled(0.0, sent_at=3.9)  # again: back to the rate that drew none ...
    assert lim.current_rate == pytest.approx(90)
    t = 5.1
    lim.on_success(sent_at=5.0)  # ... and held there: the limit is not believed any more
    assert lim.current_rate == pytest.approx(90)


# -- short batches (500 rows at 50/s) ---------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"rate_style": "bucket"},
        {"rate_style": "ietf", "window": 2},
        {"rate_style": "ietf", "window": 2, "ietf_form": "structured"},
    ],
    ids=["bucket", "ietf-draft", "ietf-structured"],
)
def test_a_short_batch_with_the_limit_announced_draws_no_429(config: dict[str, Any]) -> None:
    # --rate 10 x too high: the announced rate is used at once; probing above it would
    # drain the bucket left near empty by the start and cost a whole-second pause.
    out = simulate(500, 500, rate=50, **config)
    assert out.throttled == 0
    assert out.span <= 1.02 * 500 / 50


def test_a_short_batch_announced_too_high_is_settled_in_one_episode() -> None:
    out = simulate(500, 500, rate_style="bucket", rate=50, announce_rate=100)
    assert out.span <= 1.15 * 500 / 50
    assert out.throttled <= 0.01 * out.requests


@pytest.mark.parametrize(
    "config",
    [
        {"rate_style": "ietf", "window": 2, "ietf_form": "trio"},
        {"rate_style": "bucket", "announce_rate": 100},
    ],
    ids=["ietf-trio", "announced-too-high"],
)
def test_a_bucket_announced_above_its_refill_is_not_overrun_at_the_start(
    config: dict[str, Any],
) -> None:
    # The trio's RateLimit-Limit: 100 (no window) reads as 100/s, twice the refill: the
    # 5-token bucket is spent by the requests in flight before the refill is measured.
    # Its Remaining, less those granted since, holds the next grant: no 429 (and no
    # whole-second pause, 10 % of this batch).
    out = simulate(500, 500, rate=50, **config)
    assert out.throttled == 0
    assert out.span <= 1.10 * 500 / 50


def test_a_short_silent_batch_finds_the_limit_in_two_episodes() -> None:
    # 500 rows, 429 + Retry-After only: the first episode halves the rate sent; the
    # second (a step above it) measures the refill against the first phase, and the
    # rate settles just under it, not probed again.
    out = simulate(500, 500, rate_style="silent", rate=50)
    assert out.episodes <= 2
    assert out.throttled <= 0.03 * out.requests
    assert out.span <= 1.25 * 500 / 50
    assert out.limiter.current_rate is not None
    assert 48 <= out.limiter.current_rate < 50


def test_a_long_silent_run_pays_no_probe_after_it_settles() -> None:
    # 60 s at 50/s: a probe above the rate held costs a whole-second Retry-After pause.
    out = simulate(3000, 500, rate_style="silent", rate=50)
    assert out.span <= 1.05 * 3000 / 50
    assert out.throttled <= 0.01 * out.requests
