"""SigmaMindAPI over httpx.MockTransport (and a few real loopback sockets)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bulk_import.api import (
    Answer,
    AnswerKind,
    SigmaMindAPI,
    parse_rate_limit,
    parse_retry_after,
)
from bulk_import.decide import decide_update
from bulk_import.errors import ApiError, AuthError, ConnectionFailed
from bulk_import.models import RateLimitInfo
from bulk_import.payloads import ImportRequest

KEY = "sk-test-3b9c1d2e7f"
PASSWORD = "Pw-9f8e7d6c5b4a"
NUMBER = "+14155552671"


def request(**extra: str) -> ImportRequest:
    return ImportRequest.model_validate(
        {
            "phoneNumber": NUMBER,
            "trunkUsername": "user",
            "trunkPassword": PASSWORD,
            "terminationSipURI": "sip.telnyx.com",
            **extra,
        }
    )


Handler = Callable[[httpx.Request], httpx.Response]


def call(handler: Handler, method: Callable[[SigmaMindAPI], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with SigmaMindAPI(
            "https://api.example.test/", KEY, transport=httpx.MockTransport(handler)
        ) as api:
            return await method(api)

    return asyncio.run(go())


def answer_to(response: httpx.Response, *, create: bool = True) -> Answer:
    def handler(req: httpx.Request) -> httpx.Response:
        return response

    if create:
        return call(handler, lambda api: api.create(request()))  # type: ignore[no-any-return]
    return call(handler, lambda api: api.get(NUMBER))  # type: ignore[no-any-return]


RECORD = {
    "sipPhoneNumber": NUMBER,
    "active": True,
    "terminationSipURI": "sip.telnyx.com",
    "friendlyName": NUMBER,
}


def test_create_posts_the_json_body_with_the_key_header() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(201, json=RECORD)

    answer = call(handler, lambda api: api.create(request(friendlyName="Main")))
    (req,) = seen
    assert (req.method, str(req.url)) == (
        "POST",
        "https://api.example.test/v1/phone-numbers/import",
    )
    assert req.headers["X-API-Key"] == KEY
    assert json.loads(req.content) == {
        "phoneNumber": NUMBER,
        "trunkUsername": "user",
        "trunkPassword": PASSWORD,
        "terminationSipURI": "sip.telnyx.com",
        "friendlyName": "Main",
    }
    assert answer.kind is AnswerKind.OK
    assert answer.ok
    assert answer.status == 201
    assert answer.record is not None
    assert answer.record.sip_phone_number == NUMBER


def test_number_paths_are_url_encoded_and_patch_spells_the_uri_field() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=RECORD)

    async def calls(api: SigmaMindAPI) -> None:
        await api.get(NUMBER)
        # the body an update sends: every field differs from an empty record
        await api.patch(NUMBER, decide_update(request().to_json(), {}).body, secret=PASSWORD)
        await api.delete(NUMBER)

    call(handler, calls)
    assert [(r.method, r.url.raw_path) for r in seen] == [
        ("GET", b"/v1/phone-numbers/%2B14155552671"),
        ("PATCH", b"/v1/phone-numbers/%2B14155552671"),
        ("DELETE", b"/v1/phone-numbers/%2B14155552671"),
    ]
    body = json.loads(seen[1].content)
    assert body["terminationSipUri"] == "sip.telnyx.com"
    assert "phoneNumber" not in body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "phoneNumber is invalid"}, "phoneNumber is invalid"),
        ({"error": "bad trunk"}, "bad trunk"),
        ({"error": {"code": "E1", "message": "nested"}}, "nested"),
        (
            {"detail": [{"loc": ["body", "phoneNumber"], "msg": "bad format"}]},
            "phoneNumber: bad format",
        ),
        (
            {"errors": {"phoneNumber": ["is invalid", "too short"]}},
            "phoneNumber: is invalid; too short",
        ),
        (
            {"errors": [{"field": "trunkUsername", "message": "required"}]},
            "trunkUsername: required",
        ),
        (
            {"statusCode": 400, "message": ["a is bad", "b is bad"], "error": "Bad Request"},
            "a is bad; b is bad; Bad Request",
        ),
        (
            {"message": "invalid request", "errors": [{"field": "x", "message": "y"}]},
            "invalid request; x: y",
        ),
        (["first", "second"], "first; second"),
        ({"code": 7}, '{"code":7}'),
    ],
)
def test_message_is_one_line_from_any_json_shape(body: Any, expected: str) -> None:
    answer = answer_to(httpx.Response(400, json=body))
    assert answer.message == expected
    assert answer.kind is AnswerKind.REJECTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Something   went\nwrong", "Something went wrong"),
        (
            "<html><head><title>502 Bad Gateway</title></head><body>x</body></html>",
            "502 Bad Gateway",
        ),
        ("", "Bad Request"),
    ],
)
def test_message_from_a_non_json_body(text: str, expected: str) -> None:
    assert answer_to(httpx.Response(400, text=text)).message == expected


def test_message_is_trimmed() -> None:
    message = answer_to(httpx.Response(422, json={"message": "x" * 500})).message
    assert len(message) == 200
    assert message.endswith("...")
    assert message.isascii()


def test_secrets_are_scrubbed_from_messages_even_when_trimmed() -> None:
    body = {"message": f"{'y' * 190} trunk {PASSWORD} rejected for key {KEY}"}
    answer = answer_to(httpx.Response(400, json=body))
    assert PASSWORD not in answer.message
    assert PASSWORD[:8] not in answer.message
    answer = answer_to(httpx.Response(400, text=f"bad password {PASSWORD}, key {KEY}"))
    assert answer.message == "bad password ***, key ***"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, RECORD, AnswerKind.OK),
        (409, {"message": "conflict"}, AnswerKind.EXISTS),
        (400, {"message": "Phone number already exists"}, AnswerKind.EXISTS),
        (
            422,
            {"errors": [{"field": "phoneNumber", "message": "is already registered"}]},
            AnswerKind.EXISTS,
        ),
        (422, {"message": "outboundPhoneNumber does not exist"}, AnswerKind.REJECTED),
        (400, {"message": "bad"}, AnswerKind.REJECTED),
        (401, {"message": "no key"}, AnswerKind.AUTH),
        (403, {"message": "bad key"}, AnswerKind.AUTH),
        (404, {"message": "not found"}, AnswerKind.NOT_FOUND),
        (429, {"message": "slow down"}, AnswerKind.THROTTLED),
        (503, {"message": "down"}, AnswerKind.SERVER),
        (418, {"message": "teapot"}, AnswerKind.REJECTED),
    ],
)
def test_kind_of_an_answer(status: int, body: Any, kind: AnswerKind) -> None:
    assert answer_to(httpx.Response(status, json=body)).kind is kind


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (501, False),
        (400, False),
        (409, False),
        (422, False),
    ],
)
def test_which_answers_are_retryable(status: int, retryable: bool) -> None:
    assert answer_to(httpx.Response(status)).retryable is retryable


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    answer = answer_to(httpx.Response(429, headers={"Retry-After": "3"}))
    assert answer.retry_after == 3.0
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 30.0
    earlier = format_datetime(datetime(2025, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0
    assert parse_retry_after("1.5") == 1.5
    for junk in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(junk) is None


def test_rate_limit_headers() -> None:
    answer = answer_to(
        httpx.Response(
            200,
            json=RECORD,
            headers={
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "7",
                "X-RateLimit-Reset": "0.25",
            },
        )
    )
    assert answer.rate_limit == RateLimitInfo(limit=100, remaining=7, reset=0.25)
    epoch = httpx.Headers({"X-RateLimit-Reset": "1700000010"})
    assert parse_rate_limit(epoch, now=1_700_000_000.0) == RateLimitInfo(reset=10.0)
    assert parse_rate_limit(httpx.Headers({})) is None


@pytest.mark.parametrize(
    ("error", "maybe_sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("no connection"), False),
        (httpx.ReadTimeout("slow answer"), True),
        (httpx.WriteTimeout("slow send"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
)
def test_transport_errors_become_connection_failed(error: Exception, maybe_sent: bool) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(ConnectionFailed) as raised:
        call(handler, lambda api: api.create(request()))
    assert raised.value.maybe_sent is maybe_sent
    assert raised.value.__cause__ is error


def test_connection_failed_messages_are_scrubbed() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"boom {KEY} {PASSWORD}")

    with pytest.raises(ConnectionFailed) as raised:
        call(handler, lambda api: api.create(request()))
    assert KEY not in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_the_key_is_never_shown() -> None:
    api = SigmaMindAPI("https://api.example.test", KEY)
    assert KEY not in repr(api)
    assert KEY not in str(api)
    asyncio.run(api.aclose())
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize("body", [[RECORD], {"data": [RECORD]}])
def test_list_reads_a_list_or_a_wrapped_list(body: Any) -> None:
    records = call(lambda req: httpx.Response(200, json=body), lambda api: api.list())
    assert [r.sip_phone_number for r in records] == [NUMBER]


def test_list_raises_unless_2xx() -> None:
    with pytest.raises(AuthError):
        call(lambda req: httpx.Response(401), lambda api: api.list())
    with pytest.raises(ApiError):
        call(lambda req: httpx.Response(500), lambda api: api.list())


# -- the default transport (`_http`) over real sockets -----------------------------------


async def _serve(behaviour: str, handlers: set[asyncio.Task[Any]]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.read(65536)
            if behaviour == "hang":
                await asyncio.sleep(2)
        finally:
            writer.close()
            await writer.wait_closed()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _stop(server: asyncio.Server, handlers: set[asyncio.Task[Any]]) -> None:
    """Close the server and every connection it accepted (a hanging one is cancelled)."""
    server.close()
    await server.wait_closed()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


@pytest.mark.parametrize(("behaviour", "maybe_sent"), [("close", True), ("hang", True)])
def test_default_transport_classifies_a_lost_answer_as_maybe_sent(
    behaviour: str, maybe_sent: bool
) -> None:
    async def go() -> ConnectionFailed:
        handlers: set[asyncio.Task[Any]] = set()
        server = await _serve(behaviour, handlers)
        port = server.sockets[0].getsockname()[1]
        try:
            async with SigmaMindAPI(f"http://127.0.0.1:{port}", KEY, timeout=0.3) as api:
                with pytest.raises(ConnectionFailed) as raised:
                    await api.create(request())
                return raised.value
        finally:
            await _stop(server, handlers)

    failure = asyncio.run(go())
    assert failure.maybe_sent is maybe_sent


def test_default_transport_classifies_a_refused_connection_as_not_sent() -> None:
    async def go() -> ConnectionFailed:
        handlers: set[asyncio.Task[Any]] = set()
        server = await _serve("close", handlers)
        port = server.sockets[0].getsockname()[1]
        await _stop(server, handlers)
        async with SigmaMindAPI(f"http://127.0.0.1:{port}", KEY, timeout=0.3) as api:
            with pytest.raises(ConnectionFailed) as raised:
                await api.create(request())
            return raised.value

    failure = asyncio.run(go())
    assert failure.maybe_sent is False
    assert "could not connect" in str(failure)


def test_default_transport_against_the_sandbox(sandbox: Any) -> None:
    async def go() -> tuple[Answer, Answer, Answer]:
        async with SigmaMindAPI(sandbox.url, "sandbox-key") as api:
            return (await api.create(request()), await api.create(request()), await api.get(NUMBER))

    created, again, got = asyncio.run(go())
    assert (created.kind, again.kind, got.kind) == (AnswerKind.OK, AnswerKind.EXISTS, AnswerKind.OK)
    assert got.record is not None
    assert got.record.matches(request())


def test_a_plain_http_client_loads_no_ca_and_an_https_one_verifies() -> None:
    """An ``http://`` base URL makes no TLS connection: its transport's context trusts no
    CA (the 20 ms of loading them are not paid) and still verifies, so a TLS connection
    would be refused, never let through; an ``https://`` one gets httpx's verified default."""
    import ssl

    from bulk_import.api import _Transport

    plain = SigmaMindAPI("http://127.0.0.1:9", KEY)._transport
    secure = SigmaMindAPI("https://api.example.test", KEY)._transport
    assert isinstance(plain, _Transport)
    assert isinstance(secure, _Transport)
    assert plain.ssl_context.cert_store_stats()["x509_ca"] == 0
    assert plain.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert plain.ssl_context.check_hostname
    assert secure.ssl_context.cert_store_stats()["x509_ca"] > 0
    assert secure.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert secure.ssl_context.check_hostname
