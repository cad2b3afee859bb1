"""Running the sandbox: in a background thread (tests, ``run --sandbox``) or in the foreground.

This module owns ``SandboxServer``, a context manager that serves a ``SandboxApp`` with
uvicorn on 127.0.0.1 from a daemon thread, and ``serve``, which does the same in the
calling thread until Ctrl-C (``bulk-import sandbox``, ``python -m bulk_import.sandbox``).
Both bind the listening socket themselves, so port 0 gives a free port known at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from typing import Self

import uvicorn

from bulk_import.sandbox.app import SandboxApp, SandboxState
from bulk_import.sandbox.faults import ConnectionDropped
from bulk_import.sandbox.settings import SandboxConfig

HOST = "127.0.0.1"


class _QuietFaults(logging.Filter):
    """Hides uvicorn's error log for faults the sandbox causes on purpose.

    That is a connection dropped mid-answer (fallback path of ``drop_connection``) and a
    request still waiting (``late_ms``) when the server stops.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped | asyncio.CancelledError)


_FILTER = _QuietFaults()


def _quiet_uvicorn() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def bind(port: int = 0, host: str = HOST) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port).

    Listening at once means a client may connect before the server loop runs: the
    connection waits in the backlog instead of being refused.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it every answer waits ~40 ms (Nagle vs delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def _uvicorn_config(app: SandboxApp, sock: socket.socket, log_level: str) -> uvicorn.Config:
    host, port = sock.getsockname()[:2]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # leave the host process's logging alone
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=False,
    )


class _StoppableServer(uvicorn.Server):
    """A ``uvicorn.Server`` that another thread can stop at once (``stop_soon``).

    uvicorn's own loop polls ``should_exit`` every 0.1 s and its shutdown waits 0.1 s
    more, which every test and every ``run --sandbox`` would pay on exit.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        await self.on_tick(0)  # sets the default headers
        if not self.should_exit:
            await self._wake.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not self.force_exit:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # let idle connections close; late answers are cut off

    def stop_soon(self) -> None:
        """Ask the server to stop without waiting for requests in progress (thread-safe)."""
        self.should_exit = self.force_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)


class SandboxServer:
    """The sandbox served over real HTTP from a background thread.

    ``with SandboxServer(SandboxConfig(rate=50)) as sb: httpx.get(sb.url + ...)``; ``url``,
    ``port``, ``state`` (the live ``SandboxState``) and ``config`` are there while it runs.
    """

    def __init__(self, config: SandboxConfig | None = None, *, port: int = 0) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.app = SandboxApp(self.config)
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._server: _StoppableServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SandboxState:
        """The live state (records and counters) of the running sandbox."""
        return self.app.state

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._sock is None:
            raise RuntimeError("the sandbox is not running")
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """Its base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; returns once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        _quiet_uvicorn()
        self._sock = bind(self._requested_port)
        server = _StoppableServer(_uvicorn_config(self.app, self._sock, "warning"))
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._sock]}, name="sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: requests still waiting (late answers) are cut off."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.stop_soon()
            thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _AnnouncingServer(uvicorn.Server):
    """Prints its lines once started: by then uvicorn's signal handlers are in place, so
    a Ctrl-C sent as soon as "listening" is read stops the server (sent earlier, it could
    be lost between Python's handler and uvicorn's)."""

    def __init__(self, config: uvicorn.Config, lines: tuple[str, ...]) -> None:
        super().__init__(config)
        self._lines = lines

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for line in self._lines:
            print(line, flush=True)


def serve(config: SandboxConfig, port: int, *, log_level: str = "warning") -> None:
    """Serve the sandbox on 127.0.0.1:``port`` in this thread until Ctrl-C (or SIGTERM).

    Prints ``sandbox listening on http://127.0.0.1:PORT`` on stdout once it can accept
    connections (``port`` 0 picks a free port), then the API key it accepts.  Raises
    ``OSError`` if the port is taken.
    """
    _quiet_uvicorn()
    sock = bind(port)
    app = SandboxApp(config)
    lines = (
        f"sandbox listening on http://{HOST}:{sock.getsockname()[1]}",
        f"sandbox accepts the API key {config.api_key!r} (header X-API-Key)",
    )
    server = _AnnouncingServer(_uvicorn_config(app, sock, log_level), lines)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        sock.close()
        sys.stdout.flush()
