"""The whole life of batches, as seeded random schedules against the sandbox over loopback.

Each schedule starts with an account holding a random part of a few numbers, then runs
one or two batches on top of each other (``run`` with ``--on-existing skip`` or
``update``, or ``update``), each with injected faults (500s, resets, answers dropped after
the write, answers later than the timeout), crashes part-way (``on_row`` raising, so the
run stops with rows in flight), ``--resume`` with edited rows; then undoes them, the
newest first, each undo also faulted, crashed and resumed, and then undone once more.

After every step (docs/contract.md, "A batch is a ledger"):

- no row is ``imported`` whose number the account held before its batch, and every
  ``already_exists``/``updated`` row's number was there before it (proof of creation);
- a finished step's ``imported`` and ``updated`` numbers are in the account, as the
  ledger says;
- an undo never deletes a number that existed before its batch;
- once an undo has ended with every row put back, the account holds exactly what it held
  before the batch (trunk credentials aside, which the API never returns), and a second
  undo of the same batch sends nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulk_import import retry
from bulk_import.models import RowResult
from bulk_import.runner import RunOptions, run_import
from bulk_import.sandbox import SandboxConfig, SandboxServer
from bulk_import.sandbox.faults import FaultDice

from support import API_KEY, PASSWORD, number

SCHEDULES = 200
NUMBERS = [number(900 + i) for i in range(6)]
CREDENTIALS = ("trunkUsername", "trunkPassword")
#: The faults a step may meet (late answers come after the run's timeout).
FAULTS: list[dict[str, Any]] = [
    {},
    {"fail_rate": 0.25},
    {"reset_rate": 0.2},
    {"drop_after_store_rate": 0.3},
    {"late_rate": 0.2, "late_ms": 250},
    {"fail_rate": 0.1, "reset_rate": 0.1, "drop_after_store_rate": 0.1, "late_rate": 0.05},
]
TIMEOUT = 0.15


class Crash(Exception):
    """Stops a run part-way, with rows in flight (what a kill would leave unfinished)."""


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(api_key=API_KEY, late_ms=250)) as served:
        yield served


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait milliseconds, not seconds: the schedules test decisions, not pacing."""
    quick = functools.partial(retry.RetryPolicy, base_delay=0.001, max_delay=0.004, jitter=0.0)
    monkeypatch.setattr(retry, "RetryPolicy", quick)


def _visible(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: {k: v for k, v in r.items() if k not in CREDENTIALS} for n, r in records.items()}


class Life:
    """One schedule: the account, the batches, the checks."""

    def __init__(self, server: SandboxServer, tmp: Path, seed: int) -> None:
        self.server = server
        self.state = server.state
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.seed = seed
        self.state.reset()
        for i, n in enumerate(NUMBERS):
            if self.rng.random() < 0.4:
                self.state.records[n] = {
                    "sipPhoneNumber": n,
                    "inboundAgentId": None,
                    "outboundAgentId": None,
                    "outboundPhoneNumber": None,
                    "active": True,
                    "terminationSipURI": "pre.example",
                    "friendlyName": f"Pre {i}",
                }

    # -- steps ------------------------------------------------------------------------

    def faults(self) -> None:
        rates = self.rng.choice(FAULTS)
        config = SandboxConfig(api_key=API_KEY, seed=self.rng.randrange(10**6), **rates)
        self.state.dice = FaultDice(config)

    def quiet(self) -> None:
        self.state.dice = FaultDice(SandboxConfig(api_key=API_KEY))

    def step(self, opts: RunOptions) -> tuple[int | None, list[RowResult]]:
        """One run of ``opts``, crashed part-way now and then: its exit code (None when it
        crashed) and the rows it finished."""
        crash_after = self.rng.randrange(4) if self.rng.random() < 0.3 else None
        seen: list[RowResult] = []

        def on_row(result: RowResult) -> None:
            seen.append(result)
            if crash_after is not None and len(seen) > crash_after:
                raise Crash

        try:
            summary = run_import(dataclasses.replace(opts, on_row=on_row))
        except Crash:
            return None, seen
        return summary.exit_code, seen

    def until_done(self, opts: RunOptions, batch: Batch | None = None) -> None:
        """Run ``opts``, then ``--resume`` it until no row is left failed or not attempted
        (the faults fade out after a few tries)."""
        for attempt in range(12):
            if attempt >= 4:
                self.quiet()
            else:
                self.faults()
            code, _rows = self.step(dataclasses.replace(opts, resume=opts.resume or attempt > 0))
            self.check_results(opts, batch)
            if code is not None and self.settled(opts.results_path):
                return
        raise AssertionError(f"seed {self.seed}: {opts.command} never finished")

    @staticmethod
    def settled(path: Path) -> bool:
        with path.open(newline="", encoding="utf-8") as f:
            return all(r["status"] not in ("failed", "not_attempted") for r in csv.DictReader(f))

    # -- a batch ----------------------------------------------------------------------

    def batch(self, k: int) -> Batch:
        kind = self.rng.choice(["run", "run-update", "update"])
        chosen = [n for n in NUMBERS if self.rng.random() < 0.7] or [NUMBERS[0]]
        file = self.tmp / f"b{k}.csv"
        batch = Batch(k, kind, file, self.tmp / f"b{k}.results.csv", chosen, self.state)
        batch.write(self.rng)
        return batch

    def options(self, batch: Batch, **extra: Any) -> RunOptions:
        return RunOptions(
            file=batch.file,
            output=batch.results,
            base_url=self.server.url,
            api_key=API_KEY,
            concurrency=3,
            max_attempts=4,
            timeout=TIMEOUT,
            command="update" if batch.kind == "update" else "run",
            on_existing="update" if batch.kind == "run-update" else "skip",
            **extra,
        )

    def run_batch(self, batch: Batch) -> None:
        opts = self.options(batch)
        self.faults()
        code, _rows = self.step(opts)
        self.check_results(opts, batch)
        if self.rng.random() < 0.4:  # edited between the run and its resume
            batch.write(self.rng, edit=True)
        if code is None or not self.settled(opts.results_path):
            self.until_done(dataclasses.replace(opts, resume=True), batch)
        self.check_results(opts, batch, finished=True)

    def undo(self, batch: Batch) -> None:
        undo_out = self.tmp / f"b{batch.k}.undo.csv"
        opts = RunOptions(
            file=batch.results,
            output=undo_out,
            base_url=self.server.url,
            api_key=API_KEY,
            concurrency=3,
            max_attempts=4,
            timeout=TIMEOUT,
            command="undo",
            yes=True,
        )
        deleted_before = dict(self.state.deleted)
        self.until_done(opts)
        assert self.settled(undo_out)
        deleted = {n for n, c in self.state.deleted.items() if c > deleted_before.get(n, 0)}
        assert not deleted & set(batch.before), (
            f"seed {self.seed}: undo deleted a number there before"
        )
        assert _visible(self.state.records) == _visible(batch.before), (
            f"seed {self.seed}: undo of batch {batch.k} ({batch.kind}) left the account unlike "
            "before it"
        )
        writes = self.state.writes
        self.quiet()
        again = run_import(opts)
        assert again.exit_code == 0
        assert set(k for k, v in again.counts.items() if v) <= {"already_undone"}
        assert self.state.writes == writes, f"seed {self.seed}: a second undo sent a write"

    # -- checks -----------------------------------------------------------------------

    def check_results(
        self, opts: RunOptions, batch: Batch | None = None, *, finished: bool = False
    ) -> None:
        path = opts.results_path
        if batch is None or not path.exists() or opts.command == "undo":
            return
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            n, status = row["phone_number"], row["status"]
            there = n in batch.before
            where = f"seed {self.seed}: batch {batch.k} ({batch.kind}) row {n} {status}"
            if status == "imported":
                assert not there, f"{where}: imported, but it was there before"
            if status in ("already_exists", "updated", "unchanged"):
                assert there, f"{where}: but it was not there before"
            if status == "not_found":
                assert not there, where
            if finished and status in ("imported", "updated", "already_exists"):
                assert n in self.state.records, f"{where}: not in the account"


@dataclasses.dataclass
class Batch:
    k: int
    kind: str
    file: Path
    results: Path
    numbers: list[str]
    state: Any
    before: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.before = {n: dict(r) for n, r in self.state.records.items()}

    def write(self, rng: random.Random, *, edit: bool = False) -> None:
        tag = f"B{self.k}{'e' if edit else ''}"
        with self.file.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            if self.kind == "update":
                out.writerow(["phoneNumber", "friendlyName"])
                for n in self.numbers:
                    out.writerow([n, f"{tag} {n[-3:]}" if not edit or rng.random() < 0.5 else n])
                return
            out.writerow(
                [
                    "phoneNumber",
                    "trunkUsername",
                    "trunkPassword",
                    "terminationSipURI",
                    "friendlyName",
                ]
            )
            for n in self.numbers:
                name = f"{tag} {n[-3:]}" if not edit or rng.random() < 0.5 else f"B{self.k} {n}"
                out.writerow([n, "user", PASSWORD, "sip.telnyx.com", name])


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_a_batchs_whole_life_keeps_the_ledger(
    server: SandboxServer, tmp_path: Path, seed: int
) -> None:
    life = Life(server, tmp_path, seed)
    batches: list[Batch] = []
    for k in range(life.rng.choice([1, 1, 2])):
        batch = life.batch(k)
        life.run_batch(batch)
        batches.append(batch)
    for batch in reversed(batches):
        life.undo(batch)


# -- the same life with real kills: kill -9 of the CLI at a random moment ---------------------


def _kill_at_random(args: list[str], server: SandboxServer, rng: random.Random) -> None:
    """Start ``bulk-import ARGS`` and kill -9 it once it has sent a random number of
    requests (or let it end, if it ends first)."""
    import os
    import signal
    import subprocess
    import time

    from support import cli_command, cli_env

    target = server.state.requests + rng.randrange(1, 25)
    proc = subprocess.Popen(
        cli_command(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while proc.poll() is None and server.state.requests < target and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("seed", range(6))
def test_kill_9_of_run_and_undo_then_resume_puts_the_account_back(
    sandbox_factory: Any, tmp_path: Path, seed: int
) -> None:
    from support import run_cli

    server = sandbox_factory(api_key=API_KEY, latency_ms=5)
    life = Life(server, tmp_path, 1000 + seed)
    life.faults()
    batch = life.batch(0)
    base = ["--base-url", server.url, "--no-progress", "--concurrency", "4", "--rate", "200"]
    mode = ["--on-existing", "update"] if batch.kind == "run-update" else []
    command = "update" if batch.kind == "update" else "run"
    args = [command, str(batch.file), "--output", str(batch.results), *base, *mode]
    _kill_at_random(args, server, life.rng)
    life.quiet()
    done = run_cli(*args, "--resume")
    assert done.code in (0, 1), done.stderr
    assert Life.settled(batch.results), done.stderr
    life.check_results(life.options(batch), batch, finished=True)
    undo = ["undo", str(batch.results), "--yes", *base]
    life.faults()
    _kill_at_random(undo, server, life.rng)
    life.quiet()
    undone = run_cli(*undo, "--resume")
    assert undone.code == 0, undone.stderr
    assert _visible(server.state.records) == _visible(batch.before), f"seed {1000 + seed}"
