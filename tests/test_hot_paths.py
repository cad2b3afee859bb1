"""The per-row hot paths: each shortcut gives what the full way gives, and is taken.

A realistic row costs two phone numbers to read and an answer to mask; these tests check
that the short ways (a number that is E.164 once its spaces and dashes go; a secret's
forms worked out once per answer; no cookie handling) keep the results of the long ones.
"""

from __future__ import annotations

import asyncio
import gc
import html
import io
import random
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulk_import import api, validate
from bulk_import.api import SigmaMindAPI
from bulk_import.payloads import ImportRequest
from bulk_import.validate import PhoneError, normalize_phone

KEY = "sk-test-3b9c1d2e7f"
PASSWORD = "Tr0,\"';!x%+&<"
ESCAPED = html.escape(PASSWORD)  # as a server may echo it


def read(text: str, region: str | None) -> str:
    try:
        return normalize_phone(text, region)
    except PhoneError as exc:
        return f"error: {exc}"


def corpus(count: int = 4000) -> list[str]:
    """Phone cells of every shape: spaced, dashed, bracketed, 00, full-width, floats."""
    rng = random.Random(18)
    pieces = "0123456789  --.()\t０+eE"
    cells = ["+44 20 7946 0123", "+1 415-555-2671", "-+12125550123", "+1 212 555 01", "+0 1234567"]
    for _ in range(count):
        if rng.random() < 0.5:
            cc = rng.choice(["1", "44", "49", "33", "81", "7", "380", "998", "999"])
            rest = "".join(rng.choice("0123456789 -") for _ in range(rng.randrange(4, 14)))
            cells.append(f"{rng.choice(['+', '00', '', ' +'])}{cc} {rest}")
        else:
            size = rng.randrange(1, 18)
            cells.append("+" + "".join(rng.choice(pieces) for _ in range(size)))
    return cells


@pytest.mark.parametrize("region", [None, "US"])
def test_the_short_reading_of_a_number_is_the_long_one(region: str | None) -> None:
    cells = corpus()
    short = [read(c, region) for c in cells]
    columns = validate._phone_numbers(cells, region)
    # A leading tab defeats the short way (only spaces and dashes are dropped there) and
    # means nothing to the long one (it strips the cell): every step is taken.
    long = [read("\t" + c, region) for c in cells]
    assert [s.startswith("error") for s in short] == [r.startswith("error") for r in long]
    assert [s for s in short if not s.startswith("error")] == [
        r for r in long if not r.startswith("error")
    ]
    assert columns == [None if s.startswith("error") else s for s in short]
    assert sum(not r.startswith("error") for r in long) > 300  # the corpus reads numbers


def test_a_spaced_number_skips_the_slow_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = unicodedata.normalize

    def normalize(form: Any, text: str) -> str:
        calls.append(text)
        return str(original(form, text))

    monkeypatch.setattr(unicodedata, "normalize", normalize)
    assert normalize_phone("+44 20 7946 0123", None) == "+442079460123"
    assert normalize_phone("+1 415-555-2671", None) == "+14155552671"
    assert validate._phone_numbers(["+33 1 23 45 67 89"], None) == ["+33123456789"]
    assert calls == []
    assert normalize_phone("+44 (0)20 7946 0123", None) == "+442079460123"
    assert calls == ["+44 (0)20 7946 0123"]  # the other shapes still take every step


def call(handler: Any, calls: int = 1) -> list[api.Answer]:
    request = ImportRequest.model_validate(
        {
            "phoneNumber": "+14155552671",
            "trunkUsername": "user",
            "trunkPassword": PASSWORD,
            "terminationSipURI": "sip.telnyx.com",
            "friendlyName": "Front desk",
        }
    )

    async def go() -> list[api.Answer]:
        async with SigmaMindAPI(
            "https://api.example.test/", KEY, transport=httpx.MockTransport(handler)
        ) as client:
            return [await client.create(request) for _ in range(calls)]

    return asyncio.run(go())


def echo_record(req: httpx.Request) -> httpx.Response:
    record = {
        "sipPhoneNumber": "+14155552671",
        "friendlyName": f"pw {PASSWORD} key {KEY}",
        "terminationSipURI": ESCAPED,
        "inboundAgentId": "a",
        "outboundAgentId": "b",
        "outboundPhoneNumber": "+14155550000",
    }
    return httpx.Response(201, json=record)


def test_an_answer_is_masked_with_each_secrets_forms_worked_out_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api._forms.cache_clear()
    escapes: list[str] = []
    original = html.escape

    def escape(text: str, quote: bool = True) -> str:
        escapes.append(text)
        return original(text, quote)

    monkeypatch.setattr(html, "escape", escape)
    (answer,) = call(echo_record)
    assert answer.record is not None
    assert answer.record.friendly_name == "pw *** key ***"
    assert answer.record.termination_sip_uri == "***"
    # Two forms use html.escape: twice for the password, twice for the key, once each.
    assert sorted(escapes) == sorted([PASSWORD, PASSWORD, KEY, KEY])


def test_cookies_a_server_sets_are_not_sent_back() -> None:
    seen: list[str | None] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.headers.get("Cookie"))
        return httpx.Response(
            201, json={"sipPhoneNumber": "+14155552671"}, headers={"Set-Cookie": "s=1; Path=/"}
        )

    answers = call(handler, calls=2)
    assert [a.status for a in answers] == [201, 201]
    assert seen == [None, None]


@pytest.mark.parametrize(
    ("content_type", "body", "name"),
    [
        (
            "application/json; charset=latin-1",
            '{"friendlyName": "Caf\xe9"}'.encode("latin-1"),
            "Café",
        ),
        ("application/json", '{"friendlyName": "Café"}'.encode(), "Café"),
        ("application/json; CHARSET=utf-16", '{"friendlyName": "Café"}'.encode("utf-16"), "Café"),
        ("application/json; charset=nonesuch", b'{"friendlyName": "Caf\xc3\xa9"}', "Café"),
    ],
)
def test_an_answer_is_read_in_the_charset_it_names(
    content_type: str, body: bytes, name: str
) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=body, headers={"Content-Type": content_type})

    (answer,) = call(handler)
    assert answer.record is not None
    assert answer.record.friendly_name == name


def test_a_dry_run_collects_garbage_less_often_then_as_before(tmp_path: Path) -> None:
    from bulk_import.collector import YOUNG_THRESHOLD, fewer_collections

    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] >= YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
    assert gc.get_threshold() == before
    seen: list[tuple[int, ...]] = []
    original = validate.Validator.check_chunk

    def check_chunk(self: validate.Validator, chunk: Any) -> Any:
        seen.append(gc.get_threshold())
        return original(self, chunk)

    source = tmp_path / "in.csv"
    source.write_text(
        "phoneNumber,trunkUsername,trunkPassword,terminationSipURI\n"
        "+44 20 7946 0123,u,p,sip.example.com\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validate.Validator, "check_chunk", check_chunk)
        from bulk_import.cli import main

        assert main(["run", str(source), "--dry-run", "--no-progress", "--quiet"]) == 0
    assert seen
    assert all(t[0] >= YOUNG_THRESHOLD for t in seen)
    assert gc.get_threshold() == before


@pytest.mark.parametrize("limit", [2, 7, 16, 100])
def test_the_long_line_scan_answers_as_measuring_every_line(limit: int) -> None:
    from bulk_import.load import _has_line_over, _longest_line

    rng = random.Random(limit)
    for _ in range(500):
        size = rng.randrange(0, 600)
        data = bytes(rng.choice(b"ab\n") if rng.random() < 0.1 else 97 for _ in range(size))
        if rng.random() < 0.3:
            data = data.replace(b"\n", b"")
        expected = _longest_line(io.BytesIO(data)) > limit
        assert _has_line_over(io.BytesIO(data), limit) is expected


def test_a_chunk_of_even_rows_is_transposed_as_before() -> None:
    from bulk_import.load import _transposed

    assert _transposed([["a", "b"], ["c", "d"]]) == [("a", "c"), ("b", "d")]
    assert _transposed([["a", "b"], [], ["c"]]) == [("a", "", "c"), ("b", "", "")]
    assert _transposed([]) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "2"},
        {"x-ratelimit-remaining": "0"},
        {"RateLimit-Policy": "100;w=60", "RateLimit": "limit=100, remaining=50, reset=30"},
        {"RATELIMIT-RESET": "4", "Server": "x"},
    ],
)
def test_an_answers_rate_limit_is_read_as_parse_rate_limit_reads_it(
    headers: dict[str, str],
) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"sipPhoneNumber": "+14155552671"}, headers=headers)

    (answer,) = call(handler)
    assert answer.rate_limit == api.parse_rate_limit(httpx.Headers(headers))
    assert (answer.rate_limit is None) == (not headers)


def test_fingerprints_are_the_hmacs_of_each_field() -> None:
    import hashlib
    import hmac

    from bulk_import.decide import fingerprint

    rng = random.Random(7)
    names = ["phoneNumber", "trunkPassword", "friendlyName", "outboundPhoneNumber", "other"]
    for size in (0, 1, 16, 32, 63, 64, 65, 100, 200):
        salt = bytes(rng.randrange(256) for _ in range(size))
        fields = {n: "".join(rng.choice("ab,\"';!é ") for _ in range(9)) for n in names}
        expected = {
            n: hmac.new(salt, f"{n}={v}".encode(), hashlib.sha256).hexdigest()[:32]
            for n, v in sorted(fields.items())
            if n != "other"
        }
        assert fingerprint(fields, salt) == expected
        assert list(fingerprint(fields, salt)) == list(expected)


def test_a_column_of_plain_numbers_is_read_as_cell_by_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    columns = [corpus(40) for _ in range(50)]
    columns += [[f"+1 212 555 {i:04d}" for i in range(size)] for size in (1, 2, 300)]
    columns += [[f"+44 20 7946 {i:04d}" for i in range(9)] + [c] for c in corpus(200)]
    columns += [rng.sample(corpus(30), 5) + ["+1 212 555 0101"] * 3]
    fast = [validate._phone_numbers(cells, region) for cells in columns for region in (None, "US")]
    assert validate._plain_numbers(columns[50]) is not None  # the short way is taken
    monkeypatch.setattr(validate, "_plain_numbers", lambda cells: None)
    slow = [validate._phone_numbers(cells, region) for cells in columns for region in (None, "US")]
    assert fast == slow


def test_duplicates_are_claimed_as_row_by_row() -> None:
    rng = random.Random(12)
    for _ in range(300):
        seen: dict[str, int] = {}
        expected: dict[str, int] = {}
        row = 2
        for _chunk in range(3):
            size = rng.randrange(1, 20)
            numbers: list[str | None] = [f"+1212555{rng.randrange(25):04d}" for _ in range(size)]
            if rng.random() < 0.5:
                numbers[rng.randrange(size)] = None
            rows = list(range(row, row + size))
            row += size
            dupes = [
                i
                for i, (n, r) in enumerate(zip(numbers, rows, strict=True))
                if n is not None and expected.setdefault(n, r) != r
            ]
            assert validate._duplicates(seen, numbers, rows) == dupes
            assert seen == expected
