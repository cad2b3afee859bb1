"""The sandbox's configuration: every knob of the emulator, and the faults it can inject.

Kept free of the web stack, so that ``bulk-import --help`` and ``bulk-import run`` can
build the sandbox's options without importing starlette or uvicorn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

#: When the rate-limited sandbox sends ``X-RateLimit-Limit/Remaining/Reset``.
RateHeaders = Literal["all", "429", "none"]
RATE_HEADERS: tuple[RateHeaders, ...] = ("all", "429", "none")
#: How the sandbox enforces and announces ``rate`` (see ``sandbox/limits.py``).
RateStyle = Literal["silent", "bucket", "window", "ietf"]
RATE_STYLES: tuple[RateStyle, ...] = ("silent", "bucket", "window", "ietf")
#: How the ``ietf`` style writes its headers (see ``sandbox/limits.py``).
IetfForm = Literal["draft", "trio", "structured"]
IETF_FORMS: tuple[IetfForm, ...] = ("draft", "trio", "structured")
#: The window of ``rate_style`` "window" and "ietf" when none is given, in seconds.
DEFAULT_WINDOWS: dict[str, float] = {"window": 60.0, "ietf": 1.0}

#: The shapes the list endpoint can answer in (the client must follow each):
#: ``cursor`` ``{"data": [...], "nextCursor": "..."|null}`` (``?limit=&cursor=``),
#: ``array`` a plain JSON array of every number (one page),
#: ``next`` ``{"items": [...], "next": URL|null}``,
#: ``page`` ``{"results": [...], "page": N, "hasMore": bool, "totalPages": T}`` (``?page=``).
ListStyle = Literal["cursor", "array", "next", "page"]
LIST_STYLES: tuple[ListStyle, ...] = ("cursor", "array", "next", "page")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Every knob of the emulator.

    ``rate`` limits requests per second across the API endpoints, enforced and announced
    in the ``rate_style`` of ``sandbox/limits.py`` (``silent``, ``bucket`` (the default:
    a token bucket holding ``burst``, by default ``max(1, rate / 10)``), ``window`` (``rate
    * window`` per ``window`` seconds, 60 by default), ``ietf`` (the IETF draft's headers,
    over 1 s by default)); ``announce_rate`` makes the headers announce another limit
    than the one enforced.  ``Reset`` is whole seconds rounded up, with ``decimal_reset``
    3 decimals, with ``reset_epoch`` (window style) a Unix time; ``ietf_form`` picks the
    IETF headers: ``draft`` (``RateLimit-Policy: Q;w=W`` + ``RateLimit: limit=, remaining=,
    reset=``), ``trio`` (the older ``RateLimit-Limit/-Remaining/-Reset``; ``ietf_trio``
    is the same) or ``structured`` (the newest draft's ``"name";q=Q;w=W`` and
    ``"name";r=N;t=S``, with a second, looser daily policy in each field).  The headers
    go on every answer (``rate_headers="all"``), on its 429s only (``"429"``), or never
    (``"none"``, like the silent style).  ``latency_ms`` delays every API answer.
    ``reject_all`` answers every import 400 (an API that refuses every row).
    The ``*_rate`` fields are probabilities (their sum at most 1) applied to ``POST
    /v1/phone-numbers/import`` only, after the key and rate checks:

    - ``fail_rate``: 500, nothing stored;
    - ``unavailable_rate``: 503 with ``Retry-After: fault_retry_after``, nothing stored;
    - ``reset_rate``: the connection is dropped without an answer, nothing stored;
    - ``drop_after_store_rate``: the number is stored, then the connection is dropped;
    - ``late_rate``: the number is stored, the 201 is sent only after ``late_ms``.

    ``burst_429_every=N`` answers every Nth import request 429 with ``Retry-After:
    fault_retry_after``.  ``Retry-After`` is whole seconds rounded up (HTTP's
    delta-seconds) unless ``decimal_retry_after``, then seconds with 3 decimals.
    ``seed`` makes the fault draws repeatable.  The faults apply to every write: the
    import's POST, PATCH and DELETE (for those, "stored" means "applied").

    ``list_style`` and ``page_size`` shape ``GET /v1/phone-numbers`` (see ``ListStyle``);
    ``preload`` is a file (an export, or an import file) whose numbers the sandbox holds
    from the start and again after each reset.
    """

    api_key: str = "sandbox-key"
    rate: float | None = None
    rate_headers: RateHeaders = "all"
    rate_style: RateStyle = "bucket"
    window: float | None = None
    announce_rate: float | None = None
    burst: float | None = None
    decimal_reset: bool = False
    reset_epoch: bool = False
    ietf_trio: bool = False
    ietf_form: IetfForm = "draft"
    reject_all: bool = False
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    unavailable_rate: float = 0.0
    reset_rate: float = 0.0
    drop_after_store_rate: float = 0.0
    late_rate: float = 0.0
    late_ms: float = 2000.0
    burst_429_every: int | None = None
    fault_retry_after: float = 1.0
    decimal_retry_after: bool = False
    seed: int | None = None
    list_style: ListStyle = "cursor"
    page_size: int = 100
    preload: Path | None = None

    def __post_init__(self) -> None:
        if self.list_style not in LIST_STYLES:
            raise ValueError(f"list_style must be one of {', '.join(LIST_STYLES)}")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        numbers = (self.latency_ms, self.late_ms, self.fault_retry_after)
        if not all(math.isfinite(n) for n in (*numbers, self.rate or 1.0)):
            raise ValueError("rate, latency_ms, late_ms and fault_retry_after must be finite")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        if self.rate_headers not in RATE_HEADERS:
            raise ValueError(f"rate_headers must be one of {', '.join(RATE_HEADERS)}")
        if self.ietf_form not in IETF_FORMS:
            raise ValueError(f"ietf_form must be one of {', '.join(IETF_FORMS)}")
        if self.rate_style not in RATE_STYLES:
            raise ValueError(f"rate_style must be one of {', '.join(RATE_STYLES)}")
        for name in ("window", "announce_rate", "burst"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number")
        if self.latency_ms < 0 or self.late_ms < 0 or self.fault_retry_after < 0:
            raise ValueError("latency_ms, late_ms and fault_retry_after must be >= 0")
        if self.burst_429_every is not None and self.burst_429_every < 1:
            raise ValueError("burst_429_every must be >= 1 (or None)")
        probabilities = [p for _, p in self.fault_rates()]
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or sum(probabilities) > 1.0 + 1e-9:
            raise ValueError("fault rates must each be in [0, 1] and sum to at most 1")

    def effective_ietf_form(self) -> IetfForm:
        """The IETF headers' form (``ietf_trio`` is the older name of ``"trio"``)."""
        return "trio" if self.ietf_trio else self.ietf_form

    def effective_window(self) -> float:
        """The window of the window and IETF styles, in seconds (1 for the others)."""
        if self.window is not None:
            return self.window
        return DEFAULT_WINDOWS.get(self.rate_style, 1.0)

    def fault_rates(self) -> list[tuple[Fault, float]]:
        """The probabilistic faults with their probabilities, in the order they are drawn."""
        return [
            (Fault.FAIL, self.fail_rate),
            (Fault.UNAVAILABLE, self.unavailable_rate),
            (Fault.RESET, self.reset_rate),
            (Fault.DROP_AFTER_STORE, self.drop_after_store_rate),
            (Fault.LATE, self.late_rate),
        ]


class Fault(StrEnum):
    """A fault injected into one import request (the keys of ``stats()["faults"]``)."""

    BURST_429 = "burst_429"
    FAIL = "fail"
    UNAVAILABLE = "unavailable"
    RESET = "reset"
    DROP_AFTER_STORE = "drop_after_store"
    LATE = "late"
