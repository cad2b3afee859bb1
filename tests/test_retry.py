"""RetryPolicy: exact waits (fake sleep, fixed jitter), what is retried, what is raised;
its decisions held to tenacity's (the library it replaced, kept here as the oracle)."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bulk_import.errors import ConnectionFailed
from bulk_import.retry import RetryPolicy, Transient, is_transient


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 9))


def run_with(
    policy: RetryPolicy, failures: list[BaseException], counted: list[int] | None = None
) -> tuple[int, str]:
    """``policy.run`` until success; the first attempts fail with ``failures`` in turn."""
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if counted is not None:
            counted.append(calls)
        if calls <= len(failures):
            raise failures[calls - 1]
        return "ok"

    result = asyncio.run(policy.run(attempt))
    return calls, result


def tenacity_with(
    policy: RetryPolicy, failures: list[BaseException], counted: list[int] | None = None
) -> tuple[int, str]:
    """The same attempts under tenacity, configured as the policy's rules say (stop after
    ``max_attempts``, retry only ``is_transient``, the policy's ``delay`` as the wait,
    ``reraise``): the oracle ``policy.run`` is held to."""
    calls = 0

    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        return policy.delay(state.attempt_number, failure)

    async def go() -> str:
        nonlocal calls
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait,
            retry=retry_if_exception(is_transient),
            reraise=True,
            sleep=policy.sleep,
        )
        async for attempt in retrying:
            with attempt:
                calls += 1
                if counted is not None:
                    counted.append(calls)
                if calls <= len(failures):
                    raise failures[calls - 1]
                return "ok"
        raise AssertionError("unreachable")

    result = asyncio.run(go())
    return calls, result


def test_backoff_is_exponential_plus_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0, jitter=0.5, random=lambda: 0.5)
    assert [policy.delay(n) for n in range(1, 6)] == [0.75, 1.25, 2.25, 4.25, 5.0]


def test_retry_after_is_waited_instead_of_the_backoff_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0, jitter=0.0)
    assert policy.delay(1, Transient("slow down", status=429, retry_after=7.0)) == 7.0
    assert policy.delay(1, Transient("slow down", status=429, retry_after=600.0)) == 60.0
    assert policy.delay(3, Transient("boom", status=503)) == 2.0  # no Retry-After: backoff


def test_connection_failures_and_transient_answers_are_retried_with_exact_waits() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(jitter=0.0, sleep=sleeps)
    failures: list[BaseException] = [
        ConnectionFailed("reset", maybe_sent=True),
        Transient("HTTP 503", status=503),
        Transient("HTTP 429", status=429, retry_after=3.0),
    ]
    assert run_with(policy, failures) == (4, "ok")
    assert sleeps.waits == [0.5, 1.0, 3.0]


def test_seeded_jitter_is_reproducible() -> None:
    import random

    waits = []
    for _ in range(2):
        sleeps = Sleeps()
        policy = RetryPolicy(sleep=sleeps, random=random.Random(42).random)
        run_with(policy, [ConnectionFailed("x", maybe_sent=False)] * 2)
        waits.append(sleeps.waits)
    assert waits[0] == waits[1]
    assert 0.5 <= waits[0][0] <= 1.0
    assert 1.0 <= waits[0][1] <= 1.5


def test_other_errors_are_not_retried() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(sleep=sleeps)
    with pytest.raises(ValueError, match="a bug"):
        run_with(policy, [ValueError("a bug")])
    assert sleeps.waits == []


def test_the_last_failure_itself_is_raised_when_attempts_run_out() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=3, jitter=0.0, sleep=sleeps)
    last = Transient("HTTP 503 #3", status=503)
    with pytest.raises(Transient) as raised:
        run_with(policy, [Transient("#1", status=503), Transient("#2", status=503), last])
    assert raised.value is last
    assert sleeps.waits == [0.5, 1.0]


def test_a_sleep_given_to_run_overrides_the_policys() -> None:
    mine, policys = Sleeps(), Sleeps()
    policy = RetryPolicy(jitter=0.0, sleep=policys)
    calls = 0

    async def attempt() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionFailed("x", maybe_sent=False)
        return calls

    assert asyncio.run(policy.run(attempt, sleep=mine)) == 2
    assert (mine.waits, policys.waits) == ([0.5], [])


def test_is_transient() -> None:
    assert is_transient(Transient("x", status=502))
    assert is_transient(ConnectionFailed("x", maybe_sent=True))
    assert not is_transient(ValueError())


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    "failures",
    [
        [],
        [Transient("HTTP 503", status=503)],
        [ConnectionFailed("reset", maybe_sent=True), Transient("slow", status=429, retry_after=2)],
        [Transient("HTTP 503", status=503)] * 5,  # attempts run out: the last one is raised
        [Transient("HTTP 503", status=503), ValueError("a bug")],  # not retried
    ],
)
def test_run_decides_as_tenacitys_retrying_does(failures: list[BaseException]) -> None:
    """``policy.run`` (every request's loop) against tenacity: the same attempts, the
    same waits, the same draws of ``random`` (one after every transient failure, the last
    one included, as tenacity works out the wait before it counts the attempts), the same
    outcome."""

    def policy() -> tuple[RetryPolicy, Sleeps, list[int]]:
        draws: list[int] = []
        sleeps = Sleeps()

        def random() -> float:
            draws.append(1)
            return 0.25

        return RetryPolicy(max_attempts=5, random=random, sleep=sleeps), sleeps, draws

    def outcome(result: object) -> object:
        return (type(result), str(result)) if isinstance(result, BaseException) else result

    old, old_sleeps, old_draws = policy()
    old_calls: list[int] = []
    try:
        old_result: object = tenacity_with(old, failures, old_calls)
    except Exception as exc:
        old_result = exc

    new, new_sleeps, new_draws = policy()
    new_calls: list[int] = []
    try:
        new_result: object = run_with(new, failures, new_calls)
    except Exception as exc:
        new_result = exc
    assert outcome(new_result) == outcome(old_result)
    assert new_calls == old_calls  # the same number of attempts, failed runs included
    assert new_sleeps.waits == old_sleeps.waits
    assert len(new_draws) == len(old_draws)
