"""Requests, over real loopback HTTP: none resent unseen by the HTTP layer, none made of a
number that is not E.164."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from hostile_server import Reply

from bulk_import.api import SigmaMindAPI

from support import API_KEY, number, read_results, run_cli, write_numbers


@pytest.fixture
def api(sandbox_factory: Any) -> Any:
    return sandbox_factory(api_key=API_KEY)


# -- the HTTP layer never resends a request by itself ---------------------------------------


def test_undo_with_every_delete_answer_lost_counts_every_delete(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    clean = sandbox_factory(api_key=API_KEY)
    file = tmp_path / "numbers.csv"
    write_numbers(file, 12)
    assert run_cli("run", str(file), "--base-url", clean.url, "--no-progress").code == 0
    lossy = sandbox_factory(api_key=API_KEY, drop_after_store_rate=1.0, seed=3)
    lossy.state.records.update(clean.state.records)
    results = tmp_path / "numbers.results.csv"
    done = run_cli(
        "undo", str(results), "--base-url", lossy.url, "--yes", "--no-progress",
        "--max-attempts", "3", "--concurrency", "2", "--other-account",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    rows = read_results(tmp_path / "numbers.results.undo.csv")
    assert [r["status"] for r in rows] == ["deleted"] * 12, rows
    assert all(1 <= int(r["attempts"]) <= 3 for r in rows)
    # What the account saw is what the results say was sent: no DELETE went uncounted.
    assert lossy.state.methods["DELETE"] == sum(int(r["attempts"]) for r in rows)
    assert lossy.state.records == {}


def test_the_client_never_resends_a_get_on_a_dropped_connection(hostile: Any) -> None:
    hostile.answer = lambda seen: _drop()

    async def go() -> None:
        async with SigmaMindAPI(hostile.url, API_KEY, timeout=5) as client:
            from bulk_import.errors import ConnectionFailed

            with pytest.raises(ConnectionFailed):
                await client.get(number(1))

    asyncio.run(go())
    assert len(hostile.requests) == 1


def _drop() -> Reply:
    return Reply(0, drop=True)


# -- no request for a number that is not E.164 ----------------------------------------------


@pytest.mark.parametrize("bad", ["", "+", "4155552671", "+1 415 555", "../import", "+1415%2F"])
def test_the_client_builds_no_path_for_a_number_that_is_not_e164(hostile: Any, bad: str) -> None:
    from bulk_import.errors import NotANumberError

    async def go() -> None:
        async with SigmaMindAPI(hostile.url, API_KEY, timeout=5) as client:
            for call in (client.get, client.delete):
                with pytest.raises(NotANumberError):
                    await call(bad)
            with pytest.raises(NotANumberError):
                await client.patch(bad, {"friendlyName": "x"})

    asyncio.run(go())
    assert hostile.requests == []


def test_undo_of_a_results_row_with_an_empty_number_sends_nothing_for_it(
    api: Any, hostile: Any, tmp_path: Path
) -> None:
    file = tmp_path / "numbers.csv"
    write_numbers(file, 3)
    assert run_cli("run", str(file), "--base-url", api.url, "--no-progress").code == 0
    results = tmp_path / "numbers.results.csv"
    rows = read_results(results)
    rows[1]["phone_number"] = ""
    with results.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    hostile.answer = lambda seen: Reply(204)
    done = run_cli(
        "undo", str(results), "--base-url", hostile.url, "--yes", "--no-progress",
        "--other-account",
    )  # fmt: skip
    assert all(seen.path != "/v1/phone-numbers/" for seen in hostile.requests)
    # The deletes run concurrently: their order is not part of the promise.
    paths = sorted(seen.path for seen in hostile.requests if seen.method == "DELETE")
    assert paths == [f"/v1/phone-numbers/%2B{n[1:]}" for n in (number(0), number(2))], (
        paths,
        done.stderr,
    )
    undone = read_results(tmp_path / "numbers.results.undo.csv")
    assert all(r["status"] != "deleted" for r in undone if r["row"] == "3"), undone
