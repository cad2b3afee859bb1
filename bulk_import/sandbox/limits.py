"""The sandbox's rate limits, in each style real APIs use to enforce and announce them.

This module owns what the sandbox does above ``--rate``: how the limit is enforced (a
token bucket or a fixed window) and how it is announced (which headers, what their
numbers mean), per ``SandboxConfig.rate_style``:

- ``silent``: a token bucket; no rate-limit headers, only ``429`` + ``Retry-After``;
- ``bucket``: a token bucket of ``rate``/s holding ``max(1, rate/10)``, announced as
  ``X-RateLimit-Limit`` (per second), ``-Remaining`` (whole tokens left) and ``-Reset``
  (whole seconds until full, rounded up, as many real APIs send it);
- ``window``: a fixed window of ``rate * window`` requests per ``window`` seconds, which
  starts at the first request after the last one ended; ``X-RateLimit-Limit`` (per
  window), ``-Remaining`` (left in this window), ``-Reset`` (seconds until it ends,
  rounded up, or with ``reset_epoch`` its end as a Unix time);
- ``ietf``: a token bucket announced as the IETF draft does: ``RateLimit-Policy:
  Q;w=W`` and ``RateLimit: limit=Q, remaining=N, reset=S`` (``Q = rate * window``), or
  (``ietf_form``) the older ``RateLimit-Limit``/``-Remaining``/``-Reset``, or the newest
  draft's structured fields, ``RateLimit-Policy: "burst";q=Q;w=W, "daily";q=D;w=86400``
  and ``RateLimit: "burst";r=N;t=S, "daily";r=M;t=T``: the daily policy (ten times the
  rate over a day) never binds in a run, so a client must honour the most restrictive.

``announce_rate`` makes the headers lie (the limit they announce, per second, is not
the one enforced).  Time is injected (``clock``, ``wall_clock``) so tests can drive it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from bulk_import.sandbox.settings import SandboxConfig

Headers = list[tuple[bytes, bytes]]


class Enforcer(Protocol):
    """Decides whether a request may pass, and what is left."""

    def take(self) -> float:
        """0.0 when the request may pass (counted), else seconds until one may."""
        ...

    def remaining(self) -> int:
        """Requests that may pass now."""
        ...

    def reset(self) -> float:
        """Seconds until the quota is whole again."""
        ...


class TokenBucket:
    """``rate`` tokens a second, holding at most ``capacity``; full at the start."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate / 10)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> float:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def remaining(self) -> int:
        self._refill()
        return math.floor(self._tokens)

    def reset(self) -> float:
        self._refill()
        return (self.capacity - self._tokens) / self.rate


class FixedWindow:
    """``quota`` requests per ``window`` seconds; a window starts at the first request
    after the previous one ended."""

    def __init__(
        self, quota: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quota = quota
        self.window = window
        self._clock = clock
        self._end = -math.inf
        self._used = 0

    def _roll(self, start: bool) -> None:
        now = self._clock()
        if now >= self._end and start:
            self._end, self._used = now + self.window, 0

    def take(self) -> float:
        self._roll(start=True)
        if self._used < self.quota:
            self._used += 1
            return 0.0
        return self._end - self._clock()

    def remaining(self) -> int:
        if self._clock() >= self._end:
            return self.quota
        return self.quota - self._used

    def reset(self) -> float:
        return max(0.0, self._end - self._clock())


class RateLimit:
    """One sandbox's limit: its enforcer and the headers it announces (module docstring)."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        assert config.rate is not None
        self.config = config
        self.style = config.rate_style
        self.window = config.effective_window()
        self._wall_clock = wall_clock
        self._clock = clock
        self.enforcer: Enforcer
        if self.style == "window":
            self.enforcer = FixedWindow(
                max(1, round(config.rate * self.window)), self.window, clock=clock
            )
        else:
            self.enforcer = TokenBucket(config.rate, config.burst, clock=clock)
        announced = config.announce_rate if config.announce_rate is not None else config.rate
        self.announced = announced
        self._started = clock()
        self._daily_used = 0  # answers so far, counted against the daily policy

    def take(self) -> float:
        """0.0 when the request may pass, else the seconds until one may (its Retry-After)."""
        return self.enforcer.take()

    def headers(self, *, throttled: bool) -> Headers:
        """The rate-limit headers of an answer (a 429 if ``throttled``), in this style."""
        announce = self.config.rate_headers
        if self.style == "silent" or announce == "none" or (announce == "429" and not throttled):
            return []
        remaining = str(self.enforcer.remaining()).encode()
        seconds = self.enforcer.reset()
        if self.config.decimal_reset:
            reset = f"{seconds:.3f}".encode()
        else:
            reset = str(math.ceil(seconds)).encode()
        if self.style == "window":
            limit = _number(self.announced * self.window)
            if self.config.reset_epoch:
                reset = str(math.ceil(self._wall_clock() + seconds)).encode()
            return [
                (b"x-ratelimit-limit", limit),
                (b"x-ratelimit-remaining", remaining),
                (b"x-ratelimit-reset", reset),
            ]
        if self.style == "ietf":
            quota = _number(self.announced * self.window)
            form = self.config.effective_ietf_form()
            if form == "structured":
                return self._structured(quota, remaining, reset)
            if form == "trio":
                return [
                    (b"ratelimit-limit", quota),
                    (b"ratelimit-remaining", remaining),
                    (b"ratelimit-reset", reset),
                ]
            window = _number(self.window)
            return [
                (b"ratelimit-policy", b"%s;w=%s" % (quota, window)),
                (b"ratelimit", b"limit=%s, remaining=%s, reset=%s" % (quota, remaining, reset)),
            ]
        return [
            (b"x-ratelimit-limit", _number(self.announced)),
            (b"x-ratelimit-remaining", remaining),
            (b"x-ratelimit-reset", reset),
        ]

    def _structured(self, quota: bytes, remaining: bytes, reset: bytes) -> Headers:
        daily = math.ceil(self.announced * DAY * 10)
        self._daily_used += 1
        day_left = max(0, daily - self._daily_used)
        day_reset = math.ceil(DAY - (self._clock() - self._started) % DAY)
        window = _number(self.window)
        policy = b'"burst";q=%s;w=%s, "daily";q=%d;w=%d' % (quota, window, daily, DAY)
        state = b'"burst";r=%s;t=%s, "daily";r=%d;t=%d' % (remaining, reset, day_left, day_reset)
        return [(b"ratelimit-policy", policy), (b"ratelimit", state)]


DAY = 86_400  # seconds: the structured form's second, looser policy


def _number(value: float) -> bytes:
    return f"{value:g}".encode()


def format_retry_after(seconds: float, decimal: bool) -> str:
    """``Retry-After`` value: whole seconds rounded up, or seconds with 3 decimals."""
    return f"{seconds:.3f}" if decimal else str(math.ceil(seconds))
