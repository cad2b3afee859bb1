"""Profile the real command in process: ``bulk-import ARGS`` under cProfile.

    .venv/bin/python benchmarks/profiled.py [--top N] [--out FILE.prof] -- run FILE ...

Runs ``bulk_import.cli.main(ARGS)`` (what ``bulk-import`` runs, without its final
``os._exit``) under ``cProfile`` and prints the top functions by own time, then by
cumulative time, and the share of the process's CPU time each has.  Start the sandbox in
another process first (``python -m bulk_import.sandbox --port 0 --latency-ms 50``), so
that its CPU is not in the profile.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default="/tmp/bulk-import.prof")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    from bulk_import.cli import main as cli_main

    wall = time.perf_counter()
    profiler = cProfile.Profile()
    code = profiler.runcall(cli_main, args)
    wall = time.perf_counter() - wall
    profiler.dump_stats(ns.out)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"exit {code}; wall {wall:.2f} s; CPU {cpu:.2f} s (profiled: slower than a real run)")
    stats = pstats.Stats(ns.out, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(ns.top)
    stats.sort_stats("cumulative").print_stats(ns.top)


if __name__ == "__main__":
    main()
