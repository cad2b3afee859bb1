"""CPU of one import request over a bare ``asyncio.Protocol``: the floor of an HTTP/1.1
client on asyncio, against ``request_cpu.py``'s figure for the tool's own (``_http``).

    .venv/bin/python benchmarks/raw_http.py [--requests 3000] [--concurrency 64]

Starts a sandbox (its own process, 50 ms latency), opens ``--concurrency`` kept-alive
connections and sends the same realistic import bodies as ``request_cpu.py``, 64 in
flight: the request line and headers written with the body in one ``write``, the answer
parsed by its ``Content-Length`` only.  No chunked bodies, no compression, no TLS, no
timeouts but one: a measurement of the floor, not a client.  Prints the user and system
CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys

API_KEY = "bench-key"  # a test value the sandbox accepts, not a secret


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter.set_result((int(head[0].split(" ", 2)[1]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))


async def main(host: str, port: int, count: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(concurrency):
        _, connection = await loop.create_connection(_Connection, host, port)
        idle.put_nowait(connection)
    head = (
        f"POST /v1/phone-numbers/import HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"X-API-Key: {API_KEY}\r\nAccept: application/json\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()

    async def one(i: int) -> None:
        body = json.dumps(
            {
                "phoneNumber": f"+1{5_000_000_000 + i}",
                "trunkUsername": "trunk-user",
                "trunkPassword": f"p,\"';!{i}",
                "terminationSipURI": "sip:pbx.example.com",
                "friendlyName": f"Front desk {i}",
                "inboundAgentId": "agent-in",
                "outboundAgentId": "agent-out",
                "outboundPhoneNumber": "+12025550100",
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        connection = await idle.get()
        try:
            connection.waiter = loop.create_future()
            assert connection.transport is not None
            connection.transport.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            async with asyncio.timeout(30):
                status, answer = await connection.waiter
            json.loads(answer)
            assert status == 201, (status, answer)
        finally:
            idle.put_nowait(connection)

    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(one(i) for i in range(count)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = (after.ru_utime - before.ru_utime) / count * 1e6
    system = (after.ru_stime - before.ru_stime) / count * 1e6
    print(f"asyncio.Protocol alone: user {user:.0f} us, system {system:.0f} us a request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    argv = [sys.executable, "-m", "bulk_import.sandbox", "--port", "0", "--api-key", API_KEY]
    sandbox = subprocess.Popen([*argv, "--latency-ms", "50"], stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().strip().removeprefix("sandbox listening on http://")
        host, _, port = url.partition(":")
        asyncio.run(main(host, int(port), args.requests, args.concurrency))
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        if sandbox.stdout is not None:
            sandbox.stdout.close()
