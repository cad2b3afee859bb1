"""A hostile stand-in for the API: the answers the sandbox won't give.

``HostileServer`` is a small ``http.server`` app on 127.0.0.1 (one thread per connection)
that answers every request as its ``answer`` callable says.  The ready-made answers below
cover what real servers (or what sits in front of them) have been seen to do: odd field
types, JSON nested 100,000 deep, a body trickled one byte at a time, secrets echoed back in
every encoding, a 400 MB error page, 40,000 ``<title>`` tags, a 2xx naming another number.

Every request is recorded (``requests``), and ``sent_bytes`` counts what the server managed
to write, so a test can tell how much of a huge body the client actually read.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]  # names in lower case

    @property
    def number(self) -> str:
        """The phone number the request is about (from its body or its path)."""
        if "phoneNumber" in self.body:
            return str(self.body["phoneNumber"])
        return unquote(self.path.rsplit("/", 1)[-1])


@dataclass
class Reply:
    """What to answer: a status, headers and a body, or a ``stream`` that writes it."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[HostileServer, Callable[[bytes], None]], None] | None = None
    length: int | None = None  # Content-Length for a stream
    drop: bool = False  # close the connection without answering


Answer = Callable[[Seen], Reply]


class HostileServer:
    """``with HostileServer(answer) as server:`` serves at ``server.url`` until the block ends."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or (lambda seen: created(seen))
        #: The answer to the account's list (``GET /v1/phone-numbers``, which a run reads
        #: before its first POST): an empty account, unless a test sets another, or None
        #: to have ``answer`` answer it too.  Those requests go to ``list_requests``.
        self.list_answer: Answer | None = lambda seen: json_reply(200, [])
        self.list_requests: list[Seen] = []
        self.requests: list[Seen] = []
        self.sent_bytes = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def count(self, n: int) -> None:
        with self._lock:
            self.sent_bytes += n


def _handler_class(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            seen = Seen(self.command, self.path, body if isinstance(body, dict) else {}, {})
            seen.headers = {k.lower(): v for k, v in self.headers.items()}
            listing = self.command == "GET" and urlsplit(self.path).path == "/v1/phone-numbers"
            if listing and server.list_answer is not None:
                server.list_requests.append(seen)
                reply = server.list_answer(seen)
            else:
                server.record(seen)
                reply = server.answer(seen)
            if reply.drop:
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                size = reply.length if reply.stream is not None else len(reply.body)
                if size is not None:
                    self.send_header("Content-Length", str(size))
                self.send_header("Connection", "close")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.flush()
                if reply.stream is not None:
                    reply.stream(server, self._write)
                else:
                    self._write(reply.body)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: that is the point of some answers
            self.close_connection = True

        def _write(self, data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()
            server.count(len(data))

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


# -- ready-made answers ----------------------------------------------------------------


def dropped(seen: Seen) -> Reply:
    """No answer at all: the connection closes once the request is in."""
    return Reply(0, drop=True)


def json_reply(status: int, data: Any) -> Reply:
    return Reply(status, json.dumps(data).encode())


def created(seen: Seen, **extra: Any) -> Reply:
    """201 with a well-formed record of the number sent (plus ``extra`` fields)."""
    return json_reply(201, {"sipPhoneNumber": seen.number, "active": True, **extra})


def odd_types(seen: Seen) -> Reply:
    """A record whose fields have every type but the documented one."""
    record = {
        "sipPhoneNumber": seen.number,
        "inboundAgentId": 12345,
        "outboundAgentId": ["a", 1],
        "outboundPhoneNumber": {"e164": "+14155550000"},
        "active": "yes",
        "terminationSipURI": None,
        "friendlyName": 3.5,
        "unknownField": {"deep": [1, 2, {"x": None}]},
    }
    return json_reply(201 if seen.method == "POST" else 200, record)


def deep_json(status: int, depth: int = 100_000) -> Answer:
    """A body of ``depth`` nested arrays (a parser that recurses runs out of stack)."""
    body = b"[" * depth + b"]" * depth
    return lambda seen: Reply(status, body)


def trickle(status: int = 201, every: float = 0.5, size: int = 1000) -> Answer:
    """Headers at once, then the body one byte every ``every`` seconds."""

    def stream(server: HostileServer, write: Callable[[bytes], None]) -> None:
        for _ in range(size):
            if server.stopping.wait(every):
                return
            write(b" ")

    return lambda seen: Reply(status, stream=stream, length=size)


def huge(status: int = 400, size: int = 400 * 1024 * 1024) -> Answer:
    """An error body of ``size`` bytes (400 MB), written as fast as the client reads."""
    chunk = b"x" * 65536

    def stream(server: HostileServer, write: Callable[[bytes], None]) -> None:
        sent = 0
        while sent < size and not server.stopping.is_set():
            write(chunk)
            sent += len(chunk)

    return lambda seen: Reply(status, content_type="text/plain", stream=stream, length=size)


def many_titles(count: int = 40_000) -> Answer:
    """An error page of ``count`` unclosed ``<title>`` tags."""
    body = b"<html><head>" + b"<title>" * count + b"</head></html>"
    return lambda seen: Reply(400, body, content_type="text/html")


def other_number(number: str, *, get_status: int = 404) -> Answer:
    """201 naming ``number`` for every POST; GET answers ``get_status`` (200: the record
    as it was sent)."""
    stored: dict[str, dict[str, Any]] = {}

    def answer(seen: Seen) -> Reply:
        if seen.method == "POST":
            stored[seen.number] = seen.body
            return json_reply(201, {"sipPhoneNumber": number, "active": True})
        if get_status == 200:
            sent = {k: v for k, v in stored.get(seen.number, {}).items() if "Password" not in k}
            return json_reply(200, {**sent, "sipPhoneNumber": seen.number, "active": True})
        return json_reply(get_status, {"message": "not found"})

    return answer


#: How a server may write a value back: the encodings of issue-style echo pages.
ENCODINGS: dict[str, Callable[[str], tuple[bytes, str]]] = {
    "raw": lambda v: (f"bad trunk password {v} for this trunk".encode(), "text/plain"),
    "json_ascii": lambda v: (json.dumps({"message": f"bad password {v}"}).encode(), "json"),
    "json_utf8": lambda v: (
        json.dumps({"message": f"bad password {v}"}, ensure_ascii=False).encode(),
        "json",
    ),
    "json_echo": lambda v: (
        json.dumps({"code": 7, "received": {"trunkPassword": v}}, ensure_ascii=False).encode(),
        "json",
    ),
    "html": lambda v: (
        f"<html><head><title>Rejected {html.escape(v)}</title></head></html>".encode(),
        "text/html",
    ),
    "html_body": lambda v: (
        f"<html><body><p>password=<b>{html.escape(v, quote=False)}</b></p></body></html>".encode(),
        "text/html",
    ),
    "url": lambda v: (f"rejected: trunkPassword={quote(v, safe='')}&x=1".encode(), "text/plain"),
    "url_plus": lambda v: (
        f"rejected: trunkPassword={quote(v, safe='').replace('%20', '+')}".encode(),
        "text/plain",
    ),
    "go_json": lambda v: (
        json.dumps({"message": f"bad {v}"})
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .encode(),
        "json",
    ),
    "numeric_entities": lambda v: (
        ("<title>" + "".join(f"&#{ord(c)};" for c in v) + "</title>").encode(),
        "text/html",
    ),
}


def echo(encoding: str, *, status: int = 400, key: bool = False) -> Answer:
    """An error that writes back the trunk password sent (or the API key), encoded."""

    def answer(seen: Seen) -> Reply:
        value = seen.headers.get("x-api-key", "") if key else str(seen.body.get("trunkPassword"))
        body, kind = ENCODINGS[encoding](value)
        content_type = "application/json" if kind == "json" else kind
        return Reply(status, body, content_type=content_type)

    return answer


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
