"""What the sandbox does wrong on purpose: its configuration, rate limit and injected faults.

This module owns ``SandboxConfig`` (every knob of the emulator), the token-bucket
``RateLimiter`` behind ``429 Too Many Requests``, the seeded ``FaultDice`` that decides
which import request fails and how, and ``drop_connection``, which ends an HTTP exchange
with no answer at all so that the client sees a transport error, not a status.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: Scope key under which the sandbox's ASGI entry point stores the connection's transport.
TRANSPORT_KEY = "sandbox.transport"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Every knob of the emulator.

    ``rate`` limits requests per second across the API endpoints (token bucket, burst of
    ``max(1, rate / 10)``); ``latency_ms`` delays every API answer.  The ``*_rate``
    fields are probabilities (their sum at most 1) applied to ``POST
    /v1/phone-numbers/import`` only, after the key and rate checks:

    - ``fail_rate``: 500, nothing stored;
    - ``unavailable_rate``: 503 with ``Retry-After: fault_retry_after``, nothing stored;
    - ``reset_rate``: the connection is dropped without an answer, nothing stored;
    - ``drop_after_store_rate``: the number is stored, then the connection is dropped;
    - ``late_rate``: the number is stored, the 201 is sent only after ``late_ms``.

    ``burst_429_every=N`` answers every Nth import request 429 with ``Retry-After:
    fault_retry_after``.  ``Retry-After`` is whole seconds rounded up (HTTP's
    delta-seconds) unless ``decimal_retry_after``, then seconds with 3 decimals.
    ``seed`` makes the fault draws repeatable.
    """

    api_key: str = "sandbox-key"
    rate: float | None = None
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    unavailable_rate: float = 0.0
    reset_rate: float = 0.0
    drop_after_store_rate: float = 0.0
    late_rate: float = 0.0
    late_ms: float = 2000.0
    burst_429_every: int | None = None
    fault_retry_after: float = 1.0
    decimal_retry_after: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        if self.latency_ms < 0 or self.late_ms < 0 or self.fault_retry_after < 0:
            raise ValueError("latency_ms, late_ms and fault_retry_after must be >= 0")
        if self.burst_429_every is not None and self.burst_429_every < 1:
            raise ValueError("burst_429_every must be >= 1 (or None)")
        probabilities = [p for _, p in self.fault_rates()]
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or sum(probabilities) > 1.0 + 1e-9:
            raise ValueError("fault rates must each be in [0, 1] and sum to at most 1")

    def fault_rates(self) -> list[tuple[Fault, float]]:
        """The probabilistic faults with their probabilities, in the order they are drawn."""
        return [
            (Fault.FAIL, self.fail_rate),
            (Fault.UNAVAILABLE, self.unavailable_rate),
            (Fault.RESET, self.reset_rate),
            (Fault.DROP_AFTER_STORE, self.drop_after_store_rate),
            (Fault.LATE, self.late_rate),
        ]


class Fault(StrEnum):
    """A fault injected into one import request (the keys of ``stats()["faults"]``)."""

    BURST_429 = "burst_429"
    FAIL = "fail"
    UNAVAILABLE = "unavailable"
    RESET = "reset"
    DROP_AFTER_STORE = "drop_after_store"
    LATE = "late"


class FaultDice:
    """Decides, request by request, which fault (if any) an import request gets."""

    def __init__(self, config: SandboxConfig) -> None:
        self._every = config.burst_429_every
        self._rates = [(f, p) for f, p in config.fault_rates() if p > 0]
        self._rng = random.Random(config.seed)
        self._count = 0

    def roll(self) -> Fault | None:
        """The fault for the next import request, or None for a normal answer."""
        self._count += 1
        if self._every is not None and self._count % self._every == 0:
            return Fault.BURST_429
        if not self._rates:
            return None
        draw = self._rng.random()
        for fault, probability in self._rates:
            if draw < probability:
                return fault
            draw -= probability
        return None


class RateLimiter:
    """A token bucket: ``rate`` tokens a second, holding at most ``capacity``."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-RateLimit-*``: limit per second, whole tokens left, seconds until full."""
        reset = (self.capacity - self._tokens) / self.rate
        return [
            (b"x-ratelimit-limit", f"{self.rate:g}".encode()),
            (b"x-ratelimit-remaining", str(math.floor(self._tokens)).encode()),
            (b"x-ratelimit-reset", f"{reset:.3f}".encode()),
        ]


def format_retry_after(seconds: float, decimal: bool) -> str:
    """``Retry-After`` value: whole seconds rounded up, or seconds with 3 decimals."""
    return f"{seconds:.3f}" if decimal else str(math.ceil(seconds))


class ConnectionDropped(Exception):
    """Raised to make the server close a connection mid-answer (fallback path only)."""


class DropConnection(Response):
    """An ASGI response that answers nothing: the client sees the connection close.

    The sandbox's entry point puts the connection's asyncio transport in the scope
    (uvicorn's ``send`` is a bound method of an object holding it); aborting it closes
    the socket before any byte of an answer, and uvicorn, seeing the client gone, sends
    nothing either.  httpx then raises ``RemoteProtocolError("Server disconnected without
    sending a response.")``.  Should the transport not be reachable (another server), it
    falls back to sending a status line promising a body and raising, which makes the
    server close the connection; the client then fails reading the body.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await drop_connection(scope, send)


async def drop_connection(scope: Scope, send: Send) -> None:
    """Close the connection of ``scope`` without a (complete) answer."""
    transport: Any = scope.get(TRANSPORT_KEY)
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0)  # let the server see the connection lost before we return
        return
    await send(
        {"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"1")]}
    )
    raise ConnectionDropped("sandbox dropped the connection on purpose")
