"""metrics: the run as a Prometheus textfile (node_exporter's textfile collector).

``render`` turns a ``Summary`` into the text exposition format: ``# HELP``/``# TYPE`` for
each metric, no timestamps, a final newline; ``watch.py`` writes it atomically (a temporary
file in the same directory, renamed over the target), so the collector never reads half a
file.  Every sample carries the labels given (``--metrics-label job=nightly``).

``bulk_import_last_success_timestamp_seconds`` is now when this run succeeded (exit 0),
and otherwise the value the previous file had: a failing run must not hide that the last
success is getting old (docs/architecture.md, "Watching a run").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from .errors import UsageError
from .record import Summary

PREFIX = "bulk_import_"
LAST_SUCCESS = f"{PREFIX}last_success_timestamp_seconds"
#: Label names the metrics use themselves: a ``--metrics-label`` may not take them.
OWN_LABELS = frozenset({"command", "status", "code", "quantile"})
#: The quantile label of each percentile the summary gives.
_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")


def check_labels(labels: Mapping[str, str]) -> None:
    """Label names Prometheus accepts, and none the metrics use themselves."""
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise UsageError(
                f"metrics_labels: {name!r} is not a Prometheus label name",
                hint="letters, digits and _, not starting with a digit or __",
                param="metrics_labels",
            )
        if name in OWN_LABELS:
            raise UsageError(
                f"metrics_labels: {name!r} is a label the metrics use themselves",
                hint="choose another name (job, instance, file, ...)",
                param="metrics_labels",
            )


def previous_success(text: str) -> float | None:
    """The last-success timestamp of an earlier metrics file, if it has one."""
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == LAST_SUCCESS:
            try:
                value = float(match.group(3))
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def render(
    summary: Summary,
    labels: Mapping[str, str],
    *,
    now: float,
    previous: str | None = None,
) -> str:
    """The metrics file's text for ``summary``, finished at Unix time ``now``; ``previous``
    is the earlier file's text (for the last success)."""
    out: list[str] = []

    def metric(
        name: str, kind: str, about: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        full = PREFIX + name
        out.append(f"# HELP {full} {about}")
        out.append(f"# TYPE {full} {kind}")
        for own, value in samples:
            out.append(f"{full}{_labels({**labels, **own})} {_number(value)}")

    command = summary.command
    metric(
        "rows",
        "gauge",
        "Rows of the results file by status, at the end of the last run.",
        [({"command": command, "status": s}, n) for s, n in summary.counts.items()],
    )
    if command != "export":  # an export's list requests are not counted
        metric(
            "requests_total",
            "counter",
            "HTTP requests the last run sent, every kind and retry.",
            [({}, summary.requests)],
        )
        metric(
            "http_responses_total",
            "counter",
            "HTTP answers of the last run by status code (none: no answer came).",
            [({"code": code}, n) for code, n in summary.responses.items()],
        )
        metric(
            "throttled_total",
            "counter",
            "429 answers the last run got.",
            [({}, summary.throttled)],
        )
        if summary.latency is not None:
            metric(
                "request_latency_seconds",
                "gauge",
                "Request latency percentiles of the last run.",
                [({"quantile": _QUANTILES[name]}, v) for name, v in summary.latency.items()],
            )
    metric(
        "duration_seconds",
        "gauge",
        "How long the last run took.",
        [({}, summary.duration_seconds)],
    )
    if summary.settled_rate is not None:
        metric(
            "settled_rate",
            "gauge",
            "Requests per second in force at the end of the last run.",
            [({}, summary.settled_rate)],
        )
    metric(
        "exit_code",
        "gauge",
        "The last run's exit code (0: every row done).",
        [({}, summary.exit_code)],
    )
    metric(
        "last_run_timestamp_seconds",
        "gauge",
        "When the last run ended (Unix time).",
        [({}, now)],
    )
    success = now if summary.exit_code == 0 else previous_success(previous or "")
    if success is not None:
        metric(
            "last_success_timestamp_seconds",
            "gauge",
            "When a run last ended with exit code 0 (Unix time).",
            [({}, success)],
        )
    return "\n".join(out) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inside = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inside + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
