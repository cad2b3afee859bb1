"""The default transport's own paths (``bulk_import/_http.py``), over real loopback sockets:
the pool (reuse, at most ``max_connections``, idle expiry, a connection the server closed
between requests), the answer's framings (chunked, to close, interim 1xx, ``Connection:
close``, a cut body), capped bodies, compressed ones, and the deadline.

``Script`` is an asyncio server that reads each request by its ``Content-Length`` and
writes the bytes its ``answer`` gives, so each test sets the exact bytes on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import ssl
import subprocess
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulk_import import api as api_module
from bulk_import._http import Transport
from bulk_import.api import ERROR_BODY_LIMIT, SigmaMindAPI
from bulk_import.errors import ConnectionFailed
from bulk_import.payloads import ImportRequest

KEY = "http-test-key"
NUMBER = "+14155550123"
RECORD = json.dumps({"sipPhoneNumber": NUMBER, "active": True}).encode()


def request() -> ImportRequest:
    return ImportRequest.model_validate(
        {
            "phoneNumber": NUMBER,
            "trunkUsername": "trunk",
            "trunkPassword": "pw-secret",
            "terminationSipURI": "sip:pbx.example.com",
        }
    )


def ok(body: bytes = RECORD, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    return head + b"".join(extra) + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


#: What to write for the n-th request (counted over all connections); None closes.
Answer = Callable[[int], Awaitable[bytes | None]]


class Script:
    """An HTTP/1.1 server on 127.0.0.1 that writes what ``answer`` gives, and counts."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests = 0
        self.most_open = 0
        self._open = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Script:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._open += 1
        self.most_open = max(self.most_open, self._open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                try:
                    data = await self.answer(self.requests)
                except asyncio.CancelledError:  # the test is over (or drops it)
                    return
                if data is None:
                    return
                writer.write(data)
                await writer.drain()
        finally:
            self._open -= 1
            writer.close()


def run(answer: Answer, use: Callable[[SigmaMindAPI, Script], Awaitable[Any]], **kw: Any) -> Any:
    async def go() -> Any:
        async with Script(answer) as script, SigmaMindAPI(script.url, KEY, **kw) as api:
            return await use(api, script)

    return asyncio.run(go())


def always(data: bytes) -> Answer:
    async def answer(n: int) -> bytes:
        return data

    return answer


# -- the pool ----------------------------------------------------------------------------


def test_a_kept_alive_connection_is_reused() -> None:
    async def use(api: SigmaMindAPI, script: Script) -> tuple[int, int]:
        for _ in range(5):
            assert (await api.create(request())).ok
        return script.connections, script.requests

    assert run(always(ok()), use) == (1, 5)


def test_at_most_max_connections_are_opened() -> None:
    async def slow(n: int) -> bytes:
        await asyncio.sleep(0.05)
        return ok()

    async def use(api: SigmaMindAPI, script: Script) -> tuple[int, int]:
        answers = await asyncio.gather(*(api.create(request()) for _ in range(12)))
        assert all(a.ok for a in answers)
        return script.most_open, script.connections

    most_open, connections = run(slow, use, max_connections=3)
    assert most_open == 3
    assert connections == 3


def test_an_idle_connection_is_dropped_after_the_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "KEEPALIVE_EXPIRY", 0.2)

    async def use(api: SigmaMindAPI, script: Script) -> list[int]:
        seen = []
        for pause in (0.0, 0.05, 0.35):
            await asyncio.sleep(pause)
            assert (await api.create(request())).ok
            seen.append(script.connections)
        return seen

    # reused within the expiry, a new one after it
    assert run(always(ok()), use) == [1, 1, 2]


def test_a_connection_the_server_closed_between_requests_is_not_used() -> None:
    async def answer(n: int) -> bytes | None:
        return ok()

    async def use(api: SigmaMindAPI, script: Script) -> tuple[int, int]:
        assert (await api.create(request())).ok
        for task in script._tasks:  # the server closes the idle connection
            task.cancel()
        await asyncio.sleep(0.05)
        assert (await api.create(request())).ok
        return script.connections, script.requests

    assert run(answer, use) == (2, 2)


def test_connection_close_and_http_1_0_are_not_kept() -> None:
    answers = [ok(RECORD, b"Connection: close\r\n"), ok().replace(b"HTTP/1.1", b"HTTP/1.0"), ok()]

    async def answer(n: int) -> bytes:
        return answers[min(n, 3) - 1]

    async def use(api: SigmaMindAPI, script: Script) -> int:
        for _ in range(4):
            assert (await api.create(request())).ok
        return script.connections

    assert run(answer, use) == 3  # one for each of the first two, one kept for the rest


def test_no_free_connection_is_not_sent() -> None:
    async def hang(n: int) -> bytes:
        await asyncio.sleep(5)
        return ok()

    async def use(api: SigmaMindAPI, script: Script) -> Any:
        first = asyncio.create_task(api.create(request()))  # holds the one connection
        await asyncio.sleep(0.05)
        api.timeout = 0.3
        second = await asyncio.gather(api.create(request()), return_exceptions=True)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        return second

    (failure,) = run(hang, use, max_connections=1, timeout=3)
    assert isinstance(failure, ConnectionFailed)
    assert failure.maybe_sent is False
    assert str(failure) == "no free connection within 0.3 s"


# -- the answer's framings ---------------------------------------------------------------


def test_a_chunked_answer_is_read_whole() -> None:
    chunks = [RECORD[:7], RECORD[7:20], RECORD[20:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    data = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n" + body

    async def use(api: SigmaMindAPI, script: Script) -> tuple[Any, int]:
        answers = [await api.create(request()) for _ in range(2)]
        return [a.record.sip_phone_number for a in answers if a.record], script.connections

    assert run(always(data), use) == ([NUMBER, NUMBER], 1)


def test_an_answer_without_a_length_is_read_to_the_close() -> None:
    data = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n" + RECORD

    async def answer(n: int) -> bytes | None:
        return data if n == 1 else None

    async def use(api: SigmaMindAPI, script: Script) -> Any:
        task = asyncio.create_task(api.create(request()))
        await asyncio.sleep(0.05)
        for server_side in script._tasks:
            server_side.cancel()  # the server ends the body by closing
        return await task

    answer_ = run(answer, use)
    assert answer_.ok
    assert answer_.record.sip_phone_number == NUMBER


def test_interim_answers_are_skipped() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok()

    async def use(api: SigmaMindAPI, script: Script) -> Any:
        return await api.create(request())

    answer = run(always(data), use)
    assert answer.status == 201
    assert answer.record is not None


def test_a_cut_body_may_have_been_sent() -> None:
    data = b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n" + RECORD[:10]

    async def answer(n: int) -> bytes:
        return data

    async def use(api: SigmaMindAPI, script: Script) -> ConnectionFailed:
        task = asyncio.create_task(api.create(request()))
        await asyncio.sleep(0.05)
        for server_side in script._tasks:
            server_side.cancel()
        with pytest.raises(ConnectionFailed) as raised:
            await task
        return raised.value

    failure = run(answer, use)
    assert failure.maybe_sent is True
    assert str(failure) == "connection failed: Response payload is not completed"


def test_a_malformed_answer_may_have_been_sent() -> None:
    async def use(api: SigmaMindAPI, script: Script) -> ConnectionFailed:
        with pytest.raises(ConnectionFailed) as raised:
            await api.create(request())
        return raised.value

    failure = run(always(b"HTTX/1.1 20 nope\r\n\r\n"), use)
    assert failure.maybe_sent is True
    assert str(failure).startswith("connection failed: invalid answer: ")


def test_an_error_body_is_capped_and_its_connection_closed() -> None:
    body = b"x" * (ERROR_BODY_LIMIT * 4)
    data = b"HTTP/1.1 400 Bad\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def use(api: SigmaMindAPI, script: Script) -> tuple[int, int]:
        answer = await api.create(request())
        assert answer.status == 400
        assert answer.message.startswith("xxxx")
        assert (await api.create(request())).status == 400
        return script.connections, script.requests

    assert run(always(data), use) == (2, 2)  # not read to its end: never reused


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_is_decoded_as_httpx_decodes_it(encoding: str) -> None:
    text = json.dumps({"message": "refused: " + "a" * 5000}).encode()
    packed = gzip.compress(text) if encoding == "gzip" else zlib.compress(text)
    header = b"Content-Encoding: %s\r\n" % encoding.encode()
    data = (
        b"HTTP/1.1 400 Bad\r\n"
        + header
        + b"Content-Length: %d\r\n\r\n%s"
        % (
            len(packed),
            packed,
        )
    )
    broken = b"HTTP/1.1 400 Bad\r\n" + header + b"Content-Length: 10\r\n\r\n0123456789"

    async def use(api: SigmaMindAPI, script: Script) -> tuple[str, int]:
        answer = await api.create(request())
        return answer.message, script.connections

    message, connections = run(always(data), use)
    assert message.startswith("refused: aaaa")
    with pytest.raises(httpx.DecodingError):  # what reading it through httpx raises
        run(always(broken), use)
    assert connections == 1


def test_a_trickled_body_is_cut_at_the_deadline() -> None:
    async def trickle(n: int) -> bytes:
        return b"HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n{"

    async def use(api: SigmaMindAPI, script: Script) -> tuple[ConnectionFailed, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionFailed) as raised:
            await api.create(request())
        return raised.value, loop.time() - started

    failure, took = run(trickle, use, timeout=0.3)
    assert failure.maybe_sent is True
    assert str(failure) == "no complete answer within 0.3 s (--timeout)"
    assert 0.25 < took < 1.0


def test_httpx_client_over_the_default_transport() -> None:
    """``SigmaMindAPI._client`` (httpx's) sends over the same transport and pool."""

    async def use(api: SigmaMindAPI, script: Script) -> tuple[Any, int]:
        first = await api._client.get(f"/v1/phone-numbers/{NUMBER}")
        second = await api._client.get(f"/v1/phone-numbers/{NUMBER}")
        return (first.status_code, first.json(), second.status_code), script.connections

    got, connections = run(always(ok()), use)
    assert got == (201, json.loads(RECORD), 201)
    assert connections == 1


def test_a_large_2xx_body_is_read_whole_up_to_the_limit() -> None:
    """A body larger than what is buffered unread (1 MB) but under ``BODY_LIMIT`` is read
    whole: the socket is paused only once the limit is reached."""
    record = json.dumps({"sipPhoneNumber": NUMBER, "pad": "x" * 3_000_000}).encode()

    async def use(api: SigmaMindAPI, script: Script) -> Any:
        return await api.create(request())

    answer = run(always(ok(record)), use, timeout=5)
    assert answer.ok
    assert answer.record.sip_phone_number == NUMBER


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made by the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_is_verified_and_served_over_tls(certificate: tuple[Path, Path]) -> None:
    """``https://``: a certificate no CA signed is refused (nothing sent); one the
    transport's context trusts carries the request."""
    cert, key = certificate
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def go() -> tuple[ConnectionFailed, Any, int]:
        async with Script(always(ok()), tls=served) as script:
            async with SigmaMindAPI(script.url, KEY, timeout=3) as api:  # certifi's CAs
                with pytest.raises(ConnectionFailed) as raised:
                    await api.create(request())
            transport = Transport(
                script.url, max_connections=2, keepalive_expiry=2.0, connect_share=0.9,
                tls=trusting,
            )  # fmt: skip
            async with SigmaMindAPI(script.url, KEY, transport=transport) as api:
                answers = [await api.create(request()) for _ in range(2)]
            return raised.value, answers, script.requests

    refused, answers, requests = asyncio.run(go())
    assert refused.maybe_sent is False
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused)
    assert str(refused).startswith("could not connect to 127.0.0.1:")
    assert [a.status for a in answers] == [201, 201]
    assert requests == 2
