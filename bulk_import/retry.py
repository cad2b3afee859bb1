"""When to send a request again, and how long to wait first.

``RetryPolicy`` is a small frozen value; ``await policy.run(attempt)`` runs one request's
attempts (the decisions of ``tenacity.AsyncRetrying`` with ``stop_after_attempt``,
``retry_if_exception`` and ``reraise=True``, which ``tests/test_retry.py`` holds it to,
without tenacity's objects for each attempt):

- stop after ``max_attempts`` attempts (the first one included);
- retry only transient failures: ``Transient`` (a 429 or 500/502/503/504 answer, raised
  by the caller) and ``ConnectionFailed``; anything else (an answer such as 400, 404,
  409, 422, or a bug) ends the attempts at once;
- wait the failure's Retry-After when it has one (capped at ``max_retry_after``), else
  exponential backoff ``base_delay * 2**(n-1)`` plus ``jitter * random()``, capped at
  ``max_delay``;
- ``reraise=True``: when attempts run out, the last failure itself is raised.

``sleep`` and ``random`` are injected so that tests check exact waits without waiting.
"""

from __future__ import annotations

import asyncio
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .defaults import MAX_ATTEMPTS
from .errors import ConnectionFailed

T = TypeVar("T")


class Transient(Exception):
    """A transient HTTP answer (429, 500/502/503/504), raised to have it retried."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


def is_transient(exc: BaseException) -> bool:
    """True for a failure worth another attempt."""
    return isinstance(exc, Transient | ConnectionFailed)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and the waits between them."""

    max_attempts: int = MAX_ATTEMPTS
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(
        default=asyncio.sleep, repr=False, compare=False
    )
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, failure: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        retry_after: object = getattr(failure, "retry_after", None)
        if isinstance(retry_after, int | float):
            return min(max(0.0, float(retry_after)), self.max_retry_after)
        backoff = self.base_delay * 2.0 ** (attempt - 1) + self.jitter * self.random()
        return min(backoff, self.max_delay)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> T:
        """``await attempt()`` under this policy (``sleep`` overrides the policy's): a
        request's first attempt, which nearly always is its last, costs a call.  The
        decisions are tenacity's, in its order: after a transient failure the wait is
        worked out (``delay``, drawing ``random``) before the attempts are counted, and when
        they have run out the failure itself is raised.
        """
        pause = sleep or self.sleep
        number = 1
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                wait = self.delay(number, exc)
                if number >= self.max_attempts:
                    raise
            await pause(wait)
            number += 1
