"""The client's own transport writes a request straight to its socket (``_Transport.exchange``):
the same bytes httpx would send, answers read as before, httpx's client never in the way.

Over real loopback HTTP (``hostile_server``), as a run sends them.
"""

from __future__ import annotations

import asyncio
import dataclasses
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


@pytest.mark.parametrize(
    ("status", "reason", "raw"),
    [
        (201, "Created", [(b"Content-Type", b"application/json")]),
        (201, None, [(b"content-type", b"application/json; charset=latin-1")]),
        (409, "Conflict", [(b"Content-Type", b'application/json; charset="utf-8"')]),
        (429, "Too Many", [(b"Retry-After", b"3"), (b"X-RateLimit-Limit", b"100")]),
        (429, "", [(b"retry-after", b"Wed, 21 Oct 2026 07:28:00 GMT")]),
        (503, "Sérvice", [(b"RateLimit", b"limit=10, remaining=0, reset=2")]),
        (
            200,
            "OK",
            [
                (b"RateLimit-Policy", b"100;w=60"),
                (b"ratelimit-policy", b"1000;w=3600"),
                (b"RateLimit", b'"burst";r=5;t=2'),
            ],
        ),
        (502, "Bad", [(b"X-Note", "naïve".encode()), (b"Retry-After", b"1")]),
        (500, "Bad", [(b"X-Note", b"\xff\xfe"), (b"Content-Type", b"text/html; charset=cp1252")]),
        (418, None, []),
    ],
)
def test_the_light_reply_reads_an_answer_as_httpx_does(
    status: int, reason: str | None, raw: list[tuple[bytes, bytes]]
) -> None:
    """``_Reply`` (the default transport's answer) and the ``httpx.Response`` it stands
    for give the same ``Answer`` and the same text: status, reason phrase, headers (any
    case, repeated, not ASCII), charset, Retry-After and rate-limit headers."""
    from bulk_import.api import _decode, _Reply

    body = json.dumps({"message": f"no: {PASSWORD}", "sipPhoneNumber": "+14155550123"})
    content = body.encode("latin-1" if "latin" in str(raw) else "utf-8", errors="replace")
    extensions = {"reason_phrase": reason.encode()} if reason else {}
    full = httpx.Response(
        status, headers=raw, stream=httpx.ByteStream(content), extensions=extensions
    )
    light = _Reply(status, reason, tuple(raw))
    api = SigmaMindAPI("http://127.0.0.1:9", KEY)
    for parse in (True, False):
        want = api._answer(full, content, PASSWORD, parse_record=parse)
        got = api._answer(light, content, PASSWORD, parse_record=parse)
        if want.retry_after is not None and "GMT" in str(raw):
            assert got.retry_after is not None
            assert abs(got.retry_after - want.retry_after) < 5
            want = dataclasses.replace(want, retry_after=None)
            got = dataclasses.replace(got, retry_after=None)
        assert got == want
    assert light.reason_phrase == full.reason_phrase
    assert light.charset_encoding == full.charset_encoding
    assert _decode(content, light) == _decode(content, full)
    assert sorted(light.headers.keys()) == sorted(full.headers.keys())
    for name in ("retry-after", "RateLimit-Policy", "X-NOTE", "content-type"):
        assert light.headers.get(name) == full.headers.get(name)
