"""The HTML report (``--report``): its picture for the README, and its size and render time.

    .venv/bin/python benchmarks/report.py --png docs/report.png    # the README's picture
    .venv/bin/python benchmarks/report.py --rows 100000            # size and render time

Both run against the sandbox, in this process (``SandboxServer``), and open the report in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``) through Selenium.

``--png``: the demo: the sample rows and more (1,200 rows, a few invalid) into a sandbox
that allows 150 requests per second without saying so and answers 2 % of the imports 500,
so the chart shows the slow start, the 429s and the settled rate.

``--invalid N``: a dry run of N rows that are all invalid, each error quoting its own
number: the largest table a run of N rows can have.

``--rows N``: N rows (1 % invalid) into a sandbox that answers 5 % of the imports 500 with
one attempt each (so about 6 % of the rows are in the table), then the report's size and
the time from ``driver.get`` to the page's script having drawn the tables (the median of 3
loads).
"""

from __future__ import annotations

import argparse
import base64
import csv
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bulk_import import RunOptions, run_import  # noqa: E402
from bulk_import.sandbox import SandboxConfig, SandboxServer  # noqa: E402

PASSWORD = "demo-password-1"


def browser(width: int = 1000, height: int = 1200) -> Any:
    """Headless Chromium through Selenium (the system's chromium and chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise SystemExit(
            "needs chromium and chromedriver: apt-get install chromium chromium-driver"
        )
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(driver_path), options=options)


def write_rows(path: Path, count: int, invalid_every: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["phoneNumber", "trunkUsername", "trunkPassword", "terminationSipURI"])
        for i in range(count):
            number = f"+1415{5000000 + i:07d}"
            if invalid_every and i % invalid_every == invalid_every - 1:
                number = f"415{i:07d}"  # no country code: invalid without --default-region
            out.writerow([number, f"user{i}", PASSWORD, "sip.telnyx.com"])


def make_png(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "numbers.csv"
        write_rows(src, 1200, invalid_every=150)
        report = Path(tmp) / "report.html"
        config = SandboxConfig(api_key="k", rate=150, rate_headers="none", fail_rate=0.02, seed=7)
        with SandboxServer(config) as server:
            summary = run_import(
                RunOptions(
                    file=src,
                    base_url=server.url,
                    api_key="k",
                    concurrency=16,
                    max_attempts=2,
                    report=report,
                )
            )
        print(summary.line())
        driver = browser(1000, 1200)
        try:
            driver.get(report.as_uri())
            # the options table at the end is left out of the picture: the page down to it
            height = driver.execute_script(
                "return document.getElementById('opts').getBoundingClientRect().top"
            )
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": 1000, "height": height, "scale": 1},
                },
            )
            out.write_bytes(base64.b64decode(shot["data"]))
        finally:
            driver.quit()
    print(f"wrote {out}")


def measure(rows: int, *, invalid: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "numbers.csv"
        write_rows(src, rows, invalid_every=1 if invalid else 100)
        report = Path(tmp) / "report.html"
        t0 = time.monotonic()
        if invalid:
            summary = run_import(RunOptions(file=src, dry_run=True, report=report))
        else:
            config = SandboxConfig(api_key="k", fail_rate=0.05, seed=3)
            with SandboxServer(config) as server:
                summary = run_import(
                    RunOptions(
                        file=src,
                        base_url=server.url,
                        api_key="k",
                        concurrency=32,
                        max_attempts=1,
                        report=report,
                    )
                )
        took = time.monotonic() - t0
        print(summary.line())
        size = report.stat().st_size
        driver = browser()
        times = []
        try:
            for _ in range(3):
                t0 = time.monotonic()
                driver.get(report.as_uri())
                driver.execute_script("return document.body.getAttribute('data-ready')")
                times.append(time.monotonic() - t0)
            shown = driver.execute_script(
                "return document.querySelectorAll('#problems tbody tr').length"
            )
            listed = driver.execute_script(
                "return document.getElementById('problems').dataset.rows"
            )
        finally:
            driver.quit()
        print(
            f"rows={rows} run={took:.1f}s report={size / 1e6:.2f} MB "
            f"table rows={listed} (shown {shown} a page) "
            f"render median={statistics.median(times):.2f}s "
            f"(each: {', '.join(f'{t:.2f}' for t in times)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, help="write the README's picture of the report")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the measured run")
    parser.add_argument(
        "--invalid", action="store_true", help="a dry run of rows that are all invalid"
    )
    args = parser.parse_args()
    if args.png is not None:
        make_png(args.png)
    else:
        measure(args.rows, invalid=args.invalid)


if __name__ == "__main__":
    main()
