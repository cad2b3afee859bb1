"""The sandbox's HTTP API: the SigmaMind phone-number endpoints, in memory.

This module owns ``SandboxState`` (the stored numbers and the counters tests read) and
``SandboxApp``, the ASGI application.  Its entry point does what applies to every API
request (count it, wait ``latency_ms``, rate-limit, check ``X-API-Key``, count the
answer's status) and hands the request to a Starlette router whose handlers implement
the endpoints of docs/contract.md ("The API") with the validation rules of
``bulk_import.payloads.ImportRequest``.

``/_sandbox/stats`` (GET) and ``/_sandbox/reset`` (POST) need no key, are not counted and
are never delayed, limited or faulted.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from bulk_import.models import (
    OPTIONAL_FIELDS,
    PATCH_NAMES,
    RULES,
    SIP_URI_RE,
)
from bulk_import.payloads import ImportRequest
from bulk_import.sandbox.faults import TRANSPORT_KEY, DropConnection, FaultDice
from bulk_import.sandbox.limits import RateLimit, format_retry_after
from bulk_import.sandbox.settings import Fault, SandboxConfig

#: The fields of a stored number that the API answers with (never the trunk credentials).
#: seconds without a 429 of the rate limit that end a throttling episode (``stats()``)
EPISODE_GAP = 0.25

PUBLIC_FIELDS = (
    "sipPhoneNumber",
    "inboundAgentId",
    "outboundAgentId",
    "outboundPhoneNumber",
    "active",
    "terminationSipURI",
    "friendlyName",
)

#: PATCH body name -> stored field name.
PATCH_FIELDS = {patch: name for name, patch in PATCH_NAMES.items()}

Record = dict[str, Any]


class PatchRequest(BaseModel):
    """The body of ``PATCH /v1/phone-numbers/{phoneNumber}``: every field optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The constraints of ``bulk_import.models.FIELDS``, by JSON name (tests check the names).
    friendlyName: str | None = Field(default=None, **RULES["friendlyName"])
    inboundAgentId: str | None = Field(default=None, **RULES["inboundAgentId"])
    outboundAgentId: str | None = Field(default=None, **RULES["outboundAgentId"])
    outboundPhoneNumber: str | None = Field(default=None, **RULES["outboundPhoneNumber"])
    terminationSipUri: str | None = Field(default=None, **RULES["terminationSipURI"])
    trunkUsername: str | None = Field(default=None, **RULES["trunkUsername"])
    trunkPassword: str | None = Field(default=None, **RULES["trunkPassword"])

    @field_validator("terminationSipUri")
    @classmethod
    def _sip_shape(cls, value: str | None) -> str | None:
        if value is not None and not SIP_URI_RE.match(value):
            raise ValueError("is not a SIP host or URI")
        return value


class SandboxState:
    """Everything the sandbox holds; touched only from the server's event loop.

    ``records`` maps a number to its stored record (JSON names, trunk credentials
    included); ``created`` counts successful creations per number (a number deleted and
    created again counts 2); ``attempts`` counts import requests per number in the body;
    ``requests`` counts API requests and ``status_counts`` their answers by status;
    ``faults`` counts injected faults by ``Fault`` value.  Setting ``reject_all`` makes
    every import answer 400 (a refusal that is not a validation rule of ours).
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget every number and counter; the rate limit and fault draws start over.

        The numbers of ``config.preload`` are held again.
        """
        if not hasattr(self, "_preloaded"):
            self._preloaded = preload_records(self.config.preload)
        self.records: dict[str, Record] = {n: dict(r) for n, r in self._preloaded.items()}
        self.methods: Counter[str] = Counter()
        self.patches: dict[str, list[dict[str, Any]]] = {}
        self.deleted: Counter[str] = Counter()
        self.created: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.status_counts: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.reject_all = self.config.reject_all
        self.first_request: float | None = None  # time.monotonic() of the first API request
        self.last_answer: float | None = None  # ... and of the last answer's start
        self.limiter = RateLimit(self.config) if self.config.rate is not None else None
        self.throttle_episodes = 0  # runs of the limit's 429s, each EPISODE_GAP from the last
        self.last_throttle = -math.inf
        self.dice = FaultDice(self.config)

    def stats(self) -> dict[str, Any]:
        """The JSON of ``GET /_sandbox/stats``."""
        return {
            "created": dict(self.created),
            "attempts": dict(self.attempts),
            "requests": self.requests,
            "by_status": {str(s): n for s, n in sorted(self.status_counts.items())},
            "faults": dict(self.faults),
            "records": len(self.records),
            "first_request": self.first_request,
            "last_answer": self.last_answer,
            "throttle_episodes": self.throttle_episodes,
            "methods": dict(self.methods),
            "deleted": dict(self.deleted),
        }

    @property
    def writes(self) -> int:
        """Requests that could change something: POST, PATCH, DELETE."""
        return sum(self.methods[m] for m in ("POST", "PATCH", "DELETE", "PUT"))


def preload_records(path: Any) -> dict[str, Record]:
    """The numbers of a file (an export or an import file) as stored records."""
    if path is None:
        return {}
    from bulk_import.load import open_table
    from bulk_import.validate import PhoneError, normalize_phone

    records: dict[str, Record] = {}
    with open_table(path) as table:
        raws = list(table.rows())
    for raw in raws:
        values = raw.values
        try:
            number = normalize_phone(values.get("phoneNumber", ""), None)
        except PhoneError:
            continue
        outbound = values.get("outboundPhoneNumber")
        records[number] = {
            "sipPhoneNumber": number,
            "inboundAgentId": values.get("inboundAgentId"),
            "outboundAgentId": values.get("outboundAgentId"),
            "outboundPhoneNumber": outbound,
            "active": True,
            "terminationSipURI": values.get("terminationSipURI"),
            "friendlyName": values.get("friendlyName") or number,
            "trunkUsername": values.get("trunkUsername"),
            "trunkPassword": values.get("trunkPassword"),
        }
    return records


def public(record: Record) -> Record:
    """The API's view of a stored record."""
    return {name: record.get(name) for name in PUBLIC_FIELDS}


def message(status: int, text: str, **extra: Any) -> JSONResponse:
    """An error answer: ``{"message": text, ...}``."""
    return JSONResponse({"message": text, **extra}, status_code=status)


def validation_errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{"field", "message"}]``, never echoing an input value."""
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in error.errors(include_url=False, include_context=False, include_input=False)
    ]


def unprocessable(errors: list[dict[str, str]]) -> JSONResponse:
    """422 naming every invalid field."""
    text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return message(422, f"invalid request: {text}", errors=errors)


def validate_import(body: Any) -> ImportRequest | list[dict[str, str]]:
    """The import request in ``body``, or its errors.

    The rules of ``ImportRequest``, and one more (docs/contract.md, "Fields"): an absent optional
    field is left out, so an optional field sent as ``null`` or ``""`` is refused.
    """
    errors = [
        {"field": name, "message": "an absent value must be left out, not sent as null or ''"}
        for name in OPTIONAL_FIELDS
        if isinstance(body, dict) and name in body and body[name] in (None, "")
    ]
    try:
        request = ImportRequest.model_validate(body)
    except ValidationError as exc:
        named = {e["field"] for e in errors}
        return errors + [e for e in validation_errors(exc) if e["field"] not in named]
    return errors or request


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON, or ``ValueError``."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("the body is not valid JSON") from exc


class SandboxApp:
    """The ASGI application; ``state`` and ``config`` are there for in-process tests."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.state = SandboxState(self.config)
        self._api_key = self.config.api_key.encode()
        self._latency = self.config.latency_ms / 1000
        self.router = Starlette(
            routes=[
                Route("/v1/phone-numbers/import", self.import_number, methods=["POST"]),
                Route("/v1/phone-numbers", self.list_numbers, methods=["GET"]),
                Route("/v1/phone-numbers/{number}", self.get_number, methods=["GET"]),
                Route("/v1/phone-numbers/{number}", self.patch_number, methods=["PATCH"]),
                Route("/v1/phone-numbers/{number}", self.delete_number, methods=["DELETE"]),
                Route("/_sandbox/stats", self.stats, methods=["GET"]),
                Route("/_sandbox/reset", self.reset, methods=["POST"]),
            ]
        )
        self.router.state.sandbox = self.state

    # -- entry point ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.router(scope, receive, send)
            return
        state = self.state
        state.requests += 1
        if state.first_request is None:
            state.first_request = time.monotonic()
        state.methods[scope["method"]] += 1
        # uvicorn's send is a bound method of the request cycle, which holds the transport.
        scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        if self._latency:
            await asyncio.sleep(self._latency)

        limit_headers: list[tuple[bytes, bytes]] = []
        if state.limiter is not None:
            wait = state.limiter.take()
            limit_headers = state.limiter.headers(throttled=wait > 0)
            if wait:
                now = time.monotonic()
                if now - state.last_throttle >= EPISODE_GAP:
                    state.throttle_episodes += 1
                state.last_throttle = now
                retry = format_retry_after(wait, self.config.decimal_retry_after)
                response: Response = message(
                    429, "rate limit exceeded", retry_after_seconds=round(wait, 3)
                )
                response.headers["Retry-After"] = retry
                await self._answer(response, scope, receive, send, limit_headers)
                return

        key = next((v for k, v in scope["headers"] if k == b"x-api-key"), None)
        if key != self._api_key:
            response = (
                message(401, "missing API key (X-API-Key header)")
                if key is None
                else message(403, "invalid API key")
            )
            await self._answer(response, scope, receive, send, limit_headers)
            return

        async def counted_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                state.status_counts[msg["status"]] += 1
                state.last_answer = time.monotonic()
                if limit_headers:
                    msg["headers"] = [*msg.get("headers", ()), *limit_headers]
            await send(msg)

        await self.router(scope, receive, counted_send)

    async def _answer(
        self,
        response: Response,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.state.status_counts[response.status_code] += 1
        self.state.last_answer = time.monotonic()
        response.raw_headers.extend(extra_headers)
        await response(scope, receive, send)

    # -- API endpoints -------------------------------------------------------------------

    async def import_number(self, request: Request) -> Response:
        """``POST /v1/phone-numbers/import``: validate, refuse duplicates, store, 201."""
        state = self.state
        try:
            body = await json_body(request)
        except ValueError as exc:
            body = None
            parse_error: str | None = str(exc)
        else:
            parse_error = None
        if isinstance(body, dict) and isinstance(body.get("phoneNumber"), str):
            state.attempts[body["phoneNumber"]] += 1
            state.bodies[body["phoneNumber"]] = body
        if state.reject_all:
            return message(400, "the API refuses this import (sandbox reject_all)")

        fault = state.dice.roll()
        if fault is not None and fault not in (Fault.DROP_AFTER_STORE, Fault.LATE):
            state.faults[fault] += 1
            return self._pre_store_fault(fault)

        if parse_error is not None:
            return message(400, parse_error)
        req = validate_import(body)
        if isinstance(req, list):
            return unprocessable(req)
        number = req.phone_number
        if number in state.records:
            return message(409, f"phone number {number} already exists")

        record: Record = {
            "sipPhoneNumber": number,
            "inboundAgentId": req.inbound_agent_id,
            "outboundAgentId": req.outbound_agent_id,
            "outboundPhoneNumber": req.outbound_phone_number,
            "active": True,
            "terminationSipURI": req.termination_sip_uri,
            "friendlyName": req.friendly_name if req.friendly_name is not None else number,
            "trunkUsername": req.trunk_username,
            "trunkPassword": req.trunk_password.get_secret_value(),
        }
        state.records[number] = record
        state.created[number] += 1

        if fault is Fault.DROP_AFTER_STORE:
            state.faults[fault] += 1
            return DropConnection()
        if fault is Fault.LATE:
            state.faults[fault] += 1
            await asyncio.sleep(self.config.late_ms / 1000)
        return JSONResponse(public(record), status_code=201)

    def _pre_store_fault(self, fault: Fault) -> Response:
        if fault is Fault.RESET:
            return DropConnection()
        if fault is Fault.FAIL:
            return message(500, "internal error (injected by the sandbox)")
        retry = format_retry_after(self.config.fault_retry_after, self.config.decimal_retry_after)
        if fault is Fault.BURST_429:
            response = message(429, "too many requests (burst, injected by the sandbox)")
        else:
            response = message(503, "service unavailable (injected by the sandbox)")
        response.headers["Retry-After"] = retry
        return response

    async def list_numbers(self, request: Request) -> Response:
        """``GET /v1/phone-numbers``: the stored numbers in creation order, a page at a time,
        in the shape of ``config.list_style``."""
        records = [public(r) for r in self.state.records.values()]
        style = self.config.list_style
        if style == "array":
            return JSONResponse(records)
        query = request.query_params
        size = self.config.page_size
        if (limit := query.get("limit", "")).isdigit() and int(limit) > 0:
            size = min(size, int(limit))
        if style == "page":
            page = int(query["page"]) if query.get("page", "").isdigit() else 1
            page = max(page, 1)
            total = max(1, -(-len(records) // size))
            chunk = records[(page - 1) * size : page * size]
            return JSONResponse(
                {"results": chunk, "page": page, "hasMore": page < total, "totalPages": total}
            )
        token = query.get("cursor" if style == "cursor" else "offset", "")
        start = int(token.removeprefix("o")) if token.removeprefix("o").isdigit() else 0
        chunk = records[start : start + size]
        more = start + size < len(records)
        if style == "cursor":
            return JSONResponse({"data": chunk, "nextCursor": f"o{start + size}" if more else None})
        following = str(request.url.replace_query_params(offset=start + size, limit=size))
        return JSONResponse({"items": chunk, "next": following if more else None})

    async def get_number(self, request: Request) -> Response:
        """``GET /v1/phone-numbers/{phoneNumber}``."""
        number = request.path_params["number"]
        record = self.state.records.get(number)
        if record is None:
            return message(404, f"phone number {number} not found")
        return JSONResponse(public(record))

    async def patch_number(self, request: Request) -> Response:
        """``PATCH /v1/phone-numbers/{phoneNumber}``: change the fields sent, 200."""
        number = request.path_params["number"]
        try:
            body = await json_body(request)
        except ValueError as exc:
            return message(400, str(exc))
        try:
            patch = PatchRequest.model_validate(body)
        except ValidationError as exc:
            return unprocessable(validation_errors(exc))
        state = self.state
        state.patches.setdefault(number, []).append(body)
        fault = state.dice.roll()
        if fault is not None and fault not in (Fault.DROP_AFTER_STORE, Fault.LATE):
            state.faults[fault] += 1
            return self._pre_store_fault(fault)
        record = state.records.get(number)
        if record is None:
            return message(404, f"phone number {number} not found")
        # A field sent as null is cleared (how undo puts back a field that was absent).
        for name, value in patch.model_dump(exclude_unset=True).items():
            record[PATCH_FIELDS[name]] = value
        if record.get("friendlyName") is None:
            record["friendlyName"] = number
        return await self._after_store(fault, JSONResponse(public(record)))

    async def _after_store(self, fault: Fault | None, response: Response) -> Response:
        if fault is Fault.DROP_AFTER_STORE:
            self.state.faults[fault] += 1
            return DropConnection()
        if fault is Fault.LATE:
            self.state.faults[fault] += 1
            await asyncio.sleep(self.config.late_ms / 1000)
        return response

    async def delete_number(self, request: Request) -> Response:
        """``DELETE /v1/phone-numbers/{phoneNumber}``: 204, or 404."""
        number = request.path_params["number"]
        state = self.state
        fault = state.dice.roll()
        if fault is not None and fault not in (Fault.DROP_AFTER_STORE, Fault.LATE):
            state.faults[fault] += 1
            return self._pre_store_fault(fault)
        if state.records.pop(number, None) is None:
            return message(404, f"phone number {number} not found")
        state.deleted[number] += 1
        return await self._after_store(fault, Response(status_code=204))

    # -- inspection ----------------------------------------------------------------------

    async def stats(self, request: Request) -> Response:
        """``GET /_sandbox/stats``: ``SandboxState.stats()``."""
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        """``POST /_sandbox/reset``: ``SandboxState.reset()``, 204."""
        self.state.reset()
        return Response(status_code=204)
