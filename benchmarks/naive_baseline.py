"""The naive baseline: the loop a user would write, one request after another.

    SIGMAMIND_API_KEY=... python benchmarks/naive_baseline.py FILE BASE_URL [LIMIT]

Reads the CSV with ``csv.DictReader`` and POSTs each row as JSON with ``X-API-Key``
through one ``httpx.Client`` (a kept-alive connection: the generous version of the loop;
``requests.post`` per row would open a connection each time and be slower).  Prints one
JSON line: ``{"rows": n, "seconds": t, "by_status": {...}}``; ``seconds`` is the loop
alone, without interpreter start-up.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter

import httpx


def main(argv: list[str]) -> int:
    path, base_url = argv[0], argv[1]
    limit = int(argv[2]) if len(argv) > 2 else None
    key = os.environ["SIGMAMIND_API_KEY"]
    statuses: Counter[int] = Counter()
    rows = 0
    start = time.perf_counter()
    with (
        httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as client,
        open(path, newline="", encoding="utf-8") as f,
    ):
        for row in csv.DictReader(f):
            if limit is not None and rows >= limit:
                break
            body = {name: value for name, value in row.items() if value}
            response = client.post("/v1/phone-numbers/import", json=body)
            statuses[response.status_code] += 1
            rows += 1
    seconds = time.perf_counter() - start
    by_status = {str(s): n for s, n in sorted(statuses.items())}
    print(json.dumps({"rows": rows, "seconds": seconds, "by_status": by_status}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
