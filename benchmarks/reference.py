"""Write the results files that a change of the hot paths must leave byte for byte alike.

    .venv/bin/python benchmarks/reference.py OUTDIR [--python PATH] [--only dry|faults]

* ``OUTDIR/dry-1m.results.csv``: the dry run of ``benchmarks/out/real-1000000.csv``;
* ``OUTDIR/faults-10k.results.csv``: an import of ``benchmarks/out/real-10000.csv`` into a
  sandbox (its own process) that answers 1 % of the imports 500 and stores 1 % then drops
  the connection (``--fail-rate 0.01 --drop-after-store-rate 0.01 --seed 7``), at
  ``--concurrency 1``: the sandbox draws its faults in the order the requests arrive, so
  one request at a time makes the same rows meet the same faults, run after run.

Compare two directories with ``cmp``.  The input files come from ``benchmarks/inputs.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inputs

API_KEY = "bench-key"  # a test value the sandbox accepts, not a secret


def dry(python: str, out: Path) -> None:
    file = inputs.make_csv(1_000_000)
    argv = [python, "-m", "bulk_import", "run", str(file), "--dry-run", "--no-progress"]
    subprocess.run([*argv, "--output", str(out / "dry-1m.results.csv")], check=False)


def faults(python: str, out: Path) -> None:
    file = inputs.make_csv(10_000)
    options = ["--fail-rate", "0.01", "--drop-after-store-rate", "0.01", "--seed", "7"]
    sandbox = subprocess.Popen(
        [python, "-m", "bulk_import.sandbox", "--port", "0", "--api-key", API_KEY, *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().strip().removeprefix("sandbox listening on ")
        env = {**os.environ, "SIGMAMIND_API_KEY": API_KEY}
        result = out / "faults-10k.results.csv"
        for stale in out.glob("faults-10k.results.csv*"):
            stale.unlink()
        argv = [python, "-m", "bulk_import", "run", str(file), "--base-url", url]
        argv += ["--concurrency", "1", "--no-progress", "--output", str(result)]
        subprocess.run(argv, env=env, check=False)
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        if sandbox.stdout is not None:
            sandbox.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--python", default=str(inputs.ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--only", choices=("dry", "faults"))
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "dry"):
        dry(args.python, args.outdir)
    if args.only in (None, "faults"):
        faults(args.python, args.outdir)


if __name__ == "__main__":
    main()
