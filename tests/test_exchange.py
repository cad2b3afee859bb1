"""The client's own transport sends a request straight to aiohttp (``_Transport.exchange``):
the same bytes httpx would send, answers read as before, httpx's client never in the way.

Over real loopback HTTP (``hostile_server``), as a run sends them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
import pytest
from hostile_server import HostileServer, Reply, Seen, created

from bulk_import.api import Answer, SigmaMindAPI
from bulk_import.payloads import ImportRequest

KEY = "exchange-test-key"
PASSWORD = "p,\"';!é"


def request() -> ImportRequest:
    return ImportRequest.model_validate(
        {
            "phoneNumber": "+14155550123",
            "trunkUsername": "trunk",
            "trunkPassword": PASSWORD,
            "terminationSipURI": "sip:pbx.example.com",
            "friendlyName": "Front désk",
            "outboundPhoneNumber": "+14155550124",
        }
    )


def send(server: HostileServer, how: str) -> tuple[Answer, httpx.Request]:
    """One request over the default transport, and the request httpx would have sent."""

    async def go() -> tuple[Answer, httpx.Request]:
        async with SigmaMindAPI(server.url, KEY) as api:
            if how == "create":
                body: Any = request().to_json()
                built = api._client.build_request("POST", "/v1/phone-numbers/import", json=body)
                answer = await api.create(request())
            else:
                built = api._client.build_request("GET", "/v1/phone-numbers/%2B14155550123")
                answer = await api.get("+14155550123")
            return answer, built

    return asyncio.run(go())


@pytest.mark.parametrize("how", ["create", "get"])
def test_the_request_is_what_httpx_would_send(how: str) -> None:
    with HostileServer() as server:
        answer, built = send(server, how)
    assert answer.status == 201
    (seen,) = server.requests
    headers, content = dict(built.headers.items()), built.content
    assert {k: v for k, v in seen.headers.items() if k != "content-length"} == {
        k: v for k, v in headers.items() if k != "content-length"
    }
    assert seen.headers.get("content-length") == headers.get("content-length")
    assert seen.body == (json.loads(content) if content else {})
    assert seen.method == built.method
    assert seen.path == built.url.raw_path.decode()


def test_httpx_client_send_is_not_on_the_way(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("httpx.AsyncClient.send was called")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    with HostileServer() as server:
        answer, _ = send(server, "create")
    assert answer.ok
    assert answer.record is not None
    assert answer.record.sip_phone_number == "+14155550123"


def test_a_compressed_answer_is_decoded_and_masked() -> None:
    def gzipped(seen: Seen) -> Reply:
        data = {"message": f"bad password {PASSWORD} for key {KEY}"}
        body = gzip.compress(json.dumps(data).encode())
        return Reply(400, body, headers={"Content-Encoding": "gzip"})

    with HostileServer(gzipped) as server:
        answer, _ = send(server, "create")
    assert answer.status == 400
    assert answer.message == "bad password *** for key ***"


def test_an_answer_record_keeps_its_fields() -> None:
    def full(seen: Seen) -> Reply:
        return created(seen, friendlyName="Front désk", outboundPhoneNumber=12025550100)

    with HostileServer(full) as server:
        answer, _ = send(server, "create")
    assert answer.record is not None
    assert answer.record.friendly_name == "Front désk"
    assert answer.record.outbound_phone_number == "12025550100"  # a number becomes text
    assert answer.record.active is True
