"""The default transport: the tool's own HTTP/1.1 client on asyncio, for one origin.

It owns the connections (an ``asyncio.Protocol`` each, TLS for ``https://``), their pool
(at most ``max_connections``, an idle one dropped after ``keepalive_expiry`` seconds),
writing a request in one piece and reading its answer: the status line, headers and
body are parsed by httptools (llhttp, what uvicorn uses), chunked and to-close bodies
included; a compressed body is decoded by httpx, exactly as an ``httpx.Response``
decodes it.  At most ``limit`` bytes of a body are read; a connection whose answer was
not read to its end is closed, never reused.

A request is sent once: nothing here ever sends it again (docs/architecture.md, "Every
request is seen").  A request that got no complete answer raises ``ConnectionFailed``,
``maybe_sent`` False only when it surely never left (the connection could not be opened,
or no connection came free); the deadline of the whole exchange is the caller's
(``asyncio.timeout``), the connect's a share of it given here.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httptools
import httpx

from .errors import ConnectionFailed

RawHeaders = Sequence[tuple[bytes, bytes]]
#: Bytes of a body held unread before the socket is no longer read, when no limit is
#: given (httpx's interface): read again as the body is taken.
_HIGH_WATER = 1024 * 1024


class Transport(httpx.AsyncBaseTransport):
    """A pool of kept-alive HTTP/1.1 connections to one origin (``base_url``'s)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        keepalive_expiry: float,
        connect_share: float,
        tls: ssl.SSLContext | bool,
    ) -> None:
        url = httpx.URL(base_url)
        self.https = url.scheme == "https"
        self.host = url.host
        self.port = url.port or (443 if self.https else 80)
        self._tls = tls
        self._context: ssl.SSLContext | None = tls if isinstance(tls, ssl.SSLContext) else None
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._share = connect_share
        self._idle: deque[_Connection] = deque()  # the last released at the right end
        self._open: set[_Connection] = set()  # open or idle, not yet dropped
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of ``https://`` connections: the one given, else httpx's default
        (verified, certifi's CAs), built only when first needed."""
        if self._context is None:
            self._context = httpx.create_ssl_context(verify=self._tls)
        return self._context

    async def exchange(
        self, head: bytes, content: bytes, timeout: float, limit: int, error_limit: int
    ) -> tuple[int, bytes, RawHeaders, bytes]:
        """Send ``head`` (request line and headers) and ``content`` in one write; return
        the answer's status, reason phrase, raw headers and (at most ``limit`` bytes, or
        ``error_limit`` for a status not 2xx, of) its decoded body.  ``timeout`` is the
        caller's deadline: the connection must open within ``connect_share`` of it."""
        connection = await self._acquire(timeout)
        try:
            connection.send(head + content if content else head, limit, error_limit)
            while not connection.head_done:
                await connection.wait()
            status = connection.status
            cap = limit if 200 <= status < 300 else error_limit
            if any(name.lower() == b"content-encoding" for name, _ in connection.headers):
                response = self._response(connection)
                body = await _read_capped(response.aiter_bytes(), cap)
            else:
                while not connection.done and connection.size < cap:
                    await connection.wait()
                body = connection.take()[:cap]
            return status, connection.reason, connection.headers, body
        finally:
            self._release(connection)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """httpx's transport interface (``SigmaMindAPI._client.send``): the answer's body
        is streamed, its connection released when the stream is closed.  The connect's
        share is of the request's connect timeout; the rest is the caller's deadline
        (``SigmaMindAPI`` never sends through here: ``exchange`` is its path)."""
        connect = request.extensions.get("timeout", {}).get("connect") or 30.0
        head = head_bytes(request.method.encode(), request.url.raw_path, request.headers.raw)
        content = await request.aread()
        try:
            connection = await self._acquire(connect / self._share)
        except ConnectionFailed as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        try:
            connection.send(head + content)
            while not connection.head_done:
                await connection.wait()
        except BaseException as exc:
            self._release(connection)
            if isinstance(exc, ConnectionFailed):
                raise httpx.ReadError(str(exc), request=request) from exc
            raise
        return self._response(connection, release=True)

    def _response(self, connection: _Connection, *, release: bool = False) -> httpx.Response:
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if connection.reason:
            extensions["reason_phrase"] = connection.reason
        stream = _Body(connection, self._release if release else None)
        return httpx.Response(
            connection.status, headers=list(connection.headers), stream=stream,
            extensions=extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    # -- the pool ----------------------------------------------------------------------

    async def _acquire(self, timeout: float) -> _Connection:
        """An idle connection (the most recently used) or a new one, within the connect's
        share of ``timeout``; ``ConnectionFailed(maybe_sent=False)`` otherwise."""
        loop = asyncio.get_running_loop()
        connection = self._take_idle(loop.time())
        if connection is not None:
            return connection
        if self._closed:
            raise ConnectionFailed("connection failed: the client is closed", maybe_sent=False)
        waited = False
        try:
            async with asyncio.timeout(timeout * self._share):
                while len(self._open) + self._connecting >= self._max:
                    waited = True
                    waiter = loop.create_future()
                    self._waiters.append(waiter)
                    try:
                        await waiter
                    except BaseException:
                        if waiter.done() and not waiter.cancelled():
                            self._wake()  # woken, but leaving: the next one's turn
                        raise
                    finally:
                        if waiter in self._waiters:
                            self._waiters.remove(waiter)
                    connection = self._take_idle(loop.time())
                    if connection is not None:
                        self._wake()  # another waiter may find a slot, or another one
                        return connection
                waited = False
                return await self._connect(loop)
        except TimeoutError:
            if waited:
                text = f"no free connection within {timeout:g} s"
            else:
                text = f"could not connect within {timeout:g} s"
            raise ConnectionFailed(text, maybe_sent=False) from None

    def _take_idle(self, now: float) -> _Connection | None:
        """The most recently released idle connection still open; the expired and the
        closed ones are dropped (the oldest are at the left end)."""
        idle = self._idle
        while idle and (idle[0].closed or now - idle[0].idle_since > self._expiry):
            self._drop(idle.popleft())
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
            self._drop(connection)
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        self._connecting += 1
        try:
            tls = self.ssl_context if self.https else None
            _, connection = await loop.create_connection(
                lambda: _Connection(loop),
                self.host,
                self.port,
                ssl=tls,
                server_hostname=self.host if tls is not None else None,
            )
        except OSError as exc:
            raise ConnectionFailed(
                f"could not connect to {self.host}:{self.port}: {_reason(exc)}", maybe_sent=False
            ) from exc
        finally:
            self._connecting -= 1
        self._open.add(connection)
        return connection

    def _release(self, connection: _Connection) -> None:
        """Back to the pool if its answer was read whole and it may be kept; else closed."""
        if connection.finish() and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)
        else:
            self._drop(connection)
        self._wake()

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _reason(exc: OSError) -> str:
    """Why a connection could not be opened, in words."""
    if isinstance(exc, ssl.SSLError):
        return str(exc)
    if isinstance(exc, socket.gaierror):  # a name not resolved: its errno is negative
        return exc.strerror or str(exc)
    if exc.errno:  # asyncio's own text names the address again
        return os.strerror(exc.errno)
    return str(exc) or "connection failed"


def head_bytes(method: bytes, target: bytes, headers: RawHeaders) -> bytes:
    """A request's line and headers, as written."""
    lines = [method + b" " + target + b" HTTP/1.1"]
    lines.extend(name + b": " + value for name, value in headers)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


class _Connection(asyncio.Protocol):
    """One connection: its answer's state as httptools parses it, one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._limits = (_HIGH_WATER, _HIGH_WATER)
        self._high_water = _HIGH_WATER
        self.closed = False
        self.busy = False
        self.idle_since = 0.0
        self._clear()

    def _clear(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0  # bytes in ``chunks``
        self.head_done = False
        self.done = False
        self.keep_alive = False
        self.error: str | None = None

    # -- the exchange's side -------------------------------------------------------------

    def send(self, data: bytes, limit: int = _HIGH_WATER, error_limit: int = _HIGH_WATER) -> None:
        """Write a request; the socket is paused once its answer's unread body reaches
        ``limit`` (``error_limit`` for a status not 2xx): no more of it is wanted then."""
        assert self._transport is not None
        self._clear()
        self._limits = (limit, error_limit)
        self.busy = True
        self._transport.write(data)

    async def wait(self) -> None:
        """Until the parser has more (or the connection is lost); raises its failure."""
        if self.error is None:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.error is not None:
            raise ConnectionFailed(f"connection failed: {self.error}", maybe_sent=True)

    def take(self) -> bytes:
        """The body received so far (taken: the socket is read again if it was paused)."""
        body = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        if self._paused and self._transport is not None and not self.closed:
            self._paused = False
            self._transport.resume_reading()
        return body

    def finish(self) -> bool:
        """The exchange is over; True when the connection may carry another."""
        self.busy = False
        return self.done and self.keep_alive and not self.closed and not self.chunks

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.done:  # nothing asked for: the connection is not kept
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # a 101: its body is another protocol's
            self.done = True
            self.keep_alive = False
        except httptools.HttpParserError as exc:
            self.error = f"invalid answer: {exc}"
            self.close()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.busy and not self.done and self.error is None:
            if self.head_done and self._ends_at_close():
                self.done = True  # a body without a length ends with the connection
            elif exc is not None:
                self.error = str(exc) or type(exc).__name__
            elif self.head_done:
                self.error = "Response payload is not completed"
            else:
                self.error = "Server disconnected"
        self._wake()

    def _ends_at_close(self) -> bool:
        """True for an answer whose body is delimited by the end of the connection: no
        Content-Length and no Transfer-Encoding (RFC 9112, section 6.3)."""
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    # -- httptools' callbacks -------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status  # llhttp may hand a span over in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim answer: the final one follows
        self.status = status
        self._high_water = self._limits[0] if 200 <= status < 300 else self._limits[1]
        self.head_done = True
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.size += len(body)
        if self.size >= self._high_water and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if not self.head_done:  # the end of an interim answer
            self.reason = b""
            self.headers = []
            return
        self.done = True


class _Body(httpx.AsyncByteStream):
    """An answer's raw body as httpx reads it, chunk by chunk, from its connection;
    ``release`` (the pool's) is called when it is closed."""

    def __init__(self, connection: _Connection, release: Any = None) -> None:
        self._connection = connection
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            if connection.chunks:
                yield connection.take()
            elif connection.done:
                return
            else:
                await connection.wait()

    async def aclose(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(self._connection)


async def _read_capped(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """At most ``limit`` bytes of a body; the rest is never read (the connection closes)."""
    read: list[bytes] = []
    size = 0
    async for chunk in chunks:
        read.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(read)[:limit]
