"""What the batch's ledger costs a run: the extra requests, and the time at the API's limit.

    .venv/bin/python benchmarks/ledger.py [--rows 10000] [--rate 200] [--old TREE]

Imports ``--rows`` realistic rows (benchmarks/inputs.py) with the CLI, against a sandbox in
another process (``bulk-import sandbox``, the bucket style at ``--rate`` requests a
second, 50 ms of latency), twice:

- into an empty account: the ledger reads the account's list before the first POST (one
  request for an empty account);
- into an account that already holds every number (``--preload``): the list is read in
  pages of 100, and every POST is a 409.

Each case prints the requests the sandbox counted by method, the share the ledger added
(the list's GETs over the rest), and the wall time of the CLI.  With ``--old TREE`` (a
checkout of a release without the ledger, e.g. ``git worktree add /tmp/old 6548966``) the
same runs are made with that tree's code first, for the time against it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from inputs import make_csv  # noqa: E402

KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stats(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/stats") as answer:
        data: dict[str, object] = json.load(answer)
        return data


def one(tree: Path, file: Path, rate: float, preload: bool, work: Path) -> dict[str, object]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree), "SIGMAMIND_API_KEY": KEY}
    server_args = [
        sys.executable,
        "-m",
        "bulk_import",
        "sandbox",
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--rate",
        str(rate),
        "--latency-ms",
        "50",
    ]
    if preload:
        server_args += ["--preload", str(file)]
    # cwd: ``python -m`` puts the working directory first on sys.path, before PYTHONPATH
    server = subprocess.Popen(
        server_args, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                stats(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        out = work / f"r{port}.csv"
        t0 = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bulk_import",
                "run",
                str(file),
                "--base-url",
                f"http://127.0.0.1:{port}",
                "--rate",
                str(rate),
                "--concurrency",
                "32",
                "--no-progress",
                "--output",
                str(out),
            ],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - t0
        seen = stats(port)
    finally:
        server.terminate()
        server.wait()
    methods = dict(seen["methods"])  # type: ignore[call-overload]
    gets = int(methods.get("GET", 0))
    rest = sum(int(n) for m, n in methods.items() if m != "GET")
    return {
        "code": done.returncode,
        "methods": methods,
        "extra": f"{gets / rest * 100:.2f} %" if rest else "-",
        "wall": round(wall, 2),
        "summary": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--old", type=Path, help="a tree of an earlier release, to compare")
    args = parser.parse_args()
    file = make_csv(args.rows)
    work = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    trees = [("old", args.old)] if args.old else []
    trees.append(("ledger", ROOT))
    try:
        for name, tree in trees:
            for preload in (False, True):
                account = "holding every number" if preload else "empty"
                got = one(tree, file, args.rate, preload, work)
                print(f"{name:7} {account:21} {json.dumps(got)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
