"""The sandbox's rate styles (``sandbox/limits.py``): what each enforces and announces."""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import pytest

from bulk_import.api import parse_rate_limit
from bulk_import.sandbox.cli import add_arguments
from bulk_import.sandbox.limits import RateLimit
from bulk_import.sandbox.settings import SandboxConfig


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limit(clock: Clock, **config: Any) -> RateLimit:
    return RateLimit(SandboxConfig(**config), clock=clock, wall_clock=lambda: 1_700_000_000.0)


def headers(lim: RateLimit, throttled: bool = False) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in lim.headers(throttled=throttled)}


def test_bucket_sends_whole_tokens_and_whole_seconds_rounded_up() -> None:
    clock = Clock()
    lim = limit(clock, rate=50, burst=5)
    assert [lim.take() for _ in range(5)] == [0.0] * 5
    assert lim.take() == pytest.approx(0.02)  # empty: one token in 1/50 s
    assert headers(lim, True) == {
        "x-ratelimit-limit": "50",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1",  # 0.1 s until full, rounded up
    }
    clock.now += 0.05
    assert headers(lim)["x-ratelimit-remaining"] == "2"  # it refills continuously
    decimal = limit(clock, rate=50, burst=5, decimal_reset=True)
    decimal.take()
    assert headers(decimal)["x-ratelimit-reset"] == "0.020"


def test_window_counts_down_then_starts_again_whole() -> None:
    clock = Clock()
    lim = limit(clock, rate=10, rate_style="window", window=60)  # 600 per 60 s
    for _ in range(600):
        assert lim.take() == 0.0
    clock.now += 15.2
    assert lim.take() == pytest.approx(44.8)
    assert headers(lim, True) == {
        "x-ratelimit-limit": "600",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "45",
    }
    clock.now += 45
    assert lim.take() == 0.0  # a new window from this request on
    assert headers(lim)["x-ratelimit-remaining"] == "599"
    assert headers(lim)["x-ratelimit-reset"] == "60"


def test_window_reset_as_a_unix_time() -> None:
    clock = Clock()
    lim = limit(clock, rate=10, rate_style="window", window=60, reset_epoch=True)
    lim.take()
    clock.now += 10.5
    assert headers(lim)["x-ratelimit-reset"] == str(1_700_000_000 + 50)  # 49.5 rounded up


def test_ietf_policy_and_combined_field_or_the_older_trio() -> None:
    clock = Clock()
    lim = limit(clock, rate=100, rate_style="ietf", window=60)
    lim.take()
    assert headers(lim) == {
        "ratelimit-policy": "6000;w=60",
        "ratelimit": "limit=6000, remaining=9, reset=1",
    }
    trio = limit(clock, rate=100, rate_style="ietf", ietf_trio=True)
    trio.take()
    assert headers(trio) == {
        "ratelimit-limit": "100",
        "ratelimit-remaining": "9",
        "ratelimit-reset": "1",
    }


def test_ietf_structured_form_lists_a_burst_and_a_looser_daily_policy() -> None:
    clock = Clock()
    lim = limit(clock, rate=50, rate_style="ietf", window=2, ietf_form="structured")
    lim.take()
    clock.now += 3600.25
    assert headers(lim) == {
        "ratelimit-policy": '"burst";q=100;w=2, "daily";q=43200000;w=86400',
        "ratelimit": '"burst";r=5;t=0, "daily";r=43199999;t=82800',
    }
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--rate", "5", "--rate-style", "ietf", "--ietf-form", "trio"])
    options = {k: v for k, v in vars(args).items() if k in SandboxConfig.__dataclass_fields__}
    assert SandboxConfig(**options).effective_ietf_form() == "trio"
    with pytest.raises(ValueError, match="ietf_form"):
        SandboxConfig(rate=1, ietf_form="rfc")  # type: ignore[arg-type]


def test_over_loopback_the_structured_form_is_parsed_as_its_burst_policy(
    sandbox_factory: Any,
) -> None:
    sb = sandbox_factory(api_key="k", rate=50, rate_style="ietf", window=2, ietf_form="structured")
    with httpx.Client(base_url=sb.url) as client:
        answer = client.get("/v1/phone-numbers", headers={"X-API-Key": "k"})
    info = parse_rate_limit(answer.headers)
    assert info is not None
    assert (info.limit, info.window, info.per_second) == (100, 2, 50)
    assert info.remaining is not None
    assert info.remaining <= 5


def test_silent_and_wrong_headers() -> None:
    clock = Clock()
    silent = limit(clock, rate=100, rate_style="silent")
    silent.take()
    assert headers(silent, True) == {}
    wrong = limit(clock, rate=100, announce_rate=200)
    wrong.take()
    assert headers(wrong)["x-ratelimit-limit"] == "200"
    assert wrong.enforcer.take() == 0.0  # still 100/s, a bucket of 10


def test_rate_headers_none_silences_any_style() -> None:
    lim = limit(Clock(), rate=10, rate_style="window", rate_headers="none")
    lim.take()
    assert headers(lim) == {}


def test_command_line_options_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--rate", "10", "--rate-style", "window", "--window", "30", "--announce-rate", "20"]
    )
    options = {k: v for k, v in vars(args).items() if k in SandboxConfig.__dataclass_fields__}
    config = SandboxConfig(**options)
    assert (config.rate_style, config.window, config.announce_rate) == ("window", 30, 20)
    with pytest.raises(ValueError, match="window"):
        SandboxConfig(rate=1, window=0)
    with pytest.raises(ValueError, match="rate_style"):
        SandboxConfig(rate=1, rate_style="leaky")  # type: ignore[arg-type]


def test_over_loopback_a_window_answers_429_until_its_end(sandbox_factory: Any) -> None:
    sb = sandbox_factory(rate=1, rate_style="window", window=3)  # 3 per 3 s
    with httpx.Client(base_url=sb.url, headers={"X-API-Key": "sandbox-key"}) as c:
        answers = [c.get("/v1/phone-numbers") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[3].headers["Retry-After"] == answers[3].headers["X-RateLimit-Reset"] == "3"
    with httpx.Client(base_url=sb.url, headers={"X-API-Key": "sandbox-key"}) as c:
        assert c.get("/v1/phone-numbers").status_code == 429  # the same run of 429s
        assert c.get("/_sandbox/stats").json()["throttle_episodes"] == 1
