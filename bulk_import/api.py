"""The SigmaMind API client: the only module that knows httpx and the endpoints.

Every call returns an ``Answer``, a small typed outcome (HTTP status, its ``kind``, one
readable message line, the record, Retry-After and rate-limit headers), whatever the status:
turning answers into row outcomes is ``submit``'s job.  A request that got no HTTP answer
raises ``ConnectionFailed`` instead, ``maybe_sent`` telling whether it may have been stored.

Secrets: the API key lives in one private attribute and in the client's headers; ``repr``
masks it, and every message is scrubbed of the key and of the trunk password that was sent,
in every form a server may echo them (``scrub``).

Hostile answers: ``timeout`` is a deadline for the whole request, answer included (a server
that trickles its body can't hold a row longer); at most ``BODY_LIMIT`` bytes of an answer
are read (``ERROR_BODY_LIMIT`` of an error); an answer is read leniently (odd-typed fields
become text or are dropped, JSON too deep to parse is text) and never raises.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import TracebackType
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import httpx

from . import __version__
from ._http import RawHeaders, Transport, head_bytes
from .defaults import CONCURRENCY, TIMEOUT
from .errors import ApiError, AuthError, ConnectionFailed, NotANumberError
from .models import E164_RE, RateLimitInfo
from .payloads import ImportRequest, PhoneNumberRecord

IMPORT_PATH = "/v1/phone-numbers/import"
NUMBERS_PATH = "/v1/phone-numbers"
MESSAGE_LIMIT = 200
#: What is read of an answer at most: a record is small, an error page need not be read whole.
BODY_LIMIT = 8 * 1024 * 1024
ERROR_BODY_LIMIT = 64 * 1024
#: The share of ``timeout`` a connection may take to open; the deadline is the whole of it,
#: so a host that never accepts is told apart (not sent) from an answer that never came.
CONNECT_SHARE = 0.9
MASK = "***"
#: Seconds an idle connection is kept for the next request.
KEEPALIVE_EXPIRY = 2.0
#: Statuses worth sending again: throttled, or a transient server/gateway failure.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

_EXISTS_RE = re.compile(
    r"\balready\s+(?:exists?|registered|imported|added|present|in\s+use|taken)\b"
    r"|\bduplicate\b",
    re.IGNORECASE,
)
_MESSAGE_KEYS = ("message", "detail", "errors", "error")
_ITEM_TEXT_KEYS = ("message", "msg", "detail", "error", "description", "reason")
_ITEM_FIELD_KEYS = ("field", "loc", "path", "param", "property", "pointer")


class AnswerKind(StrEnum):
    """What an HTTP answer means for the request that got it."""

    OK = "ok"  # any 2xx
    EXISTS = "exists"  # 409, or a 400/422 saying the number already exists
    NOT_FOUND = "not_found"  # 404
    REJECTED = "rejected"  # 400/422 and any other 4xx (or 1xx/3xx)
    AUTH = "auth"  # 401/403: the key was refused
    THROTTLED = "throttled"  # 429
    SERVER = "server"  # 5xx


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: status, its kind, one readable line, and what it carried."""

    status: int
    kind: AnswerKind
    message: str = ""
    record: PhoneNumberRecord | None = None
    retry_after: float | None = None
    rate_limit: RateLimitInfo | None = None

    @property
    def ok(self) -> bool:
        return self.kind is AnswerKind.OK

    @property
    def retryable(self) -> bool:
        """True for a transient failure (429, 500/502/503/504): send it again later."""
        return self.status in RETRYABLE_STATUSES


#: The default transport (``_http``): the tool's own HTTP/1.1 client.
_Transport = Transport


class _Reply:
    """What ``_answer`` reads of an ``httpx.Response`` (its status, reason phrase, headers
    and charset), read as httpx reads them, without building one (its headers, stream
    and extensions were a tenth of a request's own CPU).  ``tests/test_exchange.py``
    holds the two to the same ``Answer``."""

    __slots__ = ("headers", "reason_phrase", "status_code")

    def __init__(self, status: int, reason: bytes | str | None, raw: RawHeaders) -> None:
        self.status_code = status
        # httpx keeps the reason as bytes and reads them as ASCII, dropping the rest
        if isinstance(reason, str):
            reason = reason.encode()
        self.reason_phrase = (
            reason.decode("ascii", errors="ignore")
            if reason
            else httpx.codes.get_reason_phrase(status)
        )
        self.headers = _Headers(raw)

    @property
    def charset_encoding(self) -> str | None:
        content_type = self.headers.get("Content-Type")
        return None if content_type is None else _content_type_charset(content_type)


class _Headers(dict[str, str]):
    """An answer's headers as ``httpx.Headers`` reads them: names in lower case, values
    decoded as ASCII, else UTF-8, else Latin-1 (one encoding for all of them, as httpx
    picks it), the values of a repeated name joined by ``, ``; ``get`` in any case."""

    def __init__(self, raw: RawHeaders) -> None:
        super().__init__()
        encoding = _headers_encoding(raw)
        for key, value in raw:
            name, text = key.lower().decode(encoding), value.decode(encoding)
            self[name] = f"{self[name]}, {text}" if name in self else text

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


def _headers_encoding(raw: RawHeaders) -> str:
    """``httpx.Headers.encoding``: the first of ASCII and UTF-8 that decodes every name
    and value, else Latin-1."""
    for encoding in ("ascii", "utf-8"):
        try:
            for key, value in raw:
                key.decode(encoding)
                value.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "iso-8859-1"


def _content_type_charset(content_type: str) -> str | None:
    """The charset a Content-Type names, as httpx parses it (``email.message``)."""
    import email.message

    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_charset(failobj=None)


#: An answer as ``_answer`` reads it: httpx's, or the default transport's lighter one.
Reply = httpx.Response | _Reply


class SigmaMindAPI:
    """Async client of the SigmaMind phone-number endpoints (an async context manager)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = TIMEOUT,
        max_connections: int = CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            # Idle connections are dropped before a server's own idle timeout (5 s for many):
            # a request is never resent unseen, so it should not go out on a closing one.
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        if transport is None:
            transport = _Transport(
                self._base_url,
                max_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
                connect_share=CONNECT_SHARE,
                tls=tls_context(self._base_url),
            )
        self._transport = transport
        timeouts = httpx.Timeout(
            timeout, connect=timeout * CONNECT_SHARE, pool=timeout * CONNECT_SHARE
        )
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            headers={
                "X-API-Key": api_key,
                "Accept": "application/json",
                "User-Agent": f"bulk-import/{__version__}",
            },
            timeout=timeouts,
            limits=limits,  # used only by httpx's own transport
            transport=transport,
            follow_redirects=False,
        )
        # Cookies a server sets are not kept, nor sent back: the key is the credential, and
        # httpx's cookie handling costs more than the rest of its work on an answer.
        if isinstance(getattr(self._client, "_cookies", None), httpx.Cookies):
            self._client._cookies = _NoCookies()
        # The import's URL, merged with the base URL once instead of on every request.
        base = self._client.base_url
        self._import_url = base.copy_with(raw_path=base.raw_path + IMPORT_PATH[1:].encode())
        # The import's request line and headers as ``build_request`` makes them, but for
        # the body's length (the last header, added to each request).
        template = self._client.build_request("POST", self._import_url, json={})
        headers = [(k, v) for k, v in template.headers.raw if k.lower() != b"content-length"]
        self._import_head = (
            head_bytes(b"POST", self._import_url.raw_path, headers)[:-2] + b"content-length: "
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"SigmaMindAPI(base_url={self._base_url!r}, api_key='***')"

    async def __aenter__(self) -> SigmaMindAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- endpoints ---------------------------------------------------------------------

    async def create(self, req: ImportRequest) -> Answer:
        """``POST /v1/phone-numbers/import``."""
        secret = req.trunk_password.get_secret_value()
        return await self._call("POST", IMPORT_PATH, body=req.to_json(), secret=secret)

    async def get(self, number: str) -> Answer:
        """``GET /v1/phone-numbers/{number}``."""
        return await self._call("GET", _number_path(number))

    async def delete(self, number: str) -> Answer:
        """``DELETE /v1/phone-numbers/{number}``."""
        return await self._call("DELETE", _number_path(number))

    async def patch(
        self, number: str, body: dict[str, str | None], *, secret: str | None = None
    ) -> Answer:
        """``PATCH /v1/phone-numbers/{number}`` with ``body`` as it is (PATCH spelling)."""
        return await self._call("PATCH", _number_path(number), body=body, secret=secret)

    async def list_page(
        self, url: str | None = None, params: dict[str, str] | None = None
    ) -> tuple[Answer, Any]:
        """One ``GET /v1/phone-numbers`` page (or the ``next`` URL the API gave): its
        answer and its JSON.  ``url`` must be on the base URL's host (the key goes along).
        """
        target = url if url is not None else NUMBERS_PATH
        if url is not None and not same_origin(url, self._base_url):
            raise ApiError(f"the list's next page is on another host ({url}); not following it")
        response, body = await self._send("GET", target, None, None, params=params)
        answer = self._answer(response, body, None, parse_record=False)
        return answer, _json_or_none(_decode(body, response))

    async def list(self) -> list[PhoneNumberRecord]:
        """``GET /v1/phone-numbers``, every page (no retries; see ``listing`` for those)."""
        records: list[PhoneNumberRecord] = []
        pager = Pager()
        while (step := pager.next_request()) is not None:
            answer, data = await self.list_page(*step)
            if answer.kind is AnswerKind.AUTH:
                raise AuthError(f"the API rejected the key (HTTP {answer.status})")
            if not answer.ok:
                raise ApiError(
                    f"listing phone numbers failed: HTTP {answer.status}: {answer.message}"
                )
            records.extend(pager.take(data))
        return records

    # -- plumbing ----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, str] | dict[str, str | None] | None = None,
        secret: str | None = None,
    ) -> Answer:
        response, content = await self._send(method, path, body, secret)
        return self._answer(response, content, secret, parse_record=True)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, str] | dict[str, str | None] | None,
        secret: str | None,
        *,
        params: dict[str, str] | None = None,
    ) -> tuple[Reply, bytes]:
        """One request and (at most ``BODY_LIMIT`` bytes of) its answer, within ``timeout``."""
        try:
            async with asyncio.timeout(self.timeout):
                if isinstance(self._transport, _Transport):
                    return await self._exchange(self._transport, method, path, body, params)
                url = self._import_url if path == IMPORT_PATH else path
                request = self._client.build_request(method, url, json=body, params=params)
                response = await self._client.send(request, stream=True)
                try:
                    limit = BODY_LIMIT if 200 <= response.status_code < 300 else ERROR_BODY_LIMIT
                    return response, await _read_capped(response, limit)
                finally:
                    await response.aclose()
        except TimeoutError as exc:  # the deadline: the request (or its answer) took too long
            text = f"no complete answer within {self.timeout:g} s (--timeout)"
            raise ConnectionFailed(text, maybe_sent=True) from exc
        except ConnectionFailed as exc:  # the default transport's, its text already written
            text = self._scrub(str(exc), secret)
            raise ConnectionFailed(text, maybe_sent=exc.maybe_sent) from exc
        except httpx.TransportError as exc:
            text = self._scrub(_describe(exc, self.timeout), secret)
            raise ConnectionFailed(text, maybe_sent=_maybe_sent(exc)) from exc

    async def _exchange(
        self,
        transport: _Transport,
        method: str,
        path: str,
        body: dict[str, str] | dict[str, str | None] | None,
        params: dict[str, str] | None,
    ) -> tuple[Reply, bytes]:
        """``_send`` over this client's own transport: the bytes ``build_request`` would
        send (an import's request line and headers made once), written as they are."""
        if path == IMPORT_PATH and body is not None and params is None:
            content = _json_bytes(body)
            head = b"%s%d\r\n\r\n" % (self._import_head, len(content))
        else:
            request = self._client.build_request(method, path, json=body, params=params)
            content = request.content
            head = head_bytes(method.encode(), request.url.raw_path, request.headers.raw)
        status, reason, raw, answer = await transport.exchange(
            head, content, self.timeout, BODY_LIMIT, ERROR_BODY_LIMIT
        )
        return _Reply(status, reason, raw), answer

    def _answer(
        self, response: Reply, body: bytes, secret: str | None, *, parse_record: bool
    ) -> Answer:
        """What an answer means; never raises, whatever the body holds."""
        status = response.status_code
        secrets = [s for s in (secret, self._api_key) if s]
        mask = Masker(secrets)
        # Masked before anything else: reducing a page to its words could break a secret
        # into pieces that no longer look like it.
        text = mask(_decode(body, response))
        data = _json_or_none(text)
        raw = "" if 200 <= status < 300 else _error_text(data, text)
        kind = classify(status, raw)
        message = _one_line(mask(raw), secrets) or mask(response.reason_phrase or f"HTTP {status}")
        record = None
        if parse_record and kind is AnswerKind.OK:
            record = PhoneNumberRecord.from_answer(data, clean=mask)
        return Answer(
            status=status,
            kind=kind,
            message=message,
            record=record,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            rate_limit=_rate_limit(response.headers),
        )

    def _scrub(self, text: str, secret: str | None) -> str:
        return scrub(text, [s for s in (secret, self._api_key) if s])


def tls_context(base_url: str) -> ssl.SSLContext | bool:
    """The TLS settings of a client of ``base_url``: httpx's default (verified, certifi's
    CAs) for ``https://``.  A plain ``http://`` base URL (loopback only, ``config.py``)
    never makes a TLS connection (the list's pages are followed on its own origin only),
    so it gets a context that verifies as strictly and trusts no CA: loading the CAs
    (about 20 ms of CPU) is not paid for nothing, and a TLS connection, were one ever
    made, would be refused rather than let through unverified."""
    if not base_url.lower().startswith("http://"):
        return True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname, CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing (``SigmaMindAPI`` sends no cookies)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


#: Items of a list answer, under one of these keys when the answer is an object.
LIST_KEYS = ("data", "items", "phoneNumbers", "results")
PAGE_SIZE = 100


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` is relative, or on the scheme, host and port of ``base_url``."""
    target, base = httpx.URL(url), httpx.URL(base_url)
    if not target.is_absolute_url:
        return True
    return (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)


class Pager:
    """Follows the list endpoint's pages in whatever shape it answers.

    Items: a JSON array, or an object holding it under ``data``, ``items``,
    ``phoneNumbers`` or ``results``.  More pages while it says so: a ``next`` URL, a
    ``nextCursor``/``cursor`` (sent back as ``?cursor=``), or ``page`` with
    ``hasMore``/``totalPages`` (asked for as ``?page=N+1``).  A cursor, URL or page seen
    twice ends the listing (an API that loops would otherwise never end), and so does a
    page that brings no number not seen before.  Each number is given once, at its first
    appearance.
    """

    def __init__(self, page_size: int = PAGE_SIZE) -> None:
        self.page_size = page_size
        self._next: tuple[str | None, dict[str, str]] | None = (None, {"limit": str(page_size)})
        self._seen_steps: set[str] = set()
        self._seen_numbers: set[str] = set()
        #: False once a page was not in a shape this reads (its numbers may be missing):
        #: such a listing can't prove a number absent.
        self.understood = True

    def next_request(self) -> tuple[str | None, dict[str, str] | None] | None:
        """``(url or None, params)`` of the next page to ask for, or None when done."""
        if self._next is None:
            return None
        url, params = self._next
        return url, (params or None)

    def take(self, data: Any) -> list[PhoneNumberRecord]:
        """The new records of one page's JSON; decides the next page."""
        items: Any = data
        meta: dict[str, Any] = {}
        if isinstance(data, dict):
            meta = data
            items = next((data[k] for k in LIST_KEYS if isinstance(data.get(k), list)), [])
        if isinstance(data, dict) and not any(isinstance(data.get(k), list) for k in LIST_KEYS):
            self.understood = False
        if not isinstance(items, list):
            self.understood = False
            items = []
        records: list[PhoneNumberRecord] = []
        for item in items:
            if not isinstance(item, dict):
                self.understood = False
                continue
            record = PhoneNumberRecord.from_answer(item)  # leniently: never raises
            if record is None:
                self.understood = False
                continue
            key = record.sip_phone_number or item.get("phoneNumber")
            if not isinstance(key, str):
                self.understood = False
                continue
            if key in self._seen_numbers:
                continue
            self._seen_numbers.add(key)
            records.append(record)
        # A page that brings no new number ends the listing, whatever it says of more: an
        # API that repeats its last page under fresh cursors would otherwise never end.
        self._next = self._follow(meta, bool(records))
        return records

    def _follow(
        self, meta: dict[str, Any], had_items: bool
    ) -> tuple[str | None, dict[str, str]] | None:
        limit = {"limit": str(self.page_size)}
        step: tuple[str | None, dict[str, str]] | None = None
        links = meta.get("links") if isinstance(meta.get("links"), dict) else {}
        next_url = meta.get("next") or (links or {}).get("next")
        cursor = meta.get("nextCursor", meta.get("next_cursor", meta.get("cursor")))
        page = meta.get("page")
        if isinstance(next_url, str) and next_url:
            step = (next_url, {})
        elif isinstance(cursor, str | int) and not isinstance(cursor, bool) and str(cursor):
            step = (None, {**limit, "cursor": str(cursor)})
        elif isinstance(page, int) and not isinstance(page, bool):
            more = meta.get("hasMore", meta.get("has_more"))
            total = meta.get("totalPages", meta.get("total_pages"))
            if more is True or (more is None and isinstance(total, int) and page < total):
                step = (None, {**limit, "page": str(page + 1)})
        if step is None or not had_items:
            return None
        key = f"{step[0]}|{sorted(step[1].items())}"
        if key in self._seen_steps:
            return None
        self._seen_steps.add(key)
        return step


def check_number(number: str) -> None:
    """Raise ``NotANumberError`` unless ``number`` is E.164 (``+`` then 7 to 15 digits):
    no request is ever made of an empty or edited cell (``DELETE /v1/phone-numbers/``)."""
    if not E164_RE.fullmatch(number):
        shown = repr(number) if len(number) <= 40 else repr(number[:40]) + "..."
        raise NotANumberError(f"{shown} is not an E.164 phone number: nothing was sent for it")


def _number_path(number: str) -> str:
    check_number(number)
    return f"{NUMBERS_PATH}/{quote(number, safe='')}"


def classify(status: int, message: str = "") -> AnswerKind:
    """The kind of an answer from its status (and, for 400/422, its message)."""
    if 200 <= status < 300:
        return AnswerKind.OK
    if status == 409 or (status in (400, 422) and _EXISTS_RE.search(message)):
        return AnswerKind.EXISTS
    if status in (401, 403):
        return AnswerKind.AUTH
    if status == 404:
        return AnswerKind.NOT_FOUND
    if status == 429:
        return AnswerKind.THROTTLED
    if status >= 500:
        return AnswerKind.SERVER
    return AnswerKind.REJECTED


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret masked, in every form a server may echo it.

    The forms: as sent, JSON-escaped (with and without ``ensure_ascii``),
    HTML entities (named or numeric) and URL encoding.  Whatever is not caught by form is
    caught by decoding: when a secret shows only once the text is HTML-, JSON- or
    URL-decoded, the decoded text is masked instead.  ``Masker`` does the same with the
    forms worked out once, for the many texts of one answer.
    """
    return Masker(secrets)(text)


class Masker:
    """``scrub`` for given secrets, their forms worked out once: called on every text of
    an answer (its body, its message, each field of its record).

    A secret's forms are worked out only once a text holds its longest run of ASCII
    letters and digits: every form keeps those characters as they are (JSON, HTML and URL
    encodings escape only the others), so a text without that run holds no form of it,
    and an answer that does not echo the row's password never pays for its eight forms.
    """

    __slots__ = ("_forms", "_keys", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._keys = [max(_ALNUM_RE.findall(s), key=len, default="") for s in self._secrets]
        self._forms: list[frozenset[str] | None] = [None] * len(self._secrets)

    def __call__(self, text: str) -> str:
        return self._scrub(text, depth=0) if self._secrets else text

    def _scrub(self, text: str, depth: int) -> str:
        for i, key in enumerate(self._keys):
            if key not in text:
                continue  # no form of this secret here (an empty key is in every text)
            written = self._forms[i]
            if written is None:
                written = self._forms[i] = _forms(self._secrets[i])
            for form in written:
                if form in text:
                    text = text.replace(form, MASK)
        if depth < 3:  # an encoding inside an encoding, at most three deep
            for decode in _decoders(text):
                decoded = decode(text)
                if decoded != text and any(s in decoded for s in self._secrets):
                    return self._scrub(decoded, depth + 1)
        return text


_ALNUM_RE = re.compile(r"[A-Za-z0-9]+")


def _decoders(text: str) -> list[Callable[[str], str]]:
    """Those of ``_scrub``'s decoders, in its order, that may change ``text``: the others
    give it back as it is (no ``&``: no HTML entity; no backslash and nothing but ASCII:
    no JSON escape nor surrogate; no ``%`` nor ``+``: no URL encoding)."""
    plain = text.isascii() and "\\" not in text
    percent = "%" in text
    return [
        decode
        for decode, may in (
            (html.unescape, "&" in text),
            (_json_unescape, not plain),
            (unquote_plus, percent or "+" in text),
            (unquote, percent),
        )
        if may
    ]


@lru_cache(maxsize=4)  # the API key's, asked for on every answer, stays
def _forms(secret: str) -> frozenset[str]:
    """``secret`` as a server may write it back."""
    ascii_json = json.dumps(secret)[1:-1]
    return frozenset(
        {
            secret,
            ascii_json,
            json.dumps(secret, ensure_ascii=False)[1:-1],
            html.escape(secret),
            html.escape(secret, quote=False),
            quote(secret, safe=""),
            quote(secret),
            quote_plus(secret),
        }
    )


_JSON_ESCAPE_RE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_JSON_SIMPLE = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _json_unescape(text: str) -> str:
    """JSON string escapes (``\\u00e4``, ``\\u003c``, ``\\"``) decoded, surrogate pairs joined."""

    def one(match: re.Match[str]) -> str:
        code, simple = match.groups()
        return chr(int(code, 16)) if code else _JSON_SIMPLE[simple]

    decoded = _JSON_ESCAPE_RE.sub(one, text)
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _one_line(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` on one line of at most ``MESSAGE_LIMIT`` characters, secrets still masked."""
    text = " ".join(text.split())
    if text:
        text = scrub(text, [" ".join(s.split()) for s in secrets])  # a secret with spaces
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _json_bytes(body: Any) -> bytes:
    """A JSON body as httpx encodes ``json=``: compact, UTF-8, no NaN."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is never read (the connection closes)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _decode(body: bytes, response: Reply) -> str:
    content_type = response.headers.get("Content-Type") or ""
    # httpx parses the header for a charset: only worth it when one is named
    charset = response.charset_encoding if "charset" in content_type.lower() else None
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _error_text(data: Any, text: str) -> str:
    if data is None:
        return _plain_text(text)
    try:
        return _extract_message(data)
    except (RecursionError, ValueError, TypeError):  # JSON too odd to render: its text
        return text


def _json_or_none(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        return None


_TITLE_OPEN_RE = re.compile(r"<title\b[^<>]*>", re.IGNORECASE)
_TITLE_CLOSE_RE = re.compile(r"</title\s*>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^<>]*>")


def _plain_text(text: str) -> str:
    """A non-JSON body as text: an HTML page is reduced to its title, or its words.

    Each step is one linear scan (no pattern can rescan the rest of the text from every
    ``<``), so a page of 40,000 ``<title>`` tags costs what its length costs.
    """
    opening = _TITLE_OPEN_RE.search(text)
    if opening:
        closing = _TITLE_CLOSE_RE.search(text, opening.end())
        if closing:
            return html.unescape(text[opening.end() : closing.start()])
    return html.unescape(_TAG_RE.sub(" ", text))


def _extract_message(data: Any) -> str:
    """One line from a JSON error body: its message/detail/errors/error, in any shape."""
    if isinstance(data, dict):
        parts: list[str] = []
        for key in _MESSAGE_KEYS:
            text = _render(data.get(key))
            if text and not any(text in p for p in parts):
                parts.append(text)
        if parts:
            return "; ".join(parts)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return _render(data)


def _render(value: Any, depth: int = 0) -> str:
    """Any JSON value as readable text: lists joined by '; ', field errors as 'field: msg'."""
    if value is None or depth > 4:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(t for t in (_render(v, depth + 1) for v in value) if t)
    if isinstance(value, dict):
        text = next((_render(value[k], depth + 1) for k in _ITEM_TEXT_KEYS if value.get(k)), "")
        if text:
            field = next((_field_name(value[k]) for k in _ITEM_FIELD_KEYS if value.get(k)), "")
            return f"{field}: {text}" if field else text
        return "; ".join(f"{k}: {_render(v, depth + 1)}" for k, v in value.items())
    return str(value)


def _field_name(loc: Any) -> str:
    """``["body", "phoneNumber"]`` -> ``phoneNumber``; ``"/phoneNumber"`` -> ``phoneNumber``."""
    if isinstance(loc, list):
        names = [str(p) for p in loc if p not in ("body", "query", "path")]
        return ".".join(names)
    return str(loc).strip("/").replace("/", ".")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # an HTTP date: rare, so its parser is loaded only then

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_rate_limit(headers: Mapping[str, str], now: float | None = None) -> RateLimitInfo | None:
    """The rate-limit headers of an answer, in whichever form the API uses; None if none.

    - ``X-RateLimit-Limit/-Remaining/-Reset`` (or the older IETF draft's ``RateLimit-Limit/
      -Remaining/-Reset``); ``Reset`` in seconds, or a Unix time (in ms above 1e12);
    - the IETF draft's ``RateLimit: limit=100, remaining=50, reset=30`` with
      ``RateLimit-Policy: 100;w=60``, which names the window;
    - the newest draft's structured fields, ``RateLimit: "burst";r=50;t=30`` with
      ``RateLimit-Policy: "burst";q=100;w=60``.

    A field may list several policies (a burst and a daily quota, say): the most
    restrictive is honoured, the one with the least ``remaining`` (the smallest quota per
    second when no ``remaining`` is given), with its own policy's quota and window.
    """
    items = _policies(headers.get("RateLimit"))
    policies = _policies(headers.get("RateLimit-Policy"))
    combined = min(items, key=_tightest_now, default={})
    named = [p for p in policies if combined.get("name") and p.get("name") == combined["name"]]
    policy = named[0] if named else min(policies, key=_tightest_rate, default={})

    def number(name: str, *keys: str) -> float | None:
        raw = headers.get(f"X-RateLimit-{name}") or headers.get(f"RateLimit-{name}")
        if raw is None:
            raw = next((combined[k] for k in keys if k in combined), None)
        return _finite(raw)

    limit = number("Limit", "limit", "q")
    remaining = number("Remaining", "remaining", "r")
    reset = number("Reset", "reset", "t")
    if limit is None:
        limit = _finite(policy.get("q", policy.get("")))
    window = _finite(policy.get("w"))
    if limit is None and remaining is None and reset is None:
        return None
    if reset is not None and reset > 1e9:  # an epoch (in ms above 1e12), not a delta
        epoch = reset / 1000 if reset > 1e12 else reset
        reset = max(0.0, epoch - (time.time() if now is None else now))
    return RateLimitInfo(
        limit=limit if limit is not None and limit > 0 else None,
        remaining=max(0, int(remaining)) if remaining is not None else None,
        reset=max(0.0, reset) if reset is not None else None,
        window=window if window is not None and window > 0 else None,
    )


def _rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """``parse_rate_limit``, asked only when a header's name says ``rate``: every header
    it reads does (``X-RateLimit-*``, ``RateLimit``, ``RateLimit-Policy``), and each of
    its look-ups scans all the headers, while most answers carry none of them."""
    if not any("rate" in name for name in headers.keys()):  # noqa: SIM118 - one pass
        return None
    return parse_rate_limit(headers)


def _policies(value: str | None) -> list[dict[str, str]]:
    """A rate-limit field as one dict per policy it lists.

    ``limit=100, remaining=5`` (the IETF draft's one policy, its keys split by commas),
    ``100;w=60, 1000;w=3600`` (a bare number is stored under ``""``) or ``"burst";q=100;
    w=60, "daily";q=5000;w=86400`` (the quoted name is stored under ``"name"``).
    """
    if not value:
        return []
    if ";" not in value and "=" in value.split(",")[0]:
        members = [value.split(",")]  # one policy, its parameters split by commas
    else:
        members = [member.split(";") for member in value.split(",")]
    policies = []
    for parts in members:
        items: dict[str, str] = {}
        for part in parts:
            key, sep, raw = part.strip().partition("=")
            key = key.strip()
            if sep:
                items.setdefault(key.lower(), raw.strip().strip('"'))
            elif key.startswith('"'):
                items.setdefault("name", key.strip('"'))
            elif key:
                items.setdefault("", key)
        if items:
            policies.append(items)
    return policies


def _tightest_now(item: dict[str, str]) -> tuple[float, float]:
    """Least remaining first; of equals, the one that stays so longer."""
    remaining = _finite(item.get("r", item.get("remaining")))
    reset = _finite(item.get("t", item.get("reset"))) or 0.0
    return (math.inf if remaining is None else remaining, -reset)


def _tightest_rate(policy: dict[str, str]) -> float:
    """A policy's quota per second (its quota alone without a window)."""
    quota = _finite(policy.get("q", policy.get("")))
    window = _finite(policy.get("w"))
    if quota is None:
        return math.inf
    return quota / window if window else quota


def _finite(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _maybe_sent(exc: httpx.TransportError) -> bool:
    """False only when the request surely never left (connect failed, no free connection)."""
    return not isinstance(exc, _NOT_SENT)


def _describe(exc: httpx.TransportError, timeout: float) -> str:
    """A transport error of httpx's (a transport passed in) in words; the default
    transport writes its own (``_http``), in the same words."""
    if isinstance(exc, httpx.ReadTimeout):
        return f"no answer within {timeout:g} s (read timeout)"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect within {timeout:g} s"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection within {timeout:g} s"
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {detail}"
    return f"connection failed: {detail}"
