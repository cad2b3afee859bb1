"""What the sandbox does wrong on purpose: injected faults (its rate limit: limits.py).

This module owns the seeded ``FaultDice`` that decides which import request fails and
how (as configured by ``SandboxConfig``, settings.py), and ``drop_connection``, which ends
an HTTP exchange with no answer at all so that the client sees a transport error.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bulk_import.sandbox.settings import Fault, SandboxConfig

#: Scope key under which the sandbox's ASGI entry point stores the connection's transport.
TRANSPORT_KEY = "sandbox.transport"


class FaultDice:
    """Decides, request by request, which fault (if any) an import request gets."""

    def __init__(self, config: SandboxConfig) -> None:
        self._every = config.burst_429_every
        self._rates = [(f, p) for f, p in config.fault_rates() if p > 0]
        self._rng = random.Random(config.seed)
        self._count = 0

    def roll(self) -> Fault | None:
        """The fault for the next import request, or None for a normal answer."""
        self._count += 1
        if self._every is not None and self._count % self._every == 0:
            return Fault.BURST_429
        if not self._rates:
            return None
        draw = self._rng.random()
        for fault, probability in self._rates:
            if draw < probability:
                return fault
            draw -= probability
        return None


class ConnectionDropped(Exception):
    """Raised to make the server close a connection mid-answer (fallback path only)."""


class DropConnection(Response):
    """An ASGI response that answers nothing: the client sees the connection close.

    The sandbox's entry point puts the connection's asyncio transport in the scope
    (uvicorn's ``send`` is a bound method of an object holding it); aborting it closes
    the socket before any byte of an answer, and uvicorn, seeing the client gone, sends
    nothing either.  httpx then raises ``RemoteProtocolError("Server disconnected without
    sending a response.")``.  Should the transport not be reachable (another server), it
    falls back to sending a status line promising a body and raising, which makes the
    server close the connection; the client then fails reading the body.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await drop_connection(scope, send)


async def drop_connection(scope: Scope, send: Send) -> None:
    """Close the connection of ``scope`` without a (complete) answer."""
    transport: Any = scope.get(TRANSPORT_KEY)
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0)  # let the server see the connection lost before we return
        return
    await send(
        {"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"1")]}
    )
    raise ConnectionDropped("sandbox dropped the connection on purpose")
