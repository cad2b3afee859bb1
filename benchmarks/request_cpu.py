"""CPU of one import request, in process: ``SigmaMindAPI.create`` against its transport alone.

    .venv/bin/python benchmarks/request_cpu.py [--requests 3000] [--concurrency 64]

Starts a sandbox (its own process, 50 ms latency), then sends the same realistic import
bodies with 64 in flight, twice: through ``SigmaMindAPI.create`` (the tool's whole request
path: the body, the HTTP client, the answer read, masked and parsed) and through the
default transport alone (``bulk_import._http.Transport.exchange``: the request's bytes
made by hand, the answer's body only ``json.loads``-ed).  Prints the user and system CPU
of each, per request: the difference is what the tool's own request layer costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bulk_import._http import Transport, head_bytes
from bulk_import.api import SigmaMindAPI
from bulk_import.payloads import ImportRequest

API_KEY = "bench-key"  # a test value the sandbox accepts, not a secret


def bodies(count: int, first: int) -> list[ImportRequest]:
    return [
        ImportRequest.model_validate(
            {
                "phoneNumber": f"+1{first + i}",
                "trunkUsername": "trunk-user",
                "trunkPassword": f"p,\"';!{i}",
                "terminationSipURI": "sip:pbx.example.com",
                "friendlyName": f"Front desk {i}",
                "inboundAgentId": "agent-in",
                "outboundAgentId": "agent-out",
                "outboundPhoneNumber": "+12025550100",
            }
        )
        for i in range(count)
    ]


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def timed(
    name: str,
    reqs: list[ImportRequest],
    concurrency: int,
    send: Callable[[ImportRequest], Awaitable[Any]],
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(req: ImportRequest) -> None:
        async with gate:
            await send(req)

    user, system = cpu()
    await asyncio.gather(*(one(r) for r in reqs))
    user2, system2 = cpu()
    n = len(reqs)
    per = (user2 - user) / n * 1e6, (system2 - system) / n * 1e6
    print(f"{name}: user {per[0]:.0f} us, system {per[1]:.0f} us a request")


async def main(url: str, count: int, concurrency: int) -> None:
    async with SigmaMindAPI(url, API_KEY, max_connections=concurrency) as api:

        async def tool(req: ImportRequest) -> None:
            answer = await api.create(req)
            assert answer.status == 201, answer

        await timed("SigmaMindAPI.create", bodies(count, 3_000_000_000), concurrency, tool)
    transport = Transport(
        url, max_connections=concurrency, keepalive_expiry=2.0, connect_share=0.9, tls=False
    )
    host = url.removeprefix("http://").encode()
    headers = [
        (b"Host", host),
        (b"X-API-Key", API_KEY.encode()),
        (b"Accept", b"application/json"),
        (b"Content-Type", b"application/json"),
    ]
    prefix = head_bytes(b"POST", b"/v1/phone-numbers/import", headers)[:-2] + b"Content-Length: "

    async def bare(req: ImportRequest) -> None:
        data = json.dumps(req.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
        head = b"%s%d\r\n\r\n" % (prefix, len(data))
        async with asyncio.timeout(30):
            status, _, _, body = await transport.exchange(head, data, 30.0, 1 << 23, 1 << 16)
        json.loads(body)
        assert status == 201

    await timed("the transport alone", bodies(count, 4_000_000_000), concurrency, bare)
    await transport.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    argv = [sys.executable, "-m", "bulk_import.sandbox", "--port", "0", "--api-key", API_KEY]
    sandbox = subprocess.Popen([*argv, "--latency-ms", "50"], stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        line = sandbox.stdout.readline().strip()
        asyncio.run(
            main(line.removeprefix("sandbox listening on "), args.requests, args.concurrency)
        )
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        if sandbox.stdout is not None:
            sandbox.stdout.close()
