"""The sandbox, seen by a real httpx client over loopback HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bulk_import.payloads import PhoneNumberRecord
from bulk_import.sandbox import Fault, SandboxConfig, SandboxServer
from bulk_import.sandbox.faults import FaultDice

KEY = {"X-API-Key": "sandbox-key"}
NUMBER = "+14155552671"
PATH = "/v1/phone-numbers/%2B14155552671"
PASSWORD = "s3cr3t-Pa55word"

Factory = Callable[..., SandboxServer]


def body(number: Any = NUMBER, **extra: Any) -> dict[str, Any]:
    return {
        "phoneNumber": number,
        "trunkUsername": "trunk-user",
        "trunkPassword": PASSWORD,
        "terminationSipURI": "sip.telnyx.com",
        **extra,
    }


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, headers=KEY, timeout=5) as c:
        yield c


def post(c: httpx.Client, payload: Any) -> httpx.Response:
    return c.post("/v1/phone-numbers/import", json=payload)


# -- the API ---------------------------------------------------------------------------------


def test_import_creates_201_with_the_documented_shape(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    r = post(client, body(inboundAgentId="agent-in", outboundPhoneNumber="+14155550000"))
    assert r.status_code == 201
    assert r.json() == {
        "sipPhoneNumber": NUMBER,
        "inboundAgentId": "agent-in",
        "outboundAgentId": None,
        "outboundPhoneNumber": "+14155550000",
        "active": True,
        "terminationSipURI": "sip.telnyx.com",
        "friendlyName": NUMBER,  # defaults to the number
    }
    assert PhoneNumberRecord.model_validate(r.json()).sip_phone_number == NUMBER
    assert "outboundAgentId" not in sandbox.state.bodies[NUMBER]  # the body as sent
    stored = sandbox.state.records[NUMBER]
    assert (stored["trunkUsername"], stored["trunkPassword"]) == ("trunk-user", PASSWORD)
    assert sandbox.state.created[NUMBER] == 1


def test_import_of_a_held_number_is_409(sandbox: SandboxServer, client: httpx.Client) -> None:
    assert post(client, body(friendlyName="first")).status_code == 201
    r = post(client, body(friendlyName="second"))
    assert r.status_code == 409
    assert r.json() == {"message": f"phone number {NUMBER} already exists"}
    assert sandbox.state.records[NUMBER]["friendlyName"] == "first"
    assert sandbox.state.created[NUMBER] == 1


def test_missing_key_is_401_and_wrong_key_403(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.url) as c:
        missing = post(c, body())
        wrong = c.post("/v1/phone-numbers/import", json=body(), headers={"X-API-Key": "nope"})
        listing = c.get("/v1/phone-numbers")
    assert (missing.status_code, wrong.status_code, listing.status_code) == (401, 403, 401)
    assert wrong.json() == {"message": "invalid API key"}
    assert "message" in missing.json()
    assert not sandbox.state.records


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(number="14155552671"), "phoneNumber"),
        (body(trunkPassword="x" * 129), "trunkPassword"),
        (body(terminationSipURI="not a uri"), "terminationSipURI"),
        (body(outboundPhoneNumber="nan"), "outboundPhoneNumber"),
        (body(friendlyName=None), "friendlyName"),  # absent is left out, never null
        (body(inboundAgentId=""), "inboundAgentId"),  # ... nor ""
        (body(extra="field"), "extra"),
        ({k: v for k, v in body().items() if k != "trunkUsername"}, "trunkUsername"),
        (body(number=14155552671), "phoneNumber"),  # a number typed as a number
    ],
)
def test_invalid_body_is_422_naming_the_field_without_the_password(
    sandbox: SandboxServer, client: httpx.Client, payload: Any, field: str
) -> None:
    r = post(client, payload)
    assert r.status_code == 422
    data = r.json()
    assert field in {e["field"] for e in data["errors"]}
    assert field in data["message"]
    assert PASSWORD not in r.text
    assert "x" * 129 not in r.text
    assert not sandbox.state.records


def test_non_json_body_is_400(client: httpx.Client) -> None:
    r = client.post("/v1/phone-numbers/import", content=b"phoneNumber=+1415")
    assert r.status_code == 400
    assert "JSON" in r.json()["message"]


def test_get_list_patch_delete(sandbox: SandboxServer, client: httpx.Client) -> None:
    assert client.get(PATH).status_code == 404
    post(client, body())
    post(client, body(number="+442071838750"))

    assert client.get(PATH).json()["sipPhoneNumber"] == NUMBER
    assert client.get(f"/v1/phone-numbers/{NUMBER}").status_code == 200  # "+" unencoded
    page = client.get("/v1/phone-numbers").json()
    assert page["nextCursor"] is None
    listed = page["data"]
    assert [r["sipPhoneNumber"] for r in listed] == [NUMBER, "+442071838750"]
    assert all("trunkPassword" not in r and "trunkUsername" not in r for r in listed)

    r = client.patch(
        PATH,
        json={
            "friendlyName": "Main line",
            "terminationSipUri": "sip:pbx.example.com:5060",
            "trunkPassword": "new-password",
        },
    )
    assert r.status_code == 200
    assert r.json()["friendlyName"] == "Main line"
    assert r.json()["terminationSipURI"] == "sip:pbx.example.com:5060"
    assert "new-password" not in r.text
    assert sandbox.state.records[NUMBER]["trunkPassword"] == "new-password"

    # The PATCH body spells it terminationSipUri: the import spelling is refused.
    assert client.patch(PATH, json={"terminationSipURI": "sip.x.com"}).status_code == 422
    assert client.patch(PATH, json={"outboundPhoneNumber": "123"}).status_code == 422
    assert client.patch("/v1/phone-numbers/%2B15550000000", json={}).status_code == 404

    assert client.delete(PATH).status_code == 204
    assert client.delete(PATH).status_code == 404
    assert client.get(PATH).status_code == 404
    assert post(client, body()).status_code == 201  # created again: counts twice
    assert sandbox.state.created[NUMBER] == 2


def test_concurrent_imports_of_one_number_store_it_once(sandbox: SandboxServer) -> None:
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=sandbox.url, headers=KEY) as c:
            answers = await asyncio.gather(
                *(c.post("/v1/phone-numbers/import", json=body()) for _ in range(20))
            )
        return sorted(r.status_code for r in answers)

    assert asyncio.run(burst()) == [201] + [409] * 19
    assert sandbox.state.created[NUMBER] == 1


def test_stats_and_reset(sandbox: SandboxServer, client: httpx.Client) -> None:
    post(client, body())
    post(client, body())
    post(client, body(number="bad"))
    client.get("/v1/phone-numbers")
    with httpx.Client(base_url=sandbox.url) as anonymous:  # no key needed, not counted
        stats = anonymous.get("/_sandbox/stats").json()
        assert stats.pop("first_request") <= stats.pop("last_answer")  # monotonic clock
        assert stats == {
            "created": {NUMBER: 1},
            "attempts": {NUMBER: 2, "bad": 1},
            "requests": 4,
            "by_status": {"200": 1, "201": 1, "409": 1, "422": 1},
            "faults": {},
            "records": 1,
            "methods": {"POST": 3, "GET": 1},
            "deleted": {},
            "throttle_episodes": 0,
        }
        assert anonymous.post("/_sandbox/reset").status_code == 204
        assert anonymous.get("/_sandbox/stats").json()["created"] == {}
    assert client.get("/v1/phone-numbers").json() == {"data": [], "nextCursor": None}


def test_reject_all_refuses_every_import_with_400(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    sandbox.state.reject_all = True
    assert post(client, body()).status_code == 400
    assert not sandbox.state.records
    sandbox.state.reset()
    assert post(client, body()).status_code == 201


def test_the_sandbox_fixture_starts_empty(sandbox: SandboxServer, client: httpx.Client) -> None:
    assert sandbox.state.requests == 0
    assert not sandbox.state.records


# -- rate limit and latency ----------------------------------------------------------------


def test_above_the_rate_answers_429_with_retry_after_and_ratelimit_headers(
    sandbox_factory: Factory,
) -> None:
    sb = sandbox_factory(rate=2)  # bucket of 1: the second request in a row is refused
    with httpx.Client(base_url=sb.url, headers=KEY) as c:
        ok = post(c, body())
        limited = post(c, body(number="+14155552672"))
    assert ok.status_code == 201
    assert ok.headers["X-RateLimit-Limit"] == "2"
    assert ok.headers["X-RateLimit-Remaining"] == "0"
    assert float(ok.headers["X-RateLimit-Reset"]) > 0
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"  # whole seconds, rounded up
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"] == "1"  # whole seconds, rounded up
    assert "+14155552672" not in sb.state.records
    assert sb.state.status_counts[429] == 1


@pytest.mark.parametrize(
    ("announce", "on_201", "on_429"), [("429", False, True), ("none", False, False)]
)
def test_rate_headers_only_on_429s_or_never(
    sandbox_factory: Factory, announce: str, on_201: bool, on_429: bool
) -> None:
    sb = sandbox_factory(rate=2, rate_headers=announce)
    with httpx.Client(base_url=sb.url, headers=KEY) as c:
        ok = post(c, body())
        limited = post(c, body(number="+14155552672"))
    assert (ok.status_code, limited.status_code) == (201, 429)
    assert limited.headers["Retry-After"] == "1"
    assert ("X-RateLimit-Limit" in ok.headers) is on_201
    assert ("X-RateLimit-Limit" in limited.headers) is on_429


def test_decimal_retry_after_and_refill(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(rate=10, decimal_retry_after=True)  # bucket of 1
    with httpx.Client(base_url=sb.url, headers=KEY) as c:
        statuses = [c.get("/v1/phone-numbers") for _ in range(2)]
        assert [r.status_code for r in statuses] == [200, 429]
        wait = float(statuses[1].headers["Retry-After"])
        assert 0 < wait <= 0.1
        time.sleep(wait + 0.01)
        assert c.get("/v1/phone-numbers").status_code == 200


def test_latency_delays_every_answer(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(latency_ms=150)
    with httpx.Client(base_url=sb.url, headers=KEY) as c:
        started = time.monotonic()
        assert c.get("/v1/phone-numbers").status_code == 200
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        c.get("/_sandbox/stats")  # inspection is never delayed
        assert time.monotonic() - started < 0.15


# -- faults: what the client sees ----------------------------------------------------------


def send_one(sb: SandboxServer, timeout: float = 5) -> httpx.Response:
    with httpx.Client(base_url=sb.url, headers=KEY, timeout=timeout) as c:
        return post(c, body())


def test_fail_rate_answers_500_and_stores_nothing(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(fail_rate=1)
    assert send_one(sb).status_code == 500
    assert NUMBER not in sb.state.records
    assert sb.state.faults == {Fault.FAIL: 1}


def test_unavailable_rate_answers_503_with_retry_after(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(unavailable_rate=1, fault_retry_after=2)
    r = send_one(sb)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "2")
    assert NUMBER not in sb.state.records


def test_burst_429_every_nth_import(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(burst_429_every=2, fault_retry_after=0.25, decimal_retry_after=True)
    with httpx.Client(base_url=sb.url, headers=KEY) as c:
        answers = [post(c, body(number=f"+1415555000{i}")) for i in range(4)]
    assert [r.status_code for r in answers] == [201, 429, 201, 429]
    assert answers[1].headers["Retry-After"] == "0.250"
    assert sorted(sb.state.created) == ["+14155550000", "+14155550002"]


def test_reset_drops_the_connection_before_storing(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reset_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        send_one(sb)
    assert NUMBER not in sb.state.records
    assert sb.state.faults == {Fault.RESET: 1}
    assert sb.state.attempts[NUMBER] == 1


def test_drop_after_store_loses_the_answer_but_keeps_the_number(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(drop_after_store_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        send_one(sb)
    assert sb.state.created[NUMBER] == 1
    with httpx.Client(base_url=sb.url, headers=KEY) as c:
        assert c.get(PATH).status_code == 200
        assert post(c, body()).status_code == 409  # a retry learns it exists


def test_late_answer_times_the_client_out_but_keeps_the_number(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(late_rate=1, late_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        send_one(sb, timeout=0.2)
    assert sb.state.created[NUMBER] == 1


def test_faults_are_drawn_repeatably_from_the_seed() -> None:
    config = SandboxConfig(fail_rate=0.3, reset_rate=0.3, seed=7)
    draws = [[dice.roll() for _ in range(50)] for dice in (FaultDice(config), FaultDice(config))]
    assert draws[0] == draws[1]
    assert {Fault.FAIL, Fault.RESET, None} == set(draws[0])


def test_fault_rates_must_add_up_to_at_most_one() -> None:
    with pytest.raises(ValueError, match="sum"):
        SandboxConfig(fail_rate=0.6, reset_rate=0.6)
    with pytest.raises(ValueError, match="rate"):
        SandboxConfig(rate=0)
    with pytest.raises(ValueError, match="rate_headers"):
        SandboxConfig(rate=1, rate_headers="sometimes")  # type: ignore[arg-type]


# -- running it --------------------------------------------------------------------------------


def test_factory_servers_are_independent(sandbox_factory: Factory) -> None:
    first, second = sandbox_factory(), sandbox_factory(api_key="other")
    assert first.port != second.port
    with httpx.Client() as c:
        c.post(f"{first.url}/v1/phone-numbers/import", json=body(), headers=KEY)
        r = c.get(f"{second.url}/v1/phone-numbers", headers={"X-API-Key": "other"})
    assert r.json() == {"data": [], "nextCursor": None}
    assert first.state.created[NUMBER] == 1


def test_runs_in_its_own_process() -> None:
    command = [sys.executable, "-m", "bulk_import.sandbox", "--port", "0", "--api-key", "k"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("sandbox listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            r = httpx.post(
                f"{url}/v1/phone-numbers/import", json=body(), headers={"X-API-Key": "k"}
            )
            assert r.status_code == 201
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_the_cli_parser_does_not_import_the_web_stack() -> None:
    code = (
        "import sys; from bulk_import.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
