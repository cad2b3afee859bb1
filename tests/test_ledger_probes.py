"""Adversarial probes of the ledger (docs/contract.md, "A batch is a ledger"), over real
loopback HTTP against the sandbox with its faults: after ``run`` then ``undo`` the
account holds exactly what it held before the batch, and no row that this batch
created is reported as anything but created (or in doubt)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from conftest import SandboxFactory

from bulk_import.sandbox import SandboxConfig
from bulk_import.sandbox.faults import FaultDice

from support import API_KEY, read_results, run_cli, write_numbers


def _visible(server) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    return {
        n: {k: v for k, v in r.items() if "assword" not in k}
        for n, r in server.state.records.items()
    }


def _base(server, out: Path) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--base-url", server.url, "--allow-insecure-http", "--no-progress", "-o", str(out)]


def _no_faults(server) -> None:  # type: ignore[no-untyped-def]
    """The account as it is, answered faithfully from now on (undo's view is not probed)."""
    server.state.dice = FaultDice(SandboxConfig())


def _preload(path: Path, src: Path, same: int, other: int) -> None:
    """The first ``same`` rows of ``src`` as they are, the next ``other`` renamed."""
    with src.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        w.writerows(rows[1 : 1 + same])
        for r in rows[1 + same : 1 + same + other]:
            w.writerow([*r[:4], "Other " + r[4], *r[5:]])


@pytest.mark.parametrize("seed", [1, 2])
def test_run_skip_then_undo_with_faults_restores_the_account(
    tmp_path: Path, sandbox_factory: SandboxFactory, seed: int
) -> None:
    """Holds today: 30 rows, 10 already held with the same values, 5 with others."""
    src = tmp_path / "in.csv"
    write_numbers(src, 30)
    pre = tmp_path / "pre.csv"
    _preload(pre, src, 10, 5)
    server = sandbox_factory(
        api_key=API_KEY, preload=pre, seed=seed, reset_rate=0.2, drop_after_store_rate=0.2
    )
    before = _visible(server)
    out = tmp_path / "res.csv"
    run = run_cli("run", str(src), *_base(server, out), "--max-attempts", "8")
    assert "Traceback" not in run.stderr
    for row in read_results(out):
        if row["phone_number"] in before:
            assert row["status"] != "imported", row
    undo = run_cli("undo", str(out), "--yes", *_base(server, tmp_path / "undo.csv"))
    assert undo.code == 0, undo.stderr
    assert _visible(server) == before
    again = run_cli("undo", str(out), "--yes", *_base(server, tmp_path / "undo2.csv"))
    assert again.code == 0, again.stderr
    assert {r["status"] for r in read_results(tmp_path / "undo2.csv")} == {"already_undone"}
    assert _visible(server) == before


def _undo_in_doubt_then_resume_then_undo(
    tmp_path: Path,
    server: Any,
    src: Path,
    out: Path,
    *run_extra: str,
) -> None:
    """``undo`` straight after the run leaves each number whose write is in doubt and
    says to ``--resume`` first (exit 1); the resume settles them; the undo after it
    leaves the account as it was before the batch (empty here)."""
    held = set(server.state.records)
    assert held, "the seed no longer stores a number: pick another"
    _no_faults(server)
    before = _visible(server)
    undo = run_cli("undo", str(out), "--yes", *_base(server, tmp_path / "undo.csv"))
    assert "Traceback" not in undo.stderr
    assert undo.code == 1, undo.stderr
    imported = {r["phone_number"] for r in read_results(out) if r["status"] == "imported"}
    # what it proved (imported) deleted, nothing touched that it could not prove
    assert _visible(server) == {n: r for n, r in before.items() if n not in imported}
    skipped = [r for r in read_results(tmp_path / "undo.csv") if r["status"] == "skipped"]
    assert skipped, "no row in doubt: the probe no longer probes"
    assert {r["phone_number"] for r in skipped} >= held - imported
    assert all("--resume" in r["error"] for r in skipped), skipped
    resume = run_cli("run", str(src), *_base(server, out), "--resume", *run_extra)
    assert resume.code == 0, resume.stderr
    undo = run_cli("undo", str(out), "--yes", *_base(server, tmp_path / "undo2.csv"))
    assert undo.code == 0, (undo.stderr, read_results(tmp_path / "undo2.csv"))
    assert _visible(server) == {}, read_results(tmp_path / "undo2.csv")


def test_on_existing_update_lost_post_then_lost_patch_is_not_undone_blind(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    """Broke on the first ledger: a number absent before the batch, every write's answer
    lost.  The first POST stores it, the retry's 409 leads to a PATCH whose answer is
    lost too; the row ends ``failed``, in doubt, and ``undo`` left the number, saying
    nothing, exit 0."""
    src = tmp_path / "in.csv"
    write_numbers(src, 3)
    server = sandbox_factory(api_key=API_KEY, seed=0, drop_after_store_rate=1.0)
    out = tmp_path / "res.csv"
    extra = ("--on-existing", "update")
    run = run_cli(
        "run", str(src), *_base(server, out), *extra, "--max-attempts", "3", "--concurrency", "1"
    )
    assert "Traceback" not in run.stderr
    held = set(server.state.records)
    for row in read_results(out):
        if row["phone_number"] in held:  # this batch created it: the results must say so
            assert row["status"] == "imported" or "may have been stored" in row["error"], row
    _undo_in_doubt_then_resume_then_undo(tmp_path, server, src, out, *extra)


@pytest.mark.parametrize("seed", [0, 2])
def test_lost_post_then_exhausted_retries_is_not_a_plain_failure(
    tmp_path: Path, sandbox_factory: SandboxFactory, seed: int
) -> None:
    """Breaks today: a POST stored but its answer lost, the retries then 500 or lost
    until --max-attempts: the row is ``failed`` ("HTTP 500 after 3 attempts") with no
    word of doubt, the journal says the import failed, and ``undo`` leaves the number."""
    src = tmp_path / "in.csv"
    write_numbers(src, 3)
    server = sandbox_factory(api_key=API_KEY, seed=seed, drop_after_store_rate=0.5, fail_rate=0.5)
    out = tmp_path / "res.csv"
    run_cli("run", str(src), *_base(server, out), "--max-attempts", "3", "--concurrency", "1")
    held = set(server.state.records)
    assert held, "the seed no longer stores a number: pick another"
    for row in read_results(out):
        if row["phone_number"] in held:
            assert row["status"] == "imported" or "may have been stored" in row["error"], row


@pytest.mark.parametrize("seed", [0])
def test_undo_right_after_an_in_doubt_failure_says_resume_first(
    tmp_path: Path, sandbox_factory: SandboxFactory, seed: int
) -> None:
    """Broke on the first ledger: the same run, then ``undo`` without a ``--resume``
    between: a row ``failed`` "may have been stored", whose number was known absent
    before the batch, was left in the account with exit 0 and no word."""
    src = tmp_path / "in.csv"
    write_numbers(src, 3)
    server = sandbox_factory(api_key=API_KEY, seed=seed, drop_after_store_rate=0.5, fail_rate=0.5)
    out = tmp_path / "res.csv"
    run_cli("run", str(src), *_base(server, out), "--max-attempts", "3", "--concurrency", "1")
    _undo_in_doubt_then_resume_then_undo(tmp_path, server, src, out)
