"""Shared test helpers: input files, running the CLI, scanning outputs for secrets."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "Pw-9f8e7d6c5b4a"  # distinctive, so a scan for it cannot hit by chance
API_KEY = "sk-test-3b9c1d2e7f"

HEADER = [
    "Phone Number",
    "Trunk Username",
    "Trunk Password",
    "Termination SIP URI",
    "Friendly Name",
    "Inbound Agent ID",
]


def number(i: int) -> str:
    """A distinct valid E.164 number for index ``i``."""
    return f"+1415{5000000 + i:07d}"


def write_numbers(
    path: Path,
    count: int,
    *,
    start: int = 0,
    friendly: str = "Line",
    extra_rows: Sequence[Sequence[str]] = (),
) -> list[str]:
    """A CSV of ``count`` valid rows (plus ``extra_rows``); returns the numbers."""
    numbers = [number(start + i) for i in range(count)]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i, n in enumerate(numbers):
            writer.writerow([n, f"user{i}", PASSWORD, "sip.telnyx.com", f"{friendly} {i}", ""])
        writer.writerows(extra_rows)
    return numbers


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass
class Completed:
    code: int
    stdout: str
    stderr: str


def cli_env(api_key: str | None = API_KEY, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMAMIND_")}
    if api_key is not None:
        env["SIGMAMIND_API_KEY"] = api_key
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bulk_import", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Completed:
    """Run ``bulk-import ARGS`` in a child process, as a user or cron would."""
    proc = subprocess.run(
        cli_command(*args),
        env=cli_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def assert_no_secrets(*texts: str, secrets: Sequence[str] = (PASSWORD, API_KEY)) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked: {secret[:3]}… in output"


def files_text(*paths: Path) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths if p.exists()]


class FakeTime:
    """A clock that only moves when something sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds
        await asyncio.sleep(0)


#: Every fault the sandbox injects, at once: 10 % 500s, 5 % dropped before storing,
#: 5 % stored then dropped, 2 % stored and answered 1.5 s late
#: (``sandbox_factory(**EVERY_FAULT, seed=...)``).
EVERY_FAULT: dict[str, float] = {
    "fail_rate": 0.10,
    "reset_rate": 0.05,
    "drop_after_store_rate": 0.05,
    "late_rate": 0.02,
    "late_ms": 1500,
}
