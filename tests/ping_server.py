"""A health-check receiver on loopback (healthchecks.io's shape), for the ping tests.

``PingServer()`` answers every request 200 and keeps what it got (``pings``: path, query,
body, arrival time); ``hang=True`` accepts connections and never answers.  Use it as a
context manager; ``url`` is its base (``http://127.0.0.1:PORT/hc-uuid``).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Ping:
    method: str
    path: str
    query: dict[str, list[str]]
    body: str
    at: float  # time.monotonic() on arrival


class PingServer:
    def __init__(self, *, hang: bool = False) -> None:
        self.pings: list[Ping] = []
        self.lock = threading.Lock()
        self.hang = hang
        self._sock: socket.socket | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if hang:  # listens (the kernel completes the handshake), never reads nor answers
            self._sock = socket.create_server(("127.0.0.1", 0), backlog=16)
            self.port = self._sock.getsockname()[1]
        else:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            self._httpd.daemon_threads = True
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
            self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hc-3f1c"

    def paths(self) -> list[str]:
        with self.lock:
            return [p.path for p in self.pings]

    def __enter__(self) -> PingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._sock is not None:
            self._sock.close()


def _handler(server: PingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            parts = urlsplit(self.path)
            ping = Ping(self.command, parts.path, parse_qs(parts.query), body, time.monotonic())
            with server.lock:
                server.pings.append(ping)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = do_HEAD = _serve

    return Handler


def refused_url() -> str:
    """A loopback URL on which nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hc-refused"
