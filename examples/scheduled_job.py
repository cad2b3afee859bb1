"""A scheduled import, as a job runner calls it: cron, a systemd timer, an Airflow
``PythonOperator`` or a Prefect ``@task`` (call ``nightly_import``; in an async flow,
await ``nightly_import_async``).

It uses only the public names of ``bulk_import``, and ``mypy --strict`` checks it.  Run it
as a script to try it against a local emulator of the API::

    python examples/scheduled_job.py samples/phone_numbers.csv
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from bulk_import import (
    BulkImportError,
    RowResult,
    RunOptions,
    SandboxConfig,
    SandboxServer,
    Status,
    Summary,
    arun_import,
    run_import,
)

log = logging.getLogger("nightly_import")
PROBLEMS = (Status.INVALID, Status.FAILED, Status.NOT_ATTEMPTED)


def options(path: Path, api_key: str, base_url: str, problems: list[RowResult]) -> RunOptions:
    def on_row(row: RowResult) -> None:  # each row this run finishes, as it is recorded
        if row.status in PROBLEMS:
            problems.append(row)

    return RunOptions(
        file=path,
        api_key=api_key,  # the job's own secret store, not the environment, supplies it
        base_url=base_url,
        rate=20,
        resume=True,  # a retried job picks up where the last attempt stopped
        on_row=on_row,
    )


def check(summary: Summary, problems: list[RowResult]) -> Summary:
    for row in problems:
        log.warning("row %d %s: %s %s", row.row, row.phone_number, row.status, row.error)
    if summary.exit_code != 0:  # what the CLI would exit with: 0 only if every row is done
        raise RuntimeError(f"bulk import not clean: {summary.line()}; see {summary.results}")
    return summary


def nightly_import(path: Path, *, api_key: str, base_url: str) -> Summary:
    problems: list[RowResult] = []
    try:
        summary = run_import(options(path, api_key, base_url, problems))
    except BulkImportError as exc:  # nothing usable: the key, the file, the API
        raise RuntimeError(f"bulk import failed (exit {exc.exit_code}): {exc}") from exc
    return check(summary, problems)


async def nightly_import_async(path: Path, *, api_key: str, base_url: str) -> Summary:
    problems: list[RowResult] = []
    summary = await arun_import(options(path, api_key, base_url, problems))
    return check(summary, problems)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # else a line per request
    path = Path(argv[0])
    with SandboxServer(SandboxConfig(api_key="demo-key")) as sandbox:
        try:
            summary = nightly_import(path, api_key="demo-key", base_url=sandbox.url)
            log.info("%s", summary.line())
            # Run again (from an event loop this time): every row is done, nothing is sent.
            again = asyncio.run(
                nightly_import_async(path, api_key="demo-key", base_url=sandbox.url)
            )
            log.info("again: %s", again.line())
        except RuntimeError as exc:  # the job fails: the scheduler retries or alerts
            log.error("%s", exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
