"""submit: scripted scenarios over httpx.MockTransport, then the real sandbox over loopback."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from bulk_import.api import SigmaMindAPI
from bulk_import.defaults import MAX_ATTEMPTS
from bulk_import.errors import AuthError, UnreachableError
from bulk_import.models import Job, Kept, Record, RowResult, Status
from bulk_import.payloads import ImportRequest
from bulk_import.ratelimit import RateLimiter
from bulk_import.retry import RetryPolicy
from bulk_import.submit import SubmitOptions, SubmitReport, submit

from support import API_KEY, EVERY_FAULT, PASSWORD, FakeTime


def number(i: int) -> str:
    return f"+1415{5000000 + i:07d}"


def job(i: int, **extra: str) -> Job:
    req = ImportRequest.model_validate(
        {
            "phoneNumber": number(i),
            "trunkUsername": f"user{i}",
            "trunkPassword": PASSWORD,
            "terminationSipURI": "sip.telnyx.com",
            **extra,
        }
    )
    return Job(row=i + 2, request=req)


def jobs(n: int) -> list[Job]:
    return [job(i) for i in range(n)]


class FakeAPI:
    """The API behind a MockTransport: stores numbers, answers 409 for a stored one.

    ``script[(method, number)]`` lists faults for that request's next occurrences;
    ``always`` is a fault for every request.  Faults: ``refuse`` (connect error),
    ``timeout`` (read timeout, nothing stored), ``store+drop`` (stored, then the
    connection drops), ``stop`` (set ``stop_event``, then answer normally) or an HTTP
    status, optionally ``:retry_after``.
    """

    def __init__(self, events: list[tuple[str, str]], time: FakeTime) -> None:
        self.events = events
        self.time = time
        self.records: dict[str, dict[str, Any]] = {}
        self.created: Counter[str] = Counter()
        self.script: dict[tuple[str, str], list[str]] = {}
        self.always: str | None = None
        self.times: list[float] = []
        self.stop_event: asyncio.Event | None = None
        self.hang = False

    @property
    def requests(self) -> int:
        return len(self.times)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        num = body.get("phoneNumber") or unquote(request.url.path.rsplit("/", 1)[1])
        self.events.append((request.method, num))
        self.times.append(self.time.now)
        await asyncio.sleep(0)  # let other workers send theirs: requests overlap
        if self.hang:
            await asyncio.Event().wait()
        queue = self.script.get((request.method, num), [])
        fault = queue.pop(0) if queue else self.always
        if fault == "stop":
            assert self.stop_event is not None
            self.stop_event.set()
            fault = None
        if fault == "refuse":
            raise httpx.ConnectError("connection refused")
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out")
        if fault is not None and fault != "store+drop":
            status, _, retry_after = fault.partition(":")
            headers = {"Retry-After": retry_after} if retry_after else {}
            text = f"injected {status} for {PASSWORD}"
            return httpx.Response(int(status), json={"message": text}, headers=headers)
        response = self.normal(request.method, num, body)
        if fault == "store+drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return response

    def normal(self, method: str, num: str, body: dict[str, Any]) -> httpx.Response:
        if method == "POST":
            if num in self.records:
                return httpx.Response(409, json={"message": f"{num} already exists"})
            self.records[num] = {
                "sipPhoneNumber": num,
                "terminationSipURI": body["terminationSipURI"],
                "friendlyName": body.get("friendlyName", num),
            }
            self.created[num] += 1
            return httpx.Response(201, json=self.records[num])
        if num not in self.records:
            return httpx.Response(404, json={"message": "not found"})
        if method == "PATCH":
            self.records[num]["terminationSipURI"] = body["terminationSipUri"]
        return httpx.Response(200, json=self.records[num])


class FakeJournal:
    def __init__(
        self,
        events: list[tuple[str, str]],
        doubtful: Iterable[int] = (),
        existed: dict[str, str] | None = None,
    ) -> None:
        self.events = events
        self.doubtful = set(doubtful)
        #: what the ledger says of a number before the batch (default: the fake account's
        #: numbers when the run starts are "present", every other "absent")
        self.given = dict(existed or {})
        self.present: set[str] = set()

    def ready_now(self, phone: str) -> bool:
        return True

    async def ready(self, phone: str) -> None:
        pass

    def existed(self, phone: str) -> str:
        return self.given.get(phone, "present" if phone in self.present else "absent")

    def created(self, phone: str, fields: Record) -> None:
        self.events.append(("created", phone))

    def sending(self, job: Job) -> None:
        self.events.append(("sending", job.phone_number))

    def keep_before(self, phone: str, record: Record, sent: Record, changed: list[str]) -> None:
        pass

    def before_of(self, phone: str) -> Kept | None:
        return None

    def in_doubt(self, job: Job) -> bool:
        return job.row in self.doubtful


class Harness:
    def __init__(
        self, *, doubtful: Iterable[int] = (), existed: dict[str, str] | None = None
    ) -> None:
        self.events: list[tuple[str, str]] = []
        self.time = FakeTime()
        self.api = FakeAPI(self.events, self.time)
        self.journal = FakeJournal(self.events, doubtful, existed)
        self.results: list[RowResult] = []
        self.report: SubmitReport | None = None

    def run(
        self,
        todo: Iterable[Job],
        *,
        limiter: RateLimiter | None = None,
        stop: asyncio.Event | None = None,
        **options: Any,
    ) -> dict[int, RowResult]:
        self.journal.present = set(self.api.records)

        async def go() -> SubmitReport:
            transport = httpx.MockTransport(self.api.handle)
            async with SigmaMindAPI("https://api.test", API_KEY, transport=transport) as api:
                retry = RetryPolicy(
                    max_attempts=options.pop("max_attempts", MAX_ATTEMPTS),
                    jitter=0.0,
                    sleep=self.time.sleep,
                )
                return await submit(
                    todo,
                    api,
                    SubmitOptions(**options, retry=retry),
                    journal=self.journal,
                    on_result=self.results.append,
                    limiter=limiter or RateLimiter(None, adaptive=False),
                    stop=stop,
                )

        self.report = asyncio.run(go())
        by_row = {r.row: r for r in self.results}
        assert len(by_row) == len(self.results) == self.report.started  # one result per job
        return by_row


def only(results: dict[int, RowResult]) -> RowResult:
    (result,) = results.values()
    return result


# -- outcomes of one job ---------------------------------------------------------------


def test_created_is_imported() -> None:
    h = Harness()
    r = only(h.run([job(0)]))
    assert (r.status, r.sip_phone_number, r.http_status, r.attempts, r.error) == (
        Status.IMPORTED,
        number(0),
        201,
        1,
        "",
    )


def test_a_lost_answer_then_409_on_a_number_absent_before_is_imported_once() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["store+drop"]
    r = only(h.run([job(0)]))
    # The ledger knew it absent before the first POST: the lost POST made it.
    # attempts counts the POST's tries (never above --max-attempts), not the GET that reads
    # what the lost POST stored
    assert (r.status, r.http_status, r.attempts) == (Status.IMPORTED, 200, 2)
    assert r.sip_phone_number == number(0)
    assert not r.in_doubt
    assert h.api.created[number(0)] == 1
    n = number(0)
    assert h.events == [
        ("sending", n),
        ("POST", n),
        ("sending", n),
        ("POST", n),
        ("GET", n),
        ("created", n),
    ]


def test_409_after_a_5xx_is_imported_too() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["store+drop", "503"]
    assert only(h.run([job(0)])).status is Status.IMPORTED


def test_a_number_that_existed_before_is_never_imported_whatever_a_retry_sees() -> None:
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "sip.telnyx.com"}
    h.api.script[("POST", number(0))] = ["500"]
    r = only(h.run([job(0)]))
    assert (r.status, r.http_status, r.error) == (Status.ALREADY_EXISTS, 409, "")


def test_a_lost_post_on_a_number_the_ledger_cannot_tell_about_is_not_known() -> None:
    h = Harness(existed={number(0): "unknown"})
    h.api.script[("POST", number(0))] = ["store+drop"]
    r = only(h.run([job(0)]))
    assert r.status is Status.ALREADY_EXISTS
    assert r.error.startswith("may have been created by this run: not known")


def test_409_not_in_doubt_is_already_exists_without_a_get() -> None:
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "sip.telnyx.com"}
    r = only(h.run([job(0)]))
    assert (r.status, r.http_status, r.attempts) == (Status.ALREADY_EXISTS, 409, 1)
    assert ("GET", number(0)) not in h.events


def test_a_connection_that_never_opened_leaves_no_doubt() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["refuse", "409"]
    r = only(h.run([job(0)]))
    assert (r.status, r.attempts) == (Status.ALREADY_EXISTS, 1)  # a refusal is no attempt
    assert h.report is not None
    assert h.report.requests == 1


def test_in_doubt_from_an_earlier_run_of_a_number_absent_before_is_imported() -> None:
    h = Harness(doubtful=[2], existed={number(0): "absent"})
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "sip.telnyx.com"}
    r = only(h.run([job(0)]))
    assert (r.status, r.http_status, r.attempts) == (Status.IMPORTED, 200, 1)


def test_in_doubt_from_an_earlier_run_of_a_number_there_before_is_already_exists() -> None:
    h = Harness(doubtful=[2], existed={number(0): "present"})
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "sip.telnyx.com"}
    assert only(h.run([job(0)])).status is Status.ALREADY_EXISTS


def test_on_existing_update_patches() -> None:
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "old.example"}
    r = only(h.run([job(0)], on_existing="update"))
    # POST (409), GET of the record, PATCH of only what differs; attempts counts the POST's.
    assert (r.status, r.http_status, r.attempts) == (Status.UPDATED, 200, 1)
    assert h.api.records[number(0)]["terminationSipURI"] == "sip.telnyx.com"
    n = number(0)
    assert h.events == [("sending", n), ("POST", n), ("GET", n), ("sending", n), ("PATCH", n)]
    assert "terminationSipURI: 'old.example' -> 'sip.telnyx.com'" in r.changes


def test_on_existing_fail() -> None:
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0)}
    r = only(h.run([job(0)], on_existing="fail"))
    assert (r.status, r.error) == (Status.FAILED, "already exists (--on-existing fail)")


def test_a_refusal_fails_at_once_with_the_api_message_without_the_password() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["422"]
    r = only(h.run([job(0)]))
    assert (r.status, r.http_status, r.attempts) == (Status.FAILED, 422, 1)
    assert r.error == "injected 422 for ***"


def test_retries_run_out_with_exact_backoff_and_one_bad_row_does_not_abort() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["500"] * 5
    results = h.run(jobs(3), concurrency=1)
    assert results[2].status is Status.FAILED
    assert results[2].error == "HTTP 500 after 5 attempts: injected 500 for ***"
    assert (results[2].http_status, results[2].attempts) == (500, 5)
    assert [results[3].status, results[4].status] == [Status.IMPORTED, Status.IMPORTED]
    assert h.time.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert h.report is not None
    assert h.report.aborted is None


def test_a_retry_waits_the_retry_after() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["503:7"]
    assert only(h.run([job(0)])).status is Status.IMPORTED
    assert h.time.sleeps == [7.0]


# -- the run as a whole ----------------------------------------------------------------


def test_a_rejected_key_aborts_after_at_most_concurrency_requests() -> None:
    h = Harness()
    h.api.always = "401"
    results = h.run(jobs(50), concurrency=4)
    assert h.report is not None
    assert h.api.requests <= 4
    assert h.report.requests == h.api.requests
    assert isinstance(h.report.aborted, AuthError)
    assert str(h.report.aborted) == (
        "the API rejected the key (HTTP 401): check SIGMAMIND_API_KEY or --api-key-file"
    )
    assert {(r.status, r.http_status, r.error) for r in results.values()} == {
        (Status.FAILED, 401, "API key rejected")
    }


def test_an_unreachable_api_aborts_instead_of_failing_every_row() -> None:
    h = Harness()
    h.api.always = "refuse"
    results = h.run(jobs(100), concurrency=4)
    assert h.report is not None
    assert isinstance(h.report.aborted, UnreachableError)
    assert "did not answer" in str(h.report.aborted)
    assert h.report.started == 4
    assert h.api.requests <= 4 * 5
    # Nothing ever left: every started row is not_attempted, with no attempt counted.
    assert [r.status for r in results.values()] == [Status.NOT_ATTEMPTED] * 4
    assert [r.attempts for r in results.values()] == [0] * 4
    assert h.report.requests == 0
    tried = [r for r in results.values() if "could not connect" in r.error]
    assert tried
    assert tried[0].error.startswith("not sent: could not connect")


def test_an_api_failing_every_request_aborts_after_three_rows() -> None:
    h = Harness()
    h.api.always = "503"
    results = h.run(jobs(10), concurrency=1)
    assert h.report is not None
    assert isinstance(h.report.aborted, UnreachableError)
    assert "kept failing" in str(h.report.aborted)
    assert [r.status for r in results.values()] == [Status.FAILED] * 3


def test_a_429_pauses_every_worker_then_everything_is_imported() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["429:2"]
    limiter = RateLimiter(None, clock=h.time.clock, sleep=h.time.sleep, adaptive=False)
    results = h.run(jobs(8), concurrency=4, limiter=limiter)
    assert {r.status for r in results.values()} == {Status.IMPORTED}
    assert h.report is not None
    assert (h.report.throttled, h.report.requests) == (1, 9)
    # the first 4 were in flight together; nothing else was sent during the pause
    assert h.api.times[:4] == [0.0] * 4
    assert min(h.api.times[4:]) >= 2.0


def test_throttling_lowers_the_settled_rate() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["429:0"]
    limiter = RateLimiter(100, clock=h.time.clock, sleep=h.time.sleep)
    h.run(jobs(3), concurrency=1, limiter=limiter)
    assert h.report is not None
    assert h.report.settled_rate is not None
    assert h.report.settled_rate < 100


def test_stop_before_starting_starts_nothing() -> None:
    h = Harness()

    async def stopped() -> asyncio.Event:
        event = asyncio.Event()
        event.set()
        return event

    stop = asyncio.run(stopped())
    assert h.run(jobs(5), stop=stop) == {}
    assert h.report is not None
    assert (h.report.started, h.report.interrupted, h.api.requests) == (0, True, 0)


def test_stop_lets_in_flight_jobs_finish_and_starts_no_more() -> None:
    h = Harness()
    stop = asyncio.Event()
    h.api.stop_event = stop
    h.api.script[("POST", number(2))] = ["stop"]
    results = h.run(jobs(10), concurrency=1, stop=stop)
    assert [r.status for r in results.values()] == [Status.IMPORTED] * 3
    assert h.report is not None
    assert h.report.interrupted


def test_stop_cuts_retries_short() -> None:
    h = Harness()
    stop = asyncio.Event()
    h.api.stop_event = stop
    h.api.script[("POST", number(2))] = ["stop"]  # sets stop while the others are in flight
    h.api.script[("POST", number(0))] = ["503"]  # answered, then no retry
    h.api.script[("POST", number(1))] = ["timeout"]  # never answered: may have been stored
    h.api.script[("POST", number(3))] = ["refuse"]  # never sent: no connection
    results = h.run([job(2), job(0), job(1), job(3)], concurrency=4, stop=stop)
    assert results[4].status is Status.IMPORTED
    assert (results[2].status, results[2].attempts) == (Status.FAILED, 1)
    assert results[2].error == "interrupted (last: HTTP 503: injected 503 for ***)"
    # it left and got no answer: it may have been stored, so it is failed, not "not sent"
    assert (results[3].status, results[3].attempts) == (Status.FAILED, 1)
    assert results[3].error == (
        "interrupted after 1 unanswered attempt(s): may have been stored; --resume checks"
    )
    assert (results[5].status, results[5].attempts) == (Status.NOT_ATTEMPTED, 0)
    assert results[5].error == "interrupted before this row was sent"


def test_jobs_are_pulled_lazily() -> None:
    h = Harness()
    pulled = 0
    stop = asyncio.Event()

    def endless() -> Iterator[Job]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield job(i)

    def on_result(result: RowResult) -> None:
        h.results.append(result)
        assert pulled - len(h.results) < 4  # never more in hand than the workers
        if len(h.results) == 20:
            stop.set()

    async def go() -> SubmitReport:
        transport = httpx.MockTransport(h.api.handle)
        async with SigmaMindAPI("https://api.test", API_KEY, transport=transport) as api:
            return await submit(
                endless(),
                api,
                SubmitOptions(concurrency=4),
                journal=h.journal,
                on_result=on_result,
                stop=stop,
            )

    report = asyncio.run(go())
    assert pulled == report.started == len(h.results)
    assert 20 <= pulled <= 23


def test_cancelling_submit_cancels_the_workers() -> None:
    h = Harness()
    h.api.hang = True

    async def go() -> None:
        transport = httpx.MockTransport(h.api.handle)
        async with SigmaMindAPI("https://api.test", API_KEY, transport=transport) as api:
            task = asyncio.ensure_future(
                submit(
                    jobs(10),
                    api,
                    SubmitOptions(concurrency=2),
                    journal=h.journal,
                    on_result=h.results.append,
                )
            )
            while h.api.requests < 2:
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(go())
    assert h.results == []
    assert ("sending", number(0)) in h.events  # the journal's marks are what survives


def test_an_error_in_on_result_stops_the_run_and_is_raised() -> None:
    h = Harness()

    def broken(result: RowResult) -> None:
        raise OSError("disk full")

    async def go() -> SubmitReport:
        transport = httpx.MockTransport(h.api.handle)
        async with SigmaMindAPI("https://api.test", API_KEY, transport=transport) as api:
            return await submit(
                jobs(50), api, SubmitOptions(concurrency=2), journal=h.journal, on_result=broken
            )

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(go())
    assert h.api.requests <= 2


# -- the real sandbox over loopback ----------------------------------------------------


def run_against(
    url: str,
    todo: list[Job],
    *,
    key: str = "sandbox-key",
    timeout: float = 5.0,
    limiter: RateLimiter | None = None,
    concurrency: int = 16,
    max_attempts: int = 5,
) -> tuple[dict[int, RowResult], SubmitReport]:
    results: list[RowResult] = []

    class NoJournal:
        def sending(self, job: Job) -> None:
            pass

        def keep_before(self, phone: str, record: Record, sent: Record, changed: list[str]) -> None:
            pass

        def before_of(self, phone: str) -> Kept | None:
            return None

        def in_doubt(self, job: Job) -> bool:
            return False

        def ready_now(self, phone: str) -> bool:
            return True

        async def ready(self, phone: str) -> None:
            pass

        def existed(self, phone: str) -> str:
            return "absent"  # every test here starts with an empty sandbox

        def created(self, phone: str, fields: Record) -> None:
            pass

    async def go() -> SubmitReport:
        async with SigmaMindAPI(url, key, timeout=timeout, max_connections=concurrency) as api:
            return await submit(
                todo,
                api,
                SubmitOptions(
                    concurrency=concurrency,
                    retry=RetryPolicy(
                        max_attempts=max_attempts, base_delay=0.01, max_delay=0.2, jitter=0.01
                    ),
                ),
                journal=NoJournal(),
                on_result=results.append,
                limiter=limiter,
            )

    report = asyncio.run(go())
    return {r.row: r for r in results}, report


def test_sandbox_with_lost_and_late_answers_creates_every_number_exactly_once(
    sandbox_factory: Any,
) -> None:
    server = sandbox_factory(
        **EVERY_FAULT,
        seed=7,
    )
    todo = jobs(300)
    results, report = run_against(server.url, todo, timeout=0.5, max_attempts=8)
    assert len(results) == 300
    assert Counter(r.status for r in results.values()) == {Status.IMPORTED: 300}
    created = server.state.created
    assert set(created) == {j.phone_number for j in todo}
    assert set(created.values()) == {1}
    faults = server.state.faults
    assert faults["drop_after_store"] > 0
    assert faults["late"] > 0
    assert any(r.http_status == 200 for r in results.values())  # lost, 409, then read
    assert report.aborted is None


def test_sandbox_rate_limit_is_found_and_everything_is_imported(sandbox_factory: Any) -> None:
    server = sandbox_factory(
        rate=50, burst_429_every=15, fault_retry_after=0.05, decimal_retry_after=True
    )
    results, report = run_against(server.url, jobs(60), limiter=RateLimiter(1000))
    assert Counter(r.status for r in results.values()) == {Status.IMPORTED: 60}
    assert set(server.state.created.values()) == {1}
    assert report.throttled >= 1
    assert report.settled_rate is not None
    assert report.settled_rate <= 50


def test_sandbox_wrong_key_aborts_after_at_most_concurrency_requests(sandbox: Any) -> None:
    results, report = run_against(sandbox.url, jobs(50), key=API_KEY, concurrency=4)
    assert isinstance(report.aborted, AuthError)
    assert sandbox.state.requests <= 4
    outcomes = Counter((r.status, r.http_status) for r in results.values())
    assert outcomes[(Status.FAILED, 403)] >= 1
    assert set(outcomes) <= {(Status.FAILED, 403), (Status.NOT_ATTEMPTED, None)}  # not sent


# --- statuses that do not contradict themselves ---------------------------------------


def test_attempts_never_exceed_max_attempts_in_doubt() -> None:
    """Four 500s, then a 409: the row is in doubt, and the ledger says the number was
    there before.  ``attempts`` counts the POST's tries and stays at --max-attempts."""
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "other"}
    h.api.script[("POST", number(0))] = ["500", "500", "500", "500", "409"]
    r = only(h.run([job(0)], max_attempts=5))
    assert h.api.requests == 5
    assert r.status is Status.ALREADY_EXISTS
    assert r.attempts == 5


def test_attempts_never_exceed_max_attempts_with_a_patch() -> None:
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "old"}
    h.api.script[("POST", number(0))] = ["503", "503", "409"]
    h.api.script[("PATCH", number(0))] = ["503", "503"]
    r = only(h.run([job(0)], max_attempts=3, on_existing="update"))
    assert r.status is Status.UPDATED
    assert h.api.requests == 7  # 3 POST + GET + 3 PATCH
    assert r.attempts <= 3


def test_a_refused_connection_is_not_an_attempt() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["refuse", "refuse"]
    r = only(h.run([job(0)], max_attempts=3))
    assert (r.status, r.attempts) == (Status.IMPORTED, 1)
    assert h.report is not None
    assert h.report.requests == 1


def test_a_row_that_never_connected_is_not_attempted_not_failed() -> None:
    h = Harness()
    h.api.script[("POST", number(0))] = ["refuse", "refuse"]
    r = only(h.run([job(0)], max_attempts=2))
    assert (r.status, r.attempts, r.http_status) == (Status.NOT_ATTEMPTED, 0, None)
    assert r.error == "not sent: could not connect: connection refused (2 tries)"


def test_already_exists_has_the_sip_phone_number() -> None:
    h = Harness()
    h.api.records[number(0)] = {"sipPhoneNumber": number(0), "terminationSipURI": "x"}
    r = only(h.run([job(0)]))
    assert (r.status, r.sip_phone_number) == (Status.ALREADY_EXISTS, number(0))
