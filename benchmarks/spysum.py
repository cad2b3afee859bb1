"""Sum a py-spy raw (collapsed) profile: the top functions by own and by inclusive share.

    .venv/bin/py-spy record -r 500 --format raw -o prof.txt -- .venv/bin/python -m bulk_import ...
    .venv/bin/python benchmarks/spysum.py prof.txt [--top N] [--match TEXT]

``--match`` gives the share of samples whose stack holds a frame containing TEXT (e.g.
``record.py`` for the journal, ``scrub`` for the masking).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_LINE = re.compile(r" \(([^)]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``quote (urllib/parse.py:917)`` -> ``quote (urllib/parse.py)``: lines merged."""
    match = _LINE.search(frame)
    if not match:
        return frame
    path = match.group(1)
    path = path.split("site-packages/")[-1].split("lib/python3.11/")[-1].split("wt/perf/")[-1]
    return f"{frame[: match.start()]} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", action="append", default=[])
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    total = 0
    with open(args.file, encoding="utf-8") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            n = int(count)
            frames = [frame_name(fr) for fr in stack.split(";")[1:]]  # first: the process
            total += n
            if frames:
                own[frames[-1]] += n
            for name in set(frames):
                inclusive[name] += n
            for text in args.match:
                if any(text in fr for fr in frames):
                    matched[text] += n
    print(f"{total} samples")
    for title, counter in (("own", own), ("inclusive", inclusive)):
        print(f"\n{title}:")
        for name, n in counter.most_common(args.top):
            print(f"  {n / total:6.1%}  {name}")
    for text in args.match:
        print(f"stacks with {text!r}: {matched[text] / total:.1%}")


if __name__ == "__main__":
    main()
