"""Benchmarks of bulk-import against the sandbox (the targets: benchmarks/README.md).

    .venv/bin/python benchmarks/run.py                 # every scenario, full sizes (5-10 min)
    .venv/bin/python benchmarks/run.py --quick         # small sizes: a smoke check (<1 min)
    .venv/bin/python benchmarks/run.py --only known-limit --only dry-run-1m

Every scenario starts the sandbox (``python -m bulk_import.sandbox``) in its own process,
so the emulator's CPU is not the tool's, and runs the CLI as a child process: wall time
from spawn to exit, peak RSS and CPU time from ``os.wait4``'s rusage, the sandbox's CPU
time from psutil, 429s and request counts from ``GET /_sandbox/stats``.  The input files
go to ``benchmarks/out/`` (git-ignored).  Prints a markdown table, with PASS/FAIL against
the issue's targets and the commands to reproduce each row, and writes it to
``benchmarks/out/results.md`` (and ``results.json``).  Exit status 0 when every target
is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the dev extras

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # benchmarks/inputs.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
API_KEY = "bench-key"  # a test value the sandbox accepts, not a secret
SHOWN_PORT = 8765  # the port used in the printed commands to reproduce a row

# Targets (benchmarks/README.md).
KNOWN_LIMIT_RATIO = 1.03
UNKNOWN_LIMIT_RATIO = 1.15
UNKNOWN_LIMIT_429_SHARE = 0.03
WINDOW_RATIO = 1.05
WINDOW_429_SHARE = 0.01
WRONG_RATIO = 1.20
STARTUP_S = 0.6
STARTUP_RUNS = 5
MAX_FAILURES = 50
NO_LIMIT_ROWS_PER_S = 500.0
NO_LIMIT_VS_BASELINE = 25.0
DRY_RUN_WALL_S = 3.0
DRY_RUN_RSS_MB = 300.0
MEMORY_RSS_RATIO = 1.3
SENDING_ROWS_PER_S = 1000.0  # 78 % of 64 requests in flight / 50 ms
SENDING_CPU_MS_PER_ROW = 0.5

SANDBOX_RATE = 100.0
# Short batches (benchmarks/README.md, "Short batches").
SHORT_RATE = 50.0
SHORT_ROWS = 500
SHORT_RUNS = 3
SHORT_CONCURRENCY = 16
SHORT_ANNOUNCED_RATIO = 1.10
SHORT_429_SHARE = 0.01
SHORT_FOUND_RATIO = 1.25
SHORT_FOUND_429_SHARE = 0.03
SHORT_EPISODES = 2
LONG_SILENT_RATIO = 1.05
SANDBOX_LATENCY_MS = 50.0


@dataclass(frozen=True)
class Sizes:
    """Row counts of each scenario (``--quick`` shrinks them)."""

    limited: int = 2_000  # each limit style, known and unknown
    window: int = 1_500  # the fixed-window style (600 per 60 s)
    max_failures: int = 10_000
    no_limit: int = 10_000
    sending: int = 3_000
    baseline: int = 200
    dry_run: int = 1_000_000
    memory_small: int = 10_000
    memory_large: int = 100_000


QUICK = Sizes(
    limited=200,
    window=300,
    max_failures=1_000,
    no_limit=1_000,
    sending=500,
    baseline=40,
    dry_run=10_000,
    memory_small=500,
    memory_large=2_000,
)


@dataclass
class Result:
    """One row of the results table."""

    scenario: str
    rows: int
    wall_s: float
    target: str
    passed: bool | None  # None: no target of its own (a reference for another row)
    rows_per_s: float | None = None
    ideal_s: float | None = None
    requests: int | None = None
    throttled: int | None = None  # 429 answers counted by the sandbox
    peak_rss_mb: float | None = None
    tool_s: float | None = None  # the tool's own duration_seconds (no interpreter start-up)
    span_s: float | None = None  # the sandbox's first request to its last answer
    startup_s: float | None = None  # process spawned to the sandbox's first request
    episodes: int | None = None  # runs of 429s the sandbox counted (throttle_episodes)
    tool_cpu_s: float | None = None
    sandbox_cpu_s: float | None = None
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    file: str = ""  # the input file, as shown

    @property
    def cpu_ms_per_row(self) -> float | None:
        """The tool's CPU time (user + system, start-up included) per row, in ms."""
        if self.tool_cpu_s is None or not self.rows:
            return None
        return self.tool_cpu_s / self.rows * 1000

    @property
    def ratio(self) -> float | None:
        """Span (or wall, without a sandbox) over the ideal."""
        if self.ideal_s is None:
            return None
        return (self.span_s if self.span_s is not None else self.wall_s) / self.ideal_s


@dataclass(frozen=True)
class Measured:
    """A finished child process."""

    exit_code: int
    wall_s: float
    spawned: float  # time.monotonic() just before the process was spawned
    peak_rss_mb: float
    cpu_s: float
    stdout: str
    stderr: str


# -- processes --------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def measure(argv: Sequence[str], *, env: dict[str, str], log: Path, timeout: float) -> Measured:
    """Run ``argv`` to completion; wall time, peak RSS and CPU time from ``os.wait4``.

    The child runs in its own session (a Ctrl-C in the terminal reaches only this script,
    which then stops the child with SIGINT, as a user would, and SIGKILL if it hangs).
    """
    out_path, err_path = log.with_suffix(".stdout"), log.with_suffix(".stderr")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        spawned = time.monotonic()
        proc = subprocess.Popen(
            list(argv), cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
        reaped = threading.Event()

        def kill() -> None:
            if not reaped.is_set():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                kill()
                proc.wait()
            raise
        finally:
            reaped.set()
            timer.cancel()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        exit_code=proc.returncode,
        wall_s=wall,
        spawned=spawned,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        cpu_s=usage.ru_utime + usage.ru_stime,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


class Sandbox:
    """``python -m bulk_import.sandbox`` in its own process, on a free port."""

    def __init__(
        self,
        python: str,
        name: str,
        *,
        rate: float | None = None,
        latency_ms: float = 0.0,
        options: Sequence[str] = (),
    ) -> None:
        self.python = python
        self.name = name
        self.options: list[str] = ["--api-key", API_KEY]
        if rate is not None:
            self.options += ["--rate", f"{rate:g}"]
        self.options += list(options)
        if latency_ms:
            self.options += ["--latency-ms", f"{latency_ms:g}"]
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self._client = httpx.Client(timeout=30)

    @property
    def command(self) -> str:
        """The command that starts the same sandbox (on ``SHOWN_PORT``)."""
        argv = [shown(self.python), "-m", "bulk_import.sandbox", "--port", str(SHOWN_PORT)]
        return shlex.join([*argv, *self.options])

    def start(self, timeout: float = 30.0) -> Self:
        argv = [self.python, "-m", "bulk_import.sandbox", "--port", "0", *self.options]
        err = (OUT / "logs" / f"sandbox-{self.name}.stderr").open("wb")
        with err:
            self._proc = subprocess.Popen(
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, start_new_session=True
            )
        assert self._proc.stdout is not None
        try:
            ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
            line = self._proc.stdout.readline().decode().strip() if ready else ""
        except BaseException:  # Ctrl-C while it starts: stop it all the same
            self.stop()
            raise
        prefix = "sandbox listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the sandbox did not start (said {line!r}); see {err.name}")
        self.url = line.removeprefix(prefix)
        self._ps = psutil.Process(self._proc.pid)
        return self

    def cpu_s(self) -> float:
        """CPU time (user + system) the sandbox has used so far."""
        assert self._ps is not None
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def stats(self) -> dict[str, Any]:
        response = self._client.get(f"{self.url}/_sandbox/stats")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def reset(self) -> None:
        self._client.post(f"{self.url}/_sandbox/reset").raise_for_status()

    def stop(self) -> None:
        self._client.close()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- inputs and commands ----------------------------------------------------------------


#: Which input the scenarios read: ``realistic`` (all 8 columns, 42 countries) or ``easy``
#: (release 1's 5 columns of +1 numbers); ``--input`` sets it (benchmarks/inputs.py).
INPUT = ["realistic"]


def make_csv(rows: int, kind: str | None = None) -> Path:
    """The input file of ``rows`` rows (``--input``'s kind unless given), written once."""
    return inputs.make_csv(rows, kind or INPUT[0])


def shown(path: str | Path) -> str:
    """A path as the reader types it: relative to the repository when inside it."""
    text = str(path)
    if text.startswith(f"{ROOT}{os.sep}"):
        return text.removeprefix(f"{ROOT}{os.sep}")
    return text


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMAMIND_")}
    env["SIGMAMIND_API_KEY"] = API_KEY
    return env


class Runner:
    """Runs the CLI and the baseline, and turns a run into a ``Result``."""

    def __init__(self, python: str, timeout: float) -> None:
        self.python = python
        self.timeout = timeout

    def tool_argv(
        self,
        name: str,
        file: Path,
        base_url: str | None,
        *,
        concurrency: int | None = None,
        rate: float | None = None,
        dry_run: bool = False,
        extra: Sequence[str] = (),
    ) -> tuple[list[str], list[str]]:
        """The argv to run, and the same for display (relative paths, ``SHOWN_PORT``)."""
        options: list[str] = []
        if base_url is not None:
            options += ["--base-url", base_url]
        if concurrency is not None:
            options += ["--concurrency", str(concurrency)]
        if rate is not None:
            options += ["--rate", f"{rate:g}"]
        if dry_run:
            options.append("--dry-run")
        options += list(extra)
        results, summary = OUT / f"{name}.results.csv", OUT / f"{name}.summary.json"
        options += ["--no-progress", "--output", str(results), "--summary-json", str(summary)]
        argv = [self.python, "-m", "bulk_import", "run", str(file), *options]
        display = [f"http://127.0.0.1:{SHOWN_PORT}" if a == base_url else shown(a) for a in argv]
        return argv, display

    def run_tool(
        self,
        name: str,
        file: Path,
        rows: int,
        sandbox: Sandbox | None,
        *,
        concurrency: int | None = None,
        rate: float | None = None,
        dry_run: bool = False,
        extra: Sequence[str] = (),
        expect_exit: int = 0,
        expect_status: str | None = None,
    ) -> tuple[Result, dict[str, Any]]:
        """Run the CLI once; a ``Result`` (target still to fill in) and its summary JSON."""
        base_url = sandbox.url if sandbox is not None else None
        argv, display = self.tool_argv(
            name, file, base_url, concurrency=concurrency, rate=rate, dry_run=dry_run, extra=extra
        )
        summary_path = OUT / f"{name}.summary.json"
        summary_path.unlink(missing_ok=True)
        say(f"  {name}: {shlex.join(shown(a) for a in argv)}")
        busy_before = busy_cpu_s()
        cpu_before = sandbox.cpu_s() if sandbox is not None else 0.0
        m = measure(argv, env=tool_env(), log=OUT / "logs" / name, timeout=self.timeout)
        result = Result(
            scenario=name,
            rows=rows,
            wall_s=m.wall_s,
            target="",
            passed=None,
            rows_per_s=rows / m.wall_s,
            peak_rss_mb=m.peak_rss_mb,
            tool_cpu_s=m.cpu_s,
            file=shown(file),
        )
        env_prefix = "" if dry_run else f"SIGMAMIND_API_KEY={API_KEY} "
        if sandbox is not None:
            result.sandbox_cpu_s = sandbox.cpu_s() - cpu_before
            result.commands.append(sandbox.command + " &")
        note_others(result, busy_before)
        result.commands.append(env_prefix + shlex.join(display))
        summary: dict[str, Any] = {}
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
        if sandbox is not None:
            stats = sandbox.stats()
            result.requests = int(stats["requests"])
            result.throttled = int(stats["by_status"].get("429", 0))
            if stats.get("first_request") is not None and stats.get("last_answer") is not None:
                result.span_s = float(stats["last_answer"]) - float(stats["first_request"])
                result.startup_s = float(stats["first_request"]) - m.spawned
            held = rows if expect_exit == 0 else 0
            if stats["records"] != held:
                result.notes.append(f"the sandbox holds {stats['records']} numbers, not {held}")
        if "duration_seconds" in summary:
            result.tool_s = float(summary["duration_seconds"])
        if summary.get("settled_rate") is not None:
            result.notes.append(f"the tool settled on {summary['settled_rate']:.1f} req/s")
        expected = expect_status or ("valid" if dry_run else "imported")
        done = summary.get("counts", {}).get(expected)
        if m.exit_code != expect_exit or (expect_exit == 0 and done != rows):
            last = m.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
            result.notes.append(f"BROKEN RUN: exit {m.exit_code}, {done} {expected}: {last[0]}")
        return result, summary

    def run_baseline(self, file: Path, rows: int, sandbox: Sandbox) -> Result:
        """The naive loop (``benchmarks/naive_baseline.py``) against ``sandbox``."""
        script = ROOT / "benchmarks" / "naive_baseline.py"
        argv = [self.python, str(script), str(file), sandbox.url]
        display = [shown(self.python), shown(script), shown(file), f"http://127.0.0.1:{SHOWN_PORT}"]
        say(f"  naive-baseline: {shlex.join(shown(a) for a in argv)}")
        busy_before = busy_cpu_s()
        cpu_before = sandbox.cpu_s()
        m = measure(argv, env=tool_env(), log=OUT / "logs" / "naive-baseline", timeout=self.timeout)
        stats = sandbox.stats()
        result = Result(
            scenario="naive-baseline",
            rows=rows,
            wall_s=m.wall_s,
            target="reference for no-limit",
            passed=None,
            peak_rss_mb=m.peak_rss_mb,
            tool_cpu_s=m.cpu_s,
            file=shown(file),
            sandbox_cpu_s=sandbox.cpu_s() - cpu_before,
            requests=int(stats["requests"]),
            throttled=int(stats["by_status"].get("429", 0)),
            commands=[
                sandbox.command + " &",
                f"SIGMAMIND_API_KEY={API_KEY} " + shlex.join(display),
            ],
        )
        note_others(result, busy_before)
        try:
            report = json.loads(m.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            result.notes.append(f"BROKEN RUN: exit {m.exit_code}: {m.stderr.strip()[-200:]}")
            result.passed = False
            return result
        result.rows_per_s = report["rows"] / report["seconds"]
        result.notes.append(
            f"rows/s from the loop alone ({report['seconds']:.2f} s, no start-up); "
            f"answers {report['by_status']}"
        )
        if report["by_status"] != {"201": rows}:
            result.notes.append("BROKEN RUN: not every answer was 201")
            result.passed = False
        return result


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def note_others(result: Result, busy_before: float) -> None:
    """How much CPU other processes (not the tool, not the sandbox) took during the run."""
    ours = (result.tool_cpu_s or 0.0) + (result.sandbox_cpu_s or 0.0)
    others = max(0.0, busy_cpu_s() - busy_before - ours)
    result.notes.append(f"other processes used {others:.1f} CPU s during the run")


def wait_idle(limit_s: float, busy_share: float = 0.15) -> None:
    """Wait (up to ``limit_s``) until the machine is idle: other work skews the timings."""
    start = time.monotonic()
    busy = psutil.cpu_percent(interval=2.0) / 100
    if busy > busy_share:
        say(f"  the machine is {busy:.0%} busy with other work: waiting up to {limit_s:g} s")
    while busy > busy_share and time.monotonic() - start < limit_s:
        busy = psutil.cpu_percent(interval=2.0) / 100
    if busy > busy_share:
        say(f"  still {busy:.0%} busy with other work: running anyway (see the notes)")


def note_own_ratio(result: Result) -> None:
    """The tool's own duration against the ideal: the ratio without interpreter start-up."""
    if result.tool_s is not None and result.ideal_s:
        result.notes.append(f"tool's own duration / ideal = {result.tool_s / result.ideal_s:.3f}")


def broken(result: Result) -> bool:
    return any(note.startswith("BROKEN RUN") for note in result.notes)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """One way an API enforces and announces its limit (the sandbox's ``--rate-style``)."""

    name: str
    sandbox: tuple[str, ...]  # the sandbox's options besides --rate and --latency-ms
    rate: float = SANDBOX_RATE  # the real limit, per second
    window: float | None = None  # a fixed window's length (its quota: rate * window)
    wrong: bool = False  # headers announce another limit than the one enforced


STYLES = (
    Style("silent", ("--rate-style", "silent")),
    Style("bucket", ("--rate-style", "bucket")),
    Style("ietf", ("--rate-style", "ietf")),
    Style("window", ("--rate-style", "window", "--window", "60"), rate=10.0, window=60.0),
    Style("wrong-high", ("--rate-style", "bucket", "--announce-rate", "200"), wrong=True),
    Style("wrong-low", ("--rate-style", "bucket", "--announce-rate", "50"), wrong=True),
)


def window_ideal(rows: int, quota: int, window: float, rate: float) -> float:
    """The window arithmetic: the last window's start plus its share at ``rate``.

    Windows start at the first request and every ``window`` seconds after; each lets
    ``quota`` requests through, sent at ``rate`` at most.  When ``rate`` cannot spend a
    window within its length, the rate is the bound: ``rows / rate``.
    """
    if quota / rate >= window:
        return rows / rate
    full, last = divmod(rows, quota)
    if last == 0:
        full, last = full - 1, quota
    return full * window + last / rate


def limits(runner: Runner, sizes: Sizes, styles: Sequence[str] | None = None) -> list[Result]:
    """Each style twice: the limit known (``--rate`` = the real limit), and unknown
    (``--rate`` ten times too high).  Span from the first request to the last answer."""
    results = []
    for style in STYLES:
        if styles and style.name not in styles:
            continue
        rows = sizes.window if style.window else sizes.limited
        file = make_csv(rows)
        for known in (True, False):
            name = f"{style.name}-{'known' if known else 'unknown'}"
            rate = style.rate if known else 10 * style.rate
            concurrency = 16 if known else 64
            with Sandbox(
                runner.python,
                name,
                rate=style.rate,
                latency_ms=SANDBOX_LATENCY_MS,
                options=style.sandbox,
            ) as sb:
                result, _ = runner.run_tool(
                    name, file, rows, sb, concurrency=concurrency, rate=rate
                )
            requests, throttled = result.requests or 0, result.throttled or 0
            share = throttled / requests if requests else 1.0
            if style.window:
                quota = round(style.rate * style.window)
                result.ideal_s = window_ideal(rows, quota, style.window, rate)
                ratio_target, share_target = WINDOW_RATIO, WINDOW_429_SHARE
            elif style.wrong:
                result.ideal_s = rows / style.rate
                ratio_target, share_target = WRONG_RATIO, UNKNOWN_LIMIT_429_SHARE
            else:
                result.ideal_s = rows / style.rate
                ratio_target = KNOWN_LIMIT_RATIO if known else UNKNOWN_LIMIT_RATIO
                share_target = 0.0 if known else UNKNOWN_LIMIT_429_SHARE
            what = "0 429s" if share_target == 0 else f"429s ≤ {share_target:.0%} of requests"
            result.target = f"span ≤ {ratio_target:.2f}× ideal, {what}"
            ratio = result.ratio
            result.passed = (
                not broken(result)
                and ratio is not None
                and ratio <= ratio_target
                and requests > 0
                and share <= share_target
            )
            note_own_ratio(result)
            results.append(result)
    return results


@dataclass(frozen=True)
class Short:
    """A short batch against one limit style: the sandbox's options, the tool's ``--rate``."""

    name: str
    sandbox: tuple[str, ...]  # besides --rate and --latency-ms
    client_rate: float  # the tool's --rate
    announced: bool  # the headers announce the real limit (else it must be found)
    rate: float = SHORT_RATE  # the real limit, per second
    rows: int = SHORT_ROWS
    window: float | None = None  # a fixed window's length (its quota: rate * window)


SHORT_STYLES = (
    Short("bucket-known", ("--rate-style", "bucket"), SHORT_RATE, True),
    Short(
        "window-seconds",
        ("--rate-style", "window", "--window", "5"),
        100.0,
        True,
        rate=20.0,
        rows=400,
        window=5.0,
    ),
    Short(
        "window-epoch",
        ("--rate-style", "window", "--window", "5", "--reset-epoch"),
        100.0,
        True,
        rate=20.0,
        rows=400,
        window=5.0,
    ),
    Short("ietf-draft", ("--rate-style", "ietf", "--window", "2"), 10 * SHORT_RATE, True),
    Short(
        "ietf-trio",
        ("--rate-style", "ietf", "--window", "2", "--ietf-form", "trio"),
        10 * SHORT_RATE,
        True,
    ),
    Short(
        "ietf-structured",
        ("--rate-style", "ietf", "--window", "2", "--ietf-form", "structured"),
        10 * SHORT_RATE,
        True,
    ),
    Short("silent", ("--rate-style", "silent"), 10 * SHORT_RATE, False),
    Short(
        "wrong-high",
        ("--rate-style", "bucket", "--announce-rate", f"{2 * SHORT_RATE:g}"),
        10 * SHORT_RATE,
        False,
    ),
    Short(
        "wrong-low",
        ("--rate-style", "bucket", "--announce-rate", f"{SHORT_RATE / 2:g}"),
        10 * SHORT_RATE,
        False,
    ),
    Short("bucket-10x", ("--rate-style", "bucket"), 10 * SHORT_RATE, False),
    Short("silent-60s", ("--rate-style", "silent"), 10 * SHORT_RATE, False, rows=3_000),
)


def short_batches(
    runner: Runner, sizes: Sizes, styles: Sequence[str] | None = None
) -> list[Result]:
    """Short batches (500 rows at 50/s, 400 at 20/s in 5-second windows), each style
    ``SHORT_RUNS`` times; the run with the median span is reported, with every span in
    its notes.  ``silent-60s`` is the long run (3,000 rows at 50/s, no headers)."""
    results = []
    for style in SHORT_STYLES:
        if styles and style.name not in styles:
            continue
        rows = style.rows if sizes is not QUICK else min(style.rows, 200)
        file = make_csv(rows)
        runs: list[Result] = []
        for i in range(SHORT_RUNS):
            with Sandbox(
                runner.python,
                f"short-{style.name}",
                rate=style.rate,
                latency_ms=SANDBOX_LATENCY_MS,
                options=style.sandbox,
            ) as sb:
                result, _ = runner.run_tool(
                    f"short-{style.name}",
                    file,
                    rows,
                    sb,
                    concurrency=SHORT_CONCURRENCY,
                    rate=style.client_rate,
                )
                result.episodes = int(sb.stats().get("throttle_episodes", 0))
            # The floor counts every request the batch must make, each taking a unit of
            # the limit: the rows and the ledger's listing of the account (one page here):
            # the requests the sandbox accepted.  400 rows are 401 requests, a fifth window.
            needed = rows
            if result.requests is not None and result.throttled is not None:
                needed = max(rows, result.requests - result.throttled)
            if style.window:
                quota = round(style.rate * style.window)
                result.ideal_s = window_ideal(needed, quota, style.window, style.client_rate)
            else:
                result.ideal_s = needed / style.rate
            result.notes.append(f"requests accepted (the ideal's count): {needed}")
            runs.append(result)
            say(f"    run {i + 1}: span/ideal {_num(result.ratio, '.3f')}, {result.throttled} 429s")
        runs.sort(key=lambda r: r.ratio or 0.0)
        result = runs[len(runs) // 2]
        result.scenario = f"short-{style.name}"
        requests, throttled = result.requests or 0, result.throttled or 0
        share = throttled / requests if requests else 1.0
        if style.name == "silent-60s":
            ratio_target, share_target, episodes = LONG_SILENT_RATIO, SHORT_FOUND_429_SHARE, None
        elif style.announced:
            ratio_target, share_target, episodes = SHORT_ANNOUNCED_RATIO, SHORT_429_SHARE, None
        else:
            ratio_target, share_target = SHORT_FOUND_RATIO, SHORT_FOUND_429_SHARE
            episodes = SHORT_EPISODES
        result.target = f"span ≤ {ratio_target:.2f}× ideal, 429s ≤ {share_target:.0%}"
        if episodes is not None:
            result.target += f", ≤ {episodes} pause episodes"
        result.passed = (
            all(not broken(r) for r in runs)
            and result.ratio is not None
            and result.ratio <= ratio_target
            and requests > 0
            and share <= share_target
            and (episodes is None or (result.episodes or 0) <= episodes)
        )
        result.notes.insert(
            0,
            f"median of {len(runs)}: span/ideal "
            + ", ".join(_num(r.ratio, ".3f") for r in runs)
            + "; 429s "
            + ", ".join(str(r.throttled) for r in runs)
            + "; pause episodes "
            + ", ".join(str(r.episodes) for r in runs),
        )
        note_own_ratio(result)
        results.append(result)
    return results


def startup(runner: Runner, sizes: Sizes) -> list[Result]:
    """Process start to the first request, median of ``STARTUP_RUNS`` (a 10-row import)."""
    file = make_csv(10)
    times: list[float] = []
    last: Result | None = None
    with Sandbox(runner.python, "startup") as sb:
        for i in range(STARTUP_RUNS):
            sb.reset()
            last, _ = runner.run_tool("startup", file, 10, sb, concurrency=8)
            if last.startup_s is not None:
                times.append(last.startup_s)
            say(f"    run {i + 1}: first request {times[-1] if times else float('nan'):.3f} s")
    assert last is not None
    result = last
    result.rows_per_s = None
    result.target = f"process start to first request ≤ {STARTUP_S:g} s (median of {STARTUP_RUNS})"
    if times:
        median = statistics.median(times)
        result.startup_s = median
        result.notes.insert(0, "first request after " + ", ".join(f"{t:.3f}" for t in times))
        result.passed = not broken(result) and median <= STARTUP_S
    else:
        result.passed = False
    return [result]


def max_failures(runner: Runner, sizes: Sizes) -> list[Result]:
    """An API that answers 400 to every row: ``--max-failures 50`` must stop the run."""
    rows = sizes.max_failures
    file = make_csv(rows)
    concurrency = 16
    with Sandbox(runner.python, "max-failures", options=("--reject-all",)) as sb:
        result, summary = runner.run_tool(
            "max-failures",
            file,
            rows,
            sb,
            concurrency=concurrency,
            extra=("--max-failures", str(MAX_FAILURES)),
            expect_exit=3,
        )
    result.rows_per_s = None
    bound = MAX_FAILURES + concurrency
    result.target = f"≤ {bound} requests sent, exit 3"
    result.passed = not broken(result) and (result.requests or 0) <= bound
    result.notes.insert(0, f"{result.requests} requests sent, exit {summary.get('exit_code')}")
    if summary.get("aborted"):
        result.notes.insert(0, f"aborted: {summary['aborted'][:120]}")
    return [result]


def no_limit(runner: Runner, sizes: Sizes) -> list[Result]:
    """No limit, 50 ms latency: the naive loop, then the tool, on the same sandbox."""
    baseline_file = make_csv(sizes.baseline, "easy")  # its rows go to the API as they are
    file = make_csv(sizes.no_limit)
    with Sandbox(runner.python, "no-limit", latency_ms=SANDBOX_LATENCY_MS) as sb:
        baseline = runner.run_baseline(baseline_file, sizes.baseline, sb)
        sb.reset()
        result, _ = runner.run_tool("no-limit", file, sizes.no_limit, sb, concurrency=64)
    base_rate = baseline.rows_per_s or 0.0
    rate = result.rows_per_s or 0.0
    speedup = rate / base_rate if base_rate else 0.0
    result.target = (
        f"≥ {NO_LIMIT_ROWS_PER_S:.0f} rows/s and ≥ {NO_LIMIT_VS_BASELINE:.0f}× naive baseline"
    )
    result.notes.insert(0, f"{speedup:.1f}× the naive baseline ({base_rate:.1f} rows/s)")
    result.passed = (
        not broken(result)
        and not broken(baseline)
        and rate >= NO_LIMIT_ROWS_PER_S
        and speedup >= NO_LIMIT_VS_BASELINE
    )
    return [baseline, result]


def sending(runner: Runner, sizes: Sizes) -> list[Result]:
    """No limit, 50 ms latency, 64 in flight: rows/s and the tool's CPU per row."""
    rows = sizes.sending
    file = make_csv(rows)
    with Sandbox(runner.python, "sending", latency_ms=SANDBOX_LATENCY_MS) as sb:
        result, _ = runner.run_tool("sending", file, rows, sb, concurrency=64)
    result.target = (
        f"≥ {SENDING_ROWS_PER_S:,.0f} rows/s, ≤ {SENDING_CPU_MS_PER_ROW:g} ms of tool CPU a row"
    )
    if result.span_s:
        result.notes.insert(0, f"{rows / result.span_s:.0f} rows/s over the span")
    result.passed = (
        not broken(result)
        and (result.rows_per_s or 0) >= SENDING_ROWS_PER_S
        and (result.cpu_ms_per_row or 1e9) <= SENDING_CPU_MS_PER_ROW
    )
    return [result]


def dry_run_1m(runner: Runner, sizes: Sizes) -> list[Result]:
    """Validate a big CSV, sending nothing: seconds, and bounded memory."""
    rows = sizes.dry_run
    say(f"  (writing {rows:,} rows of input, once)")
    file = make_csv(rows)
    result, _ = runner.run_tool("dry-run-1m", file, rows, None, dry_run=True)
    result.target = f"wall ≤ {DRY_RUN_WALL_S:g} s, peak RSS ≤ {DRY_RUN_RSS_MB:g} MB"
    result.passed = (
        not broken(result)
        and result.wall_s <= DRY_RUN_WALL_S
        and (result.peak_rss_mb or 0) <= DRY_RUN_RSS_MB
    )
    return [result]


def memory(runner: Runner, sizes: Sizes) -> list[Result]:
    """Import a small and a 10× larger file into a fast sandbox: memory must stay flat."""
    results: list[Result] = []
    for rows in (sizes.memory_small, sizes.memory_large):
        name = f"memory-{rows // 1000}k" if rows % 1000 == 0 else f"memory-{rows}"
        file = make_csv(rows)
        with Sandbox(runner.python, name) as sb:
            result, _ = runner.run_tool(name, file, rows, sb, concurrency=64)
        results.append(result)
    small, large = results
    small.target = f"reference for {large.scenario}"
    ratio = (large.peak_rss_mb or 0) / (small.peak_rss_mb or 1)
    large.target = f"peak RSS ≤ {MEMORY_RSS_RATIO:g}× {small.scenario}"
    large.notes.insert(0, f"peak RSS {ratio:.2f}× the {small.scenario} run")
    large.passed = not broken(small) and not broken(large) and ratio <= MEMORY_RSS_RATIO
    if broken(small):
        small.passed = False
    return results


# -- workbooks (reading with calamine, writing results as .xlsx) ------------------------

XLSX_50K_WALL_S = 1.0
XLSX_1M_WALL_S = 20.0
XLSX_RSS_MB = 800.0
XLSX_OUTPUT_RATIO = 2.0


def make_xlsx(rows: int) -> Path:
    """The rows of ``make_csv`` as a workbook (kept)."""
    return inputs.make_xlsx(rows, INPUT[0])


def sheet_dry_run(runner: Runner, name: str, file: Path, rows: int, output: str) -> Result:
    """One dry run of ``file`` writing ``output`` (``.csv`` or ``.xlsx``): wall and RSS."""
    results, summary_path = OUT / f"{name}.results{output}", OUT / f"{name}.summary.json"
    summary_path.unlink(missing_ok=True)
    argv = [runner.python, "-m", "bulk_import", "run", str(file), "--dry-run", "--no-progress"]
    argv += ["--output", str(results), "--summary-json", str(summary_path)]
    say(f"  {name}: {shlex.join(shown(a) for a in argv)}")
    busy_before = busy_cpu_s()
    m = measure(argv, env=tool_env(), log=OUT / "logs" / name, timeout=runner.timeout)
    result = Result(
        scenario=name,
        rows=rows,
        wall_s=m.wall_s,
        target="",
        passed=None,
        rows_per_s=rows / m.wall_s,
        peak_rss_mb=m.peak_rss_mb,
        tool_cpu_s=m.cpu_s,
        file=shown(file),
        commands=[shlex.join(shown(a) for a in argv)],
    )
    note_others(result, busy_before)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    result.tool_s = summary.get("duration_seconds")
    if m.exit_code != 0 or summary.get("counts", {}).get("valid") != rows:
        last = m.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        result.notes.append(f"BROKEN RUN: exit {m.exit_code}: {last[0]}")
    return result


def xlsx_dry_runs(runner: Runner, sizes: Sizes, *, large: bool = True) -> list[Result]:
    """Dry runs of a 50,000-row and a 1,000,000-row .xlsx (calamine)."""
    out: list[Result] = []
    runs = [(min(50_000, sizes.dry_run), XLSX_50K_WALL_S), (sizes.dry_run, None)]
    for rows, wall in runs if large else runs[:1]:
        say(f"  (writing {rows:,} rows of .xlsx input, once)")
        result = sheet_dry_run(
            runner, f"xlsx-dry-run-{rows // 1000}k", make_xlsx(rows), rows, ".csv"
        )
        if wall is not None:
            result.target = f"wall ≤ {wall:g} s"
            result.passed = not broken(result) and result.wall_s <= wall
        else:
            result.target = f"wall ≤ {XLSX_1M_WALL_S:g} s, peak RSS ≤ {XLSX_RSS_MB:g} MB"
            result.passed = (
                not broken(result)
                and result.wall_s <= XLSX_1M_WALL_S
                and (result.peak_rss_mb or 0) <= XLSX_RSS_MB
            )
        out.append(result)
    return out


def xlsx_output(runner: Runner, sizes: Sizes) -> list[Result]:
    """A dry run of the big CSV with ``--output results.xlsx``, against the CSV output."""
    rows = sizes.dry_run
    file = make_csv(rows)
    csv_out = sheet_dry_run(runner, "output-csv", file, rows, ".csv")
    csv_out.target = "reference for output-xlsx"
    xlsx_out = sheet_dry_run(runner, "output-xlsx", file, rows, ".xlsx")
    ratio = xlsx_out.wall_s / csv_out.wall_s
    xlsx_out.notes.insert(0, f"{ratio:.2f}× the CSV output's wall time")
    xlsx_out.target = f"wall ≤ {XLSX_OUTPUT_RATIO:g}× output-csv, peak RSS ≤ {XLSX_RSS_MB:g} MB"
    xlsx_out.passed = (
        not broken(xlsx_out)
        and ratio <= XLSX_OUTPUT_RATIO
        and (xlsx_out.peak_rss_mb or 0) <= XLSX_RSS_MB
    )
    return [csv_out, xlsx_out]


SCENARIOS = {
    "startup": startup,
    "limits": limits,
    "short": short_batches,
    "max-failures": max_failures,
    "no-limit": no_limit,  # runs the naive baseline first, on the same sandbox
    "sending": sending,
    "dry-run-1m": dry_run_1m,
    "memory": memory,
    "xlsx-dry-run": xlsx_dry_runs,
    "xlsx-dry-run-50k": lambda runner, sizes: xlsx_dry_runs(runner, sizes, large=False),
    "xlsx-output": xlsx_output,
}


# -- report -----------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _cpu(cpu_s: float | None, wall_s: float) -> str:
    return "—" if cpu_s is None else f"{cpu_s:.1f} ({cpu_s / wall_s:.0%})"


def table(results: Sequence[Result]) -> str:
    """The markdown table, the notes, and the commands to reproduce each row."""
    lines = [
        "| # | scenario | file | rows | wall s | first request s | span s | tool's own s | rows/s "
        "| ideal s | span/ideal "
        "| 429s (% of req) | peak RSS MB | tool CPU s (% core) | tool CPU ms/row "
        "| sandbox CPU s (% core) | target | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for i, r in enumerate(results, 1):
        if r.throttled is None:
            throttled = "—"
        else:
            share = r.throttled / r.requests if r.requests else 0.0
            throttled = f"{r.throttled} ({share:.1%})"
        verdict = "—" if r.passed is None else ("PASS" if r.passed else "**FAIL**")
        lines.append(
            f"| {i} | {r.scenario} | {r.file} | {r.rows:,} | {r.wall_s:.2f} "
            f"| {_num(r.startup_s, '.3f')} "
            f"| {_num(r.span_s, '.2f')} | {_num(r.tool_s, '.2f')} "
            f"| {_num(r.rows_per_s, '.1f')} "
            f"| {_num(r.ideal_s, '.1f')} | {_num(r.ratio, '.3f')} | {throttled} "
            f"| {_num(r.peak_rss_mb, '.0f')} | {_cpu(r.tool_cpu_s, r.wall_s)} "
            f"| {_num(r.cpu_ms_per_row, '.3f')} "
            f"| {_cpu(r.sandbox_cpu_s, r.wall_s)} | {r.target} | {verdict} |"
        )
    lines += ["", "Notes:", ""]
    lines += [
        f"{i}. {r.scenario}: {'; '.join(r.notes)}" for i, r in enumerate(results, 1) if r.notes
    ]
    lines += ["", "Commands to reproduce (from the repository root):", ""]
    for i, r in enumerate(results, 1):
        lines.append(f"{i}. {r.scenario}:")
        lines.append("")
        lines.append("   ```sh")
        lines += [f"   {c}" for c in r.commands]
        lines.append("   ```")
    return "\n".join(lines)


BYTECODE = {
    "compiled": "the package's modules byte-compiled before the runs, as a pip install has them",
    "source": "no .pyc of the package: every run compiles its modules again",
}


def prepare_bytecode(python: str, how: str) -> None:
    """The package's ``.pyc`` files as the runs should find them.

    pip byte-compiles a package when it installs it; an editable install in a shell where
    ``PYTHONDONTWRITEBYTECODE`` is set (this machine's) never writes them, so every run
    of the tool compiles all of its modules again (about 0.1 s of CPU).  ``compiled``
    writes them first (``compileall``; git ignores ``__pycache__``), ``source`` removes
    them.  The interpreter and third-party packages are as installed either way.
    """
    package = ROOT / "bulk_import"
    if how == "compiled":
        subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True, cwd=ROOT)
    else:
        for cache in package.rglob("__pycache__"):
            shutil.rmtree(cache)


def host_speed() -> float:
    """CPU seconds of a fixed pure-Python loop: this host's speed at the time of the runs.

    The same commit's figures move with it (a virtual machine's host may give it half the
    speed one hour and all of it the next); compare figures taken at like speeds."""
    times = []
    for _ in range(3):
        start = time.process_time()
        sum(range(3 * 10**7))
        times.append(time.process_time() - start)
    return min(times)


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the bulk-import benchmarks against the sandbox and print a table."
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--style",
        action="append",
        choices=[style.name for style in STYLES],
        metavar="NAME",
        help="limits: run only this style (repeatable): "
        + ", ".join(style.name for style in STYLES),
    )
    parser.add_argument(
        "--short",
        action="append",
        choices=[style.name for style in SHORT_STYLES],
        metavar="NAME",
        help="short: run only this style (repeatable): "
        + ", ".join(style.name for style in SHORT_STYLES),
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: check that the script works"
    )
    parser.add_argument(
        "--input",
        choices=("realistic", "easy"),
        default="realistic",
        help="the input files: realistic (8 columns, 42 countries; the default) or easy "
        "(release 1's 5 columns of +1 numbers); see benchmarks/inputs.py",
    )
    parser.add_argument("--python", default=default_python(), help="interpreter for the tool")
    parser.add_argument(
        "--bytecode",
        choices=("compiled", "source"),
        default="compiled",
        help="compiled (the default): the package's modules byte-compiled first, as pip "
        "installs them; source: its __pycache__ removed, so every run compiles them again "
        "(an editable install where PYTHONDONTWRITEBYTECODE is set)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds before a run is killed"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each scenario, wait up to this long for other work to stop (default: 120)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every sandbox and tool process is stopped."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    INPUT[0] = args.input
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    prepare_bytecode(args.python, args.bytecode)
    runner = Runner(args.python, args.timeout)
    names = args.only or list(SCENARIOS)
    results: list[Result] = []
    with sigterm_as_interrupt():
        try:
            for name in names:
                say(f"{name}:")
                wait_idle(args.wait_idle)
                if name == "limits":
                    results += limits(runner, sizes, args.style)
                elif name == "short":
                    results += short_batches(runner, sizes, args.short)
                else:
                    results += SCENARIOS[name](runner, sizes)
        except KeyboardInterrupt:
            say("interrupted: every process started here has been stopped")
            return 130
    report = table(results)
    report = (
        f"(--bytecode {args.bytecode}: {BYTECODE[args.bytecode]}; host speed: "
        f"{host_speed():.3f} s of CPU for `sum(range(3 * 10**7))`, the least of 3)\n\n" + report
    )
    if args.quick:
        report = "(--quick: reduced sizes, verdicts are indicative only)\n\n" + report
    print(report)
    (OUT / "results.md").write_text(report + "\n", encoding="utf-8")
    (OUT / "results.json").write_text(
        json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8"
    )
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
