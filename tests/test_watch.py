"""Watching a run: the request figures, the metrics file, the health-check pings.

(The HTML report in a real browser: tests/test_report.py.)
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from ping_server import PingServer, refused_url
from prometheus_client.parser import text_string_to_metric_families

from bulk_import import RunOptions, UsageError, run_import
from bulk_import.figures import RequestLog, percentile
from bulk_import.metrics import LAST_SUCCESS, render

from support import API_KEY, PASSWORD, assert_no_secrets, read_results, run_cli, write_numbers

BAD_ROWS = [
    ["4155550999", "u", PASSWORD, "sip.telnyx.com", "", ""],  # no country code: invalid
    ["+14155550998", "u", PASSWORD, "", "", ""],  # no termination URI: invalid
]


def opts(path: Path, url: str, **more: Any) -> RunOptions:
    return RunOptions(file=path, base_url=url, api_key="k", **more)


# -- figures --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_request_log_counts_each_second_and_its_percentiles() -> None:
    clock = Clock()
    log = RequestLog(clock)
    # second 0: five requests of 10..50 ms, one of them a 429; second 2: one with no answer
    for i, status in enumerate([201, 201, 429, 201, 500]):
        began = log.started()
        clock.now += 0.01 * (i + 1)
        log.record(status, began)
        clock.now -= 0.01 * (i + 1) - 0.001
    clock.now = 102.5
    began = log.started()
    clock.now += 0.2
    log.record(None, began)
    figures = log.figures()
    assert figures["responses"] == {"201": 3, "429": 1, "500": 1, "none": 1}
    assert [(s["t"], s["requests"], s["throttled"]) for s in figures["timeline"]] == [
        (0, 5, 1),
        (2, 1, 0),
    ]
    first = figures["timeline"][0]
    assert (first["p50"], first["p95"], first["p99"]) == pytest.approx((0.03, 0.05, 0.05))
    assert figures["timeline"][1]["p99"] == pytest.approx(0.2)
    latency = figures["latency"]
    assert latency is not None
    # the whole run's: within the histogram's 1 % of the exact nearest-rank values
    exact = sorted([0.01, 0.02, 0.03, 0.04, 0.05, 0.2])
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert latency[name] == pytest.approx(percentile(exact, q), rel=0.011)


def test_a_run_sends_its_figures_to_the_summary_json(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key="k", fail_rate=0.3, seed=5)
    path = tmp_path / "n.csv"
    write_numbers(path, 40)
    summary_json = tmp_path / "s.json"
    summary = run_import(opts(path, api.url, summary_json=summary_json, max_attempts=3))
    data = json.loads(summary_json.read_text())
    stats = api.state.stats()
    # the client's figures equal what the server answered, code by code
    assert data["responses"] == stats["by_status"]
    assert sum(data["responses"].values()) == data["requests"] == stats["requests"]
    assert sum(s["requests"] for s in data["timeline"]) == summary.requests
    assert set(data["latency"]) == {"p50", "p95", "p99"}
    assert 0 < data["latency"]["p50"] <= data["latency"]["p95"] <= data["latency"]["p99"]


def test_a_dry_run_has_no_request_figures(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    write_numbers(path, 3)
    summary = run_import(RunOptions(file=path, dry_run=True))
    assert (summary.latency, summary.responses, summary.timeline) == (None, {}, [])


# -- metrics --------------------------------------------------------------------------


def families(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    found = {f.name: f for f in text_string_to_metric_families(text)}
    for family in found.values():
        for sample in family.samples:
            assert sample.timestamp is None  # a textfile carries no timestamps
    return found


def value(found: dict[str, Any], name: str, **labels: str) -> float:
    family = found[name]
    matches = [
        s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, family.samples)
    return float(matches[0])


def test_metrics_file_parses_and_matches_the_results(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key="k", fail_rate=0.25, burst_429_every=7, seed=2)
    path = tmp_path / "n.csv"
    write_numbers(path, 30, extra_rows=BAD_ROWS)
    prom = tmp_path / "bulk.prom"
    before = time.time()
    summary = run_import(
        opts(path, api.url, metrics_file=prom, metrics_labels={"job": "nightly"}, max_attempts=2)
    )
    found = families(prom)
    rows = read_results(tmp_path / "n.results.csv")
    for status in ("imported", "invalid", "failed", "not_attempted"):
        n = sum(r["status"] == status for r in rows)
        assert value(found, "bulk_import_rows", command="run", status=status, job="nightly") == n
    stats = api.state.stats()
    # prometheus_client's parser names a counter's family without its _total
    assert value(found, "bulk_import_requests") == stats["requests"] == summary.requests
    for code, n in stats["by_status"].items():
        assert value(found, "bulk_import_http_responses", code=code) == n
    assert value(found, "bulk_import_throttled") == stats["by_status"]["429"] > 0
    assert value(found, "bulk_import_exit_code") == summary.exit_code == 1
    assert value(found, "bulk_import_duration_seconds") == summary.duration_seconds
    assert value(found, "bulk_import_settled_rate") == summary.settled_rate
    assert value(found, "bulk_import_request_latency_seconds", quantile="0.99") > 0
    assert before <= value(found, "bulk_import_last_run_timestamp_seconds") <= time.time()
    assert "bulk_import_last_success_timestamp_seconds" not in found  # never succeeded
    for family in found.values():
        assert all(s.labels["job"] == "nightly" for s in family.samples)
    assert found["bulk_import_requests"].type == "counter"
    assert found["bulk_import_rows"].type == "gauge"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert prom.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user


def test_last_success_is_kept_when_a_run_does_not_succeed(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key="k")
    prom = tmp_path / "bulk.prom"
    good = tmp_path / "good.csv"
    write_numbers(good, 3)
    assert run_import(opts(good, api.url, metrics_file=prom)).exit_code == 0
    success = value(families(prom), LAST_SUCCESS)
    time.sleep(0.05)
    bad = tmp_path / "bad.csv"
    write_numbers(bad, 2, start=10, extra_rows=BAD_ROWS)
    assert run_import(opts(bad, api.url, metrics_file=prom)).exit_code == 1
    found = families(prom)
    assert value(found, LAST_SUCCESS) == success
    assert value(found, "bulk_import_last_run_timestamp_seconds") > success
    # a run that ends in an error (a missing column: exit 2) says so, and keeps it too
    (tmp_path / "cols.csv").write_text("phoneNumber\n+14155550100\n")
    with pytest.raises(Exception, match="column"):
        run_import(opts(tmp_path / "cols.csv", api.url, metrics_file=prom))
    found = families(prom)
    assert value(found, "bulk_import_exit_code") == 2
    assert value(found, LAST_SUCCESS) == success


def test_metrics_render_escapes_label_values() -> None:
    from bulk_import.record import Summary

    summary = Summary(1, {"imported": 1}, "r.csv", 0, "a", "b", 0.5)
    text = render(summary, {"file": 'a "b"\\c\nd'}, now=1.5)
    found = {f.name: f for f in text_string_to_metric_families(text)}
    sample = found["bulk_import_exit_code"].samples[0]
    assert sample.labels["file"] == 'a "b"\\c\nd'
    assert found[LAST_SUCCESS].samples[0].value == 1.5


@pytest.mark.parametrize("label", ["9job", "__x", "status", "a-b"])
def test_a_bad_metrics_label_is_refused(tmp_path: Path, label: str) -> None:
    path = tmp_path / "n.csv"
    write_numbers(path, 1)
    with pytest.raises(UsageError) as caught:
        run_import(RunOptions(file=path, dry_run=True, metrics_labels={label: "x"}))
    assert caught.value.param == "metrics_labels"
    done = run_cli("run", str(path), "--dry-run", "--metrics-label", f"{label}=x")
    assert done.code == 2, done.stderr
    assert "--metrics-label" in done.stderr
    done = run_cli("run", str(path), "--dry-run", "--metrics-label", "novalue")
    assert done.code == 2, done.stderr
    assert "NAME=VALUE" in done.stderr


# -- pings ----------------------------------------------------------------------------


def test_pings_start_then_the_exit_code_with_the_rows_masked(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    api = sandbox_factory(api_key=API_KEY)
    path = tmp_path / "n.csv"
    write_numbers(path, 5, extra_rows=BAD_ROWS)
    with PingServer() as hc:
        done = run_cli("run", str(path), "--base-url", api.url, "--ping-url", hc.url)
        pings = list(hc.pings)
    assert done.code == 1, done.stderr
    assert [p.path for p in pings] == ["/hc-3f1c/start", "/hc-3f1c/1"]
    rids = [p.query["rid"] for p in pings]
    assert rids[0] == rids[1]
    assert len(rids[0][0]) == 36
    start, end = pings
    assert start.body == ""
    assert start.at < api.state.first_request  # before the first request
    lines = end.body.splitlines()
    assert lines[0] == done.stderr.strip().splitlines()[-1]  # the summary line
    assert lines[2] == "row,phone_number,status,http_status,attempts,error"
    assert [line.split(",")[2] for line in lines[3:]] == ["invalid", "invalid"]
    assert_no_secrets(end.body, done.stdout, done.stderr)
    assert "hc-3f1c" not in done.stderr  # the URL is a capability: never printed


def test_a_dry_run_pings_too_and_an_error_pings_its_code(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    write_numbers(path, 3)
    with PingServer() as hc:
        done = run_cli("run", str(path), "--dry-run", "--ping-url", hc.url)
        assert done.code == 0, done.stderr
        assert hc.paths() == ["/hc-3f1c/start", "/hc-3f1c/0"]
        (tmp_path / "cols.csv").write_text("phoneNumber\n+14155550100\n")
        done = run_cli("run", str(tmp_path / "cols.csv"), "--dry-run", "--ping-url", hc.url)
        assert done.code == 2
        assert hc.paths()[2:] == ["/hc-3f1c/start", "/hc-3f1c/2"]
        assert "missing" in hc.pings[-1].body or "column" in hc.pings[-1].body


def test_a_long_problem_list_is_cut_at_10_kb(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    rows = [[f"41555{i:05d}", "u", PASSWORD, "sip.telnyx.com", "", ""] for i in range(400)]
    write_numbers(path, 0, extra_rows=rows)
    with PingServer() as hc:
        run_import(RunOptions(file=path, dry_run=True, ping_url=hc.url))
        body = hc.pings[-1].body
    assert 10 * 1024 < len(body.encode()) < 11 * 1024
    shown = [line for line in body.splitlines() if ",invalid," in line]
    assert 50 < len(shown) < 400
    assert body.endswith(f"... and {400 - len(shown)} more row(s): see the results file\n")


@pytest.mark.parametrize("kind", ["hangs", "refuses"])
def test_a_ping_that_hangs_or_is_refused_costs_seconds_at_most(
    tmp_path: Path, sandbox_factory: Any, kind: str
) -> None:
    api = sandbox_factory(api_key="k")
    path = tmp_path / "n.csv"
    write_numbers(path, 5)
    said: list[str] = []
    with PingServer(hang=True) as hanging:
        url = hanging.url if kind == "hangs" else refused_url()
        t0 = time.monotonic()
        summary = run_import(opts(path, api.url, ping_url=url), say=said.append)
        took = time.monotonic() - t0
    assert summary.exit_code == 0  # never fails the run
    assert took < 7.0  # two pings of at most 2.5 s each, and the run
    assert len([s for s in said if "ping" in s]) == 2, said
    assert all("hc-" not in s for s in said)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:secretpw@127.0.0.1:1/x", "user name or password"),
        ("http://example.com/x", "plain http"),
        ("ftp://127.0.0.1/x", "not an http(s) URL"),
    ],
)
def test_ping_url_follows_the_base_url_rules(tmp_path: Path, url: str, says: str) -> None:
    path = tmp_path / "n.csv"
    write_numbers(path, 1)
    with pytest.raises(UsageError, match=re.escape(says)):
        run_import(RunOptions(file=path, dry_run=True, ping_url=url))
    done = run_cli("run", str(path), "--dry-run", "--ping-url", url)
    assert done.code == 2, done.stderr
    assert says in done.stderr
    assert "secretpw" not in done.stderr
    assert not (tmp_path / "n.results.csv").exists()  # refused before anything


def test_the_library_prints_nothing_and_reads_no_proxy(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")  # a proxy would refuse: unused
    monkeypatch.setenv("no_proxy", "")
    path = tmp_path / "n.csv"
    write_numbers(path, 2)
    with PingServer() as hc:
        run_import(
            RunOptions(
                file=path,
                dry_run=True,
                ping_url=hc.url,
                metrics_file=tmp_path / "m.prom",
                report=tmp_path / "r.html",
            )
        )
        assert hc.paths() == ["/hc-3f1c/start", "/hc-3f1c/0"]
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert os.path.getsize(tmp_path / "r.html") > 0


def test_export_pings_and_writes_metrics(tmp_path: Path, sandbox_factory: Any) -> None:
    api = sandbox_factory(api_key=API_KEY)
    path = tmp_path / "n.csv"
    write_numbers(path, 3)
    run_import(RunOptions(file=path, base_url=api.url, api_key=API_KEY))
    prom = tmp_path / "export.prom"
    with PingServer() as hc:
        argv = ["export", str(tmp_path / "account.csv"), "--base-url", api.url]
        argv += ["--ping-url", hc.url, "--metrics-file", str(prom)]
        done = run_cli(*argv, "--metrics-label", "job=backup")
        assert done.code == 0, done.stderr
        assert hc.paths() == ["/hc-3f1c/start", "/hc-3f1c/0"]
        assert "exported 3 number(s)" in hc.pings[-1].body
        found = families(prom)
        assert value(found, "bulk_import_rows", command="export", status="exported") == 3
        assert value(found, "bulk_import_exit_code", job="backup") == 0
        assert "bulk_import_requests" not in found  # its list requests are not counted
        # a refused export pings its code, and keeps the last success
        done = run_cli(*argv, env={**os.environ, "SIGMAMIND_API_KEY": "wrong"})
        assert done.code == 3, done.stderr
        assert hc.paths()[2:] == ["/hc-3f1c/start", "/hc-3f1c/3"]
        found = families(prom)
        assert value(found, "bulk_import_exit_code") == 3
        assert LAST_SUCCESS in found
    assert "--report" not in run_cli("export", "--help").stdout


def test_a_run_that_ends_without_a_summary_pings_its_code(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    """A lock held (75), an interrupt (130) and a failing callback (an error: 1): the end
    ping and the metrics say so; the last success stays."""
    from bulk_import.errors import LockedError
    from bulk_import.lock import RunLock

    api = sandbox_factory(api_key="k")
    path = tmp_path / "n.csv"
    write_numbers(path, 3)
    prom = tmp_path / "m.prom"
    assert run_import(opts(path, api.url, metrics_file=prom)).exit_code == 0
    success = value(families(prom), LAST_SUCCESS)

    def interrupt(_row: object) -> None:
        raise KeyboardInterrupt

    def fail(_row: object) -> None:
        raise RuntimeError("callback broke")

    with PingServer() as hc:
        watching = {"metrics_file": prom, "ping_url": hc.url, "resume": False}
        lock = RunLock(tmp_path / "n.results.csv")
        lock.acquire()
        try:
            with pytest.raises(LockedError):
                run_import(opts(path, api.url, **watching))
        finally:
            lock.release()
        assert value(families(prom), "bulk_import_exit_code") == 75
        with pytest.raises(KeyboardInterrupt):  # (a dry run: no event loop to cut)
            run_import(opts(path, api.url, on_row=interrupt, dry_run=True, **watching))
        assert value(families(prom), "bulk_import_exit_code") == 130
        with pytest.raises(RuntimeError):
            run_import(opts(path, api.url, on_row=fail, **watching))
        assert hc.paths() == [
            f"/hc-3f1c/{p}" for p in ("start", "75", "start", "130", "start", "1")
        ]
        assert "internal error: RuntimeError" in hc.pings[-1].body
    found = families(prom)
    assert value(found, "bulk_import_exit_code") == 1
    assert value(found, LAST_SUCCESS) == success


def test_export_from_python_pings_and_measures(tmp_path: Path, sandbox_factory: Any) -> None:
    from bulk_import import ExportOptions, export

    api = sandbox_factory(api_key="k")
    path = tmp_path / "n.csv"
    write_numbers(path, 2)
    run_import(opts(path, api.url))
    prom = tmp_path / "e.prom"
    with PingServer() as hc:
        given = ExportOptions(tmp_path / "a.csv", api.url, "k", metrics_file=prom, ping_url=hc.url)
        assert export(given) == 2
        with pytest.raises(UsageError):
            export(ExportOptions(tmp_path / "a.txt", api.url, "k", ping_url=hc.url))
        assert hc.paths() == [f"/hc-3f1c/{p}" for p in ("start", "0", "start", "2")]
    assert value(families(prom), "bulk_import_rows", status="exported") == 2
    with pytest.raises(UsageError, match="plain http"):
        export(ExportOptions(tmp_path / "a.csv", api.url, "k", ping_url="http://example.com/x"))
