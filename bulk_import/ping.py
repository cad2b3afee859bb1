"""ping: health-check pings (healthchecks.io and compatible: Cronitor, Uptime Kuma push).

``URL/start`` before the first request, ``URL/<exit code>`` at the end with a short text
body (the summary line and the first ``BODY_LIMIT`` bytes of the rows that need a person);
``?rid=<uuid>`` ties the two together.  The one HTTP this tool sends that is not the API's
(docs/architecture.md, "Watching a run").

A ping never fails a run and never holds it up for long: each is sent from a daemon thread
and waited for at most ``WAIT`` seconds; whatever goes wrong (refused, hung, an error
status) is one note to ``say``.  No proxy or other setting is read from the environment (the
library reads none).  The URL follows the API address's rules (``config.check_base_url``):
https, or plain http to loopback only, and no ``user:pass@`` in it; it is never printed
whole (a ping URL is a capability: anyone holding it can ping).
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .config import check_base_url

#: Seconds a ping may take at most, from the request to its answer.
WAIT = 2.0
#: Bytes of rows that need a person sent in the end ping's body at most.
BODY_LIMIT = 10 * 1024


def check_ping_url(url: str, *, allow_insecure_http: bool) -> None:
    """The API address's rules, for ``ping_url``: raises ``UsageError`` naming it."""
    check_base_url(url, allow_insecure_http=allow_insecure_http, param="ping_url")


def shown(url: str) -> str:
    """The ping URL as it may be printed: its host only (its path is the capability)."""
    host = urlsplit(url).hostname or "?"
    return f"{urlsplit(url).scheme}://{host}/***"


class Pinger:
    """The pings of one run: ``start()``, then ``end(exit_code, body)``."""

    def __init__(
        self, url: str, say: Callable[[str], None], *, wait: float = WAIT, rid: str | None = None
    ) -> None:
        self.url = url
        self.say = say
        self.wait = wait
        self.rid = rid or str(uuid.uuid4())
        # Never through a proxy from the environment: the library reads no environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> None:
        self._send("start", b"", "start")

    def end(self, exit_code: int, body: str) -> None:
        self._send(str(exit_code), body.encode("utf-8"), f"end (exit {exit_code})")

    def url_of(self, what: str) -> str:
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/") + "/" + what
        query = f"{parts.query}&rid={self.rid}" if parts.query else f"rid={self.rid}"
        return urlunsplit((parts.scheme, parts.netloc, path, query, ""))

    def _send(self, what: str, body: bytes, name: str) -> None:
        """POST ``URL/what``, waiting ``wait`` seconds at most; a failure is a note."""
        outcome: list[str] = []
        request = urllib.request.Request(  # noqa: S310 - the URL is checked to be http(s)
            self.url_of(what),
            data=body,
            method="POST",
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "User-Agent": f"bulk-import/{__version__}",
            },
        )

        def send() -> None:
            try:
                with self._opener.open(request, timeout=self.wait) as answer:
                    answer.read(4096)
                    outcome.append("")
            except urllib.error.HTTPError as exc:
                exc.close()
                outcome.append(f"HTTP {exc.code}")
            except (OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                outcome.append(type(reason).__name__ if isinstance(reason, Exception) else "error")

        thread = threading.Thread(target=send, name=f"ping-{what}", daemon=True)
        thread.start()
        thread.join(self.wait + 0.5)
        if not outcome:
            self.say(f"warning: the {name} ping to {shown(self.url)} did not answer in time")
        elif outcome[0]:
            self.say(f"warning: the {name} ping to {shown(self.url)} failed: {outcome[0]}")


def end_body(line: str, problems: list[str], *, header: str, total: int | None = None) -> str:
    """The end ping's body: the summary line, then the first lines of the rows that need a
    person, ``BODY_LIMIT`` bytes at most (whole lines), in the results file's columns;
    ``total`` is how many there are (``problems`` may be only the first of them)."""
    total = len(problems) if total is None else max(total, len(problems))
    out = [line, ""]
    if problems:
        out.append(header)
        used = shown = 0
        for text in problems:
            size = len(text.encode("utf-8")) + 1
            if used + size > BODY_LIMIT:
                break
            out.append(text)
            used += size
            shown += 1
        if total > shown:
            out.append(f"... and {total - shown} more row(s): see the results file")
    return "\n".join(out) + "\n"
