"""The HTML report (``--report``), opened in a real headless browser.

Chromium from the system's packages (Debian: ``chromium`` and ``chromium-driver``; .ci/run
installs them), driven by Selenium.  Where no browser is installed the browser tests skip,
saying so; the checks of the page's text run everywhere.  Each browser test saves a
screenshot in its ``tmp_path`` (pytest's temporary directory, kept for the last runs).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulk_import import RunOptions, Status, run_import
from bulk_import.models import RowResult
from bulk_import.record import Summary
from bulk_import.report import render

from support import API_KEY, PASSWORD, assert_no_secrets, read_results, write_numbers

BAD_ROWS = [
    ["4155550999", "u", PASSWORD, "sip.telnyx.com", "", ""],
    ["+14155550998", "u", PASSWORD, "", "", ""],
    ["+1415555099", "u", PASSWORD, "sip.telnyx.com", "", ""],
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(
            "no headless browser: install chromium and chromium-driver "
            "(apt-get install chromium chromium-driver) to open the report"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1000,1400")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def opened(driver: Any, path: Path, shot: Path) -> None:
    driver.get(path.as_uri())
    assert js(driver, "return document.body.getAttribute('data-ready')") == "1"
    height = js(driver, "return document.body.scrollHeight")
    driver.set_window_size(1000, min(int(height) + 120, 4000))
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def table_rows(driver: Any, ident: str = "problems") -> list[list[str]]:
    return js(  # type: ignore[no-any-return]
        driver,
        f"return Array.from(document.querySelectorAll('#{ident} tbody tr'))"
        ".map(tr => Array.from(tr.children).map(td => td.textContent))",
    )


def nothing_fetched(text: str) -> None:
    """Self-contained: no address to load anything from, no external script or style."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "@import" not in text
    assert "url(" not in text


def test_report_in_a_browser(tmp_path: Path, sandbox_factory: Any, browser: Any) -> None:
    api = sandbox_factory(api_key=API_KEY, rate=60, rate_headers="none", fail_rate=0.1, seed=4)
    path = tmp_path / "n.csv"
    write_numbers(path, 150, extra_rows=BAD_ROWS)
    report = tmp_path / "report.html"
    summary = run_import(
        RunOptions(
            file=path,
            base_url=api.url,
            api_key=API_KEY,
            concurrency=8,
            max_attempts=2,
            report=report,
            metrics_labels={"job": "nightly"},
        )
    )
    text = report.read_text()
    nothing_fetched(text)
    assert_no_secrets(text)
    opened(browser, report, tmp_path / "report.png")

    counts = js(
        browser,
        "return Object.fromEntries(Array.from(document.querySelectorAll('#counts tr[data-status]'))"
        ".map(tr => [tr.dataset.status, Number(tr.dataset.count)]))",
    )
    assert counts == {s: n for s, n in summary.counts.items() if n}

    # the chart: a bar per second, its requests and 429s those the run recorded, and in
    # all the requests and 429s the server answered
    bars = js(
        browser,
        "return Array.from(document.querySelectorAll('#requests-chart rect.requests'))"
        ".map(r => [Number(r.dataset.t), Number(r.dataset.requests), Number(r.dataset.throttled)])",
    )
    assert bars == [[s["t"], s["requests"], s["throttled"]] for s in summary.timeline]
    stats = api.state.stats()
    assert sum(b[1] for b in bars) == stats["requests"] == summary.requests
    assert sum(b[2] for b in bars) == stats["by_status"].get("429", 0) == summary.throttled > 0
    heights = js(
        browser,
        "return Array.from(document.querySelectorAll('#requests-chart rect.requests'))"
        ".map(r => r.getBBox().height)",
    )
    top = max(b[1] for b in bars)
    tallest = max(heights)
    for (_t, n, _thr), h in zip(bars, heights, strict=True):  # drawn to scale
        assert h == pytest.approx(n / top * tallest, abs=0.05)
    assert float(
        js(browser, "return document.getElementById('settled-rate').dataset.rate")
    ) == pytest.approx(summary.settled_rate, rel=1e-3)
    p99 = js(
        browser,
        "return Array.from(document.querySelectorAll('#latency-chart g[data-t]'))"
        ".map(g => Number(g.dataset.p99))",
    )
    assert p99 == [s["p99"] for s in summary.timeline]

    # the table of rows that need a person: every invalid and failed row of the results
    results = read_results(tmp_path / "n.results.csv")
    needing = [r for r in results if r["status"] in ("invalid", "failed", "not_attempted")]
    assert needing
    shown = table_rows(browser)
    assert [r[0] for r in shown] == [r["row"] for r in needing][:100]
    assert [r[5] for r in shown] == [r["error"] for r in needing][:100]
    status = browser.find_element("css selector", "#problems select")
    from selenium.webdriver.support.ui import Select

    Select(status).select_by_value("invalid")
    shown = table_rows(browser)
    assert len(shown) == sum(r["status"] == "invalid" for r in results) == 3
    assert {r[2] for r in shown} == {"invalid"}
    Select(status).select_by_value("")
    header = browser.find_elements("css selector", "#problems th")[0]
    header.click()
    header.click()  # the second click sorts the other way
    rows = [int(r[0]) for r in table_rows(browser)]
    assert rows == sorted((int(r["row"]) for r in needing), reverse=True)[:100]
    box = browser.find_element("css selector", "#problems input")
    box.send_keys("TOO SHORT")  # any column, any case
    shown = table_rows(browser)
    assert len(shown) == 1
    assert shown[0][1] == "+1415555099"

    options = js(
        browser,
        "return Object.fromEntries(Array.from(document.querySelectorAll('#opts tr'))"
        ".map(tr => [tr.children[0].textContent, tr.children[1].textContent]))",
    )
    assert options["concurrency"] == "8"
    assert options["metrics labels"] == "job=nightly"
    assert_no_secrets(browser.page_source)


def test_a_hostile_error_is_shown_as_text(tmp_path: Path, browser: Any) -> None:
    """An error text with markup in it is text in the table, never markup or script."""
    evil = '</script><script>document.title="pwned"</script><img src=x onerror=alert(1)>'
    summary = Summary(1, {"failed": 1}, "r.csv", 1, "a", "b", 0.1)
    page = render(
        summary,
        problems=[RowResult(2, "+14155550100", Status.FAILED, error=evil)],
        changes=None,
        options={"file": "<b>n.csv</b>"},
        title="t",
    )
    assert "<img" not in page
    report = tmp_path / "r.html"
    report.write_text(page)
    opened(browser, report, tmp_path / "hostile.png")
    assert browser.title == "t"
    assert table_rows(browser) == [["2", "+14155550100", "failed", "", "0", evil]]
    assert js(browser, "return document.querySelectorAll('img').length") == 0


def page_data(path: Path, ident: str) -> dict[str, Any]:
    match = re.search(rf'id="{ident}-data">(.*?)</script>', path.read_text(), re.S)
    assert match, ident
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_a_plan_report_shows_the_changes(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key="k")
    path = tmp_path / "n.csv"
    write_numbers(path, 4)
    run_import(RunOptions(file=path, base_url=api.url, api_key="k"))
    write_numbers(path, 4, friendly="Desk")  # every friendly name changes
    report = tmp_path / "plan.html"
    summary = run_import(
        RunOptions(
            file=path,
            base_url=api.url,
            api_key="k",
            command="plan",
            on_existing="update",
            report=report,
        )
    )
    assert summary.counts["would_update"] == 4
    data = page_data(report, "changes")
    assert [row[2] for row in data["rows"]] == ["would_update"] * 4
    texts = [data["texts"][row[3]] for row in data["rows"]]
    assert all("friendlyName: 'Line " in t and "-> 'Desk " in t for t in texts), texts
    assert "plan" in report.read_text().split("</title>")[0]


def test_resume_writes_the_report_of_the_whole_file(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key="k", fail_rate=0.5, seed=1)
    path = tmp_path / "n.csv"
    write_numbers(path, 20)
    first = run_import(RunOptions(file=path, base_url=api.url, api_key="k", max_attempts=1))
    failed = first.counts["failed"]
    assert failed
    from bulk_import.sandbox import SandboxConfig
    from bulk_import.sandbox.faults import FaultDice

    api.state.dice = FaultDice(SandboxConfig(api_key="k"))  # the same account, healthy now
    report = tmp_path / "r.html"
    summary = run_import(
        RunOptions(file=path, base_url=api.url, api_key="k", resume=True, report=report)
    )
    assert summary.counts["imported"] == 20
    text = report.read_text()
    assert 'data-status="imported" data-count="20"' in text
    assert f'<td class="num">20</td><td class="num">{failed}</td>' in text  # this run's
    assert page_data(report, "problems")["rows"] == []


def test_a_long_run_is_drawn_in_bins_that_keep_every_request() -> None:
    from bulk_import.figures import Second
    from bulk_import.report import MAX_BARS, bins

    timeline = [
        Second(t=t, requests=10 + t % 7, throttled=t % 3, p50=0.01, p95=0.02, p99=0.001 * t)
        for t in range(0, 5000, 2)  # a second in two with answers: 2,500 entries
    ]
    drawn = bins(timeline)
    assert len(drawn) == MAX_BARS
    assert {b["span"] for b in drawn} == {5}
    assert sum(b["requests"] for b in drawn) == sum(s["requests"] for s in timeline)
    assert sum(b["throttled"] for b in drawn) == sum(s["throttled"] for s in timeline)
    assert drawn[-1]["p99"] == timeline[-1]["p99"]  # the highest of its seconds'
    assert bins(timeline[:100]) == [{**s, "span": 1} for s in timeline[:100]]


def test_the_largest_table_stays_small(tmp_path: Path) -> None:
    """Errors that quote their own number are kept once per shape."""
    rows = [
        RowResult(i, f"415{i:07d}", Status.INVALID, error=f"phoneNumber: '415{i:07d}' has none")
        for i in range(2, 2002)
    ]
    page = render(
        Summary(2000, {"invalid": 2000}, "r.csv", 1, "a", "b", 0.1),
        problems=rows,
        changes=None,
        options={},
        title="t",
    )
    report = tmp_path / "r.html"
    report.write_text(page)
    data = page_data(report, "problems")
    assert data["texts"] == ["phoneNumber: '\x00' has none"]
    assert len(page) < 2000 * 50 + 20_000
