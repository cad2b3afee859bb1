"""The benchmarks' input files: a realistic sheet, and the easy one of earlier releases.

    .venv/bin/python benchmarks/inputs.py [--kind realistic|easy] [--xlsx] ROWS

* ``realistic`` (``benchmarks/out/real-N.csv`` / ``.xlsx``): all 8 columns, as people's
  sheets have them.  ``phoneNumber`` and ``outboundPhoneNumber`` are numbers valid for their
  plans (``phonenumbers.is_valid_number``) in 42 countries and about 300 area codes (a
  country code and the first 3 digits after it), half of them written as E.164, half in
  the international format with spaces (``+44 20 7946 0123``); the optional fields are
  filled in most rows (``outboundPhoneNumber`` in every row); passwords hold ``,"';!``, so
  the CSV quotes them.  Deterministic (a fixed seed): the same N gives the same file.
* ``easy`` (``benchmarks/out/rows-N.csv`` / ``.xlsx``): the 5 columns of release 1's
  benchmarks, ``+1`` numbers in 10 US area codes, no optional field but a friendly name.

The files are written once and kept (``benchmarks/out/`` is git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"

FIELDS = (
    "phoneNumber",
    "trunkUsername",
    "trunkPassword",
    "terminationSipURI",
    "friendlyName",
    "inboundAgentId",
    "outboundAgentId",
    "outboundPhoneNumber",
)
EASY_HEADER = ("phoneNumber", "trunkUsername", "trunkPassword", "terminationSipURI", "friendlyName")
EASY_AREA_CODES = (212, 303, 312, 415, 512, 617, 646, 718, 917, 206)

#: Countries, and how many area-code prefixes each gets (the US and Canada most).
REGIONS = {
    "US": 60, "CA": 20, "GB": 12, "DE": 12, "FR": 10, "IT": 6, "ES": 8, "NL": 8, "BE": 6,
    "CH": 6, "AT": 6, "SE": 6, "NO": 4, "DK": 4, "FI": 4, "PL": 6, "PT": 4, "IE": 4,
    "AU": 8, "NZ": 4, "JP": 8, "KR": 4, "IN": 10, "BR": 10, "MX": 8, "AR": 4, "CL": 4,
    "CO": 4, "ZA": 6, "NG": 4, "KE": 4, "EG": 4, "TR": 4, "IL": 4, "AE": 4, "SG": 4,
    "HK": 4, "PH": 4, "CZ": 4, "HU": 4, "RO": 4, "GR": 4,
}  # fmt: skip
SUFFIX_DIGITS = 4  # each prefix holds 10,000 numbers
SIP_HOSTS = (
    "sip.telnyx.com",
    "sip:trunk@pbx.example.org:5060;transport=tls",
    "sips:acme.pstn.twilio.com",
    "10.20.30.40:5061",
    "sip:gw1.voip.example.net;transport=udp",
)
PASSWORD_MARKS = ",\"';!"


def easy_number(i: int) -> str:
    """The ``i``-th number of the easy file: +1, an area code, then 7 digits."""
    area = EASY_AREA_CODES[i % len(EASY_AREA_CODES)]
    return f"+1{area}{2_000_000 + i // len(EASY_AREA_CODES):07d}"


def easy_rows(rows: int) -> Iterator[list[str]]:
    for i in range(rows):
        yield [easy_number(i), "acme_telnyx", "bench-pass", "sip.telnyx.com", f"Bench {i}"]


@cache
def prefixes() -> tuple[tuple[str, str, str], ...]:
    """(region, country code, national prefix): prefixes whose numbers are valid.

    Taken from each region's example numbers (fixed line, then mobile), varied in their
    2nd and 3rd digits, kept when 20 numbers drawn under them are all valid.
    """
    import phonenumbers as pn
    from phonenumbers import PhoneNumberType

    rng = random.Random(20261203)
    found: list[tuple[str, str, str]] = []
    for region, wanted in REGIONS.items():
        cc = str(pn.country_code_for_region(region))
        kept: list[str] = []
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            example = pn.example_number_for_type(region, kind)
            if example is None:
                continue
            national = pn.national_significant_number(example)
            head = len(national) - SUFFIX_DIGITS
            variants = [national[0] + f"{v:02d}" + national[3:head] for v in range(100)]
            rng.shuffle(variants)
            for prefix in [national[:head], *variants]:
                if len(kept) >= wanted:
                    break
                if prefix in kept or len(prefix) < 3:
                    continue
                draws = (f"{rng.randrange(10**SUFFIX_DIGITS):0{SUFFIX_DIGITS}d}" for _ in range(20))
                if all(_valid(f"+{cc}{prefix}{s}") for s in draws):
                    kept.append(prefix)
        found += [(region, cc, p) for p in kept]
    return tuple(found)


def _valid(e164: str) -> bool:
    import phonenumbers as pn

    try:
        return bool(pn.is_valid_number(pn.parse(e164, None)))
    except pn.NumberParseException:
        return False


def real_numbers() -> Iterator[tuple[str, str]]:
    """Distinct valid numbers (E.164, the international format), the prefixes in turn."""
    import phonenumbers as pn

    table = prefixes()
    step = 7919  # prime to 10**SUFFIX_DIGITS: the suffixes of a prefix in scrambled order
    for j in range(10**SUFFIX_DIGITS):
        suffix = f"{j * step % 10**SUFFIX_DIGITS:0{SUFFIX_DIGITS}d}"
        for _region, cc, prefix in table:
            e164 = f"+{cc}{prefix}{suffix}"
            parsed = pn.parse(e164, None)
            if pn.is_valid_number(parsed):
                yield e164, pn.format_number(parsed, pn.PhoneNumberFormat.INTERNATIONAL)


def real_rows(rows: int) -> Iterator[list[str]]:
    """The realistic file's data rows (see the module's text)."""
    rng = random.Random(rows)
    numbers = real_numbers()
    outbound = [next(numbers) for _ in range(500)]  # shared caller ids, as accounts have
    for i in range(rows):
        e164, spaced = next(numbers)
        out164, out_spaced = outbound[rng.randrange(len(outbound))]
        marks = "".join(rng.sample(PASSWORD_MARKS, len(PASSWORD_MARKS)))
        password = f"Tr{rng.randrange(10**6):06d}{marks}k{i % 97}"
        yield [
            spaced if i % 2 else e164,
            f"acme_trunk_{i % 211}",
            password if rng.random() < 0.97 else f"plain{i}",
            SIP_HOSTS[i % len(SIP_HOSTS)],
            f"Line {i} – {rng.choice(('Sales', 'Support', 'Billing', 'Ops'))}"
            if rng.random() < 0.9
            else "",
            f"agent_in_{rng.randrange(500):03d}" if rng.random() < 0.85 else "",
            f"agent_out_{rng.randrange(500):03d}" if rng.random() < 0.8 else "",
            out_spaced if i % 3 == 0 else out164,
        ]


def path_for(kind: str, rows: int, suffix: str = ".csv") -> Path:
    return OUT / f"{'real' if kind == 'realistic' else 'rows'}-{rows}{suffix}"


def make_csv(rows: int, kind: str = "realistic") -> Path:
    """The ``kind`` file of ``rows`` data rows as CSV (written once, then kept)."""
    path = path_for(kind, rows)
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    header, data = (FIELDS, real_rows(rows)) if kind == "realistic" else (EASY_HEADER, None)
    with tmp.open("w", encoding="utf-8", newline="") as f:
        if data is None:  # the easy file, exactly as earlier releases wrote it
            f.write(",".join(header) + "\n")
            f.writelines(",".join(row) + "\n" for row in easy_rows(rows))
        else:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(data)
    tmp.replace(path)
    return path


def make_xlsx(rows: int, kind: str = "realistic") -> Path:
    """The same rows as a workbook (sheet ``Numbers``), written once, then kept."""
    import xlsxwriter

    path = path_for(kind, rows, ".xlsx")
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.xlsx")
    header, data = (
        (FIELDS, real_rows(rows)) if kind == "realistic" else (EASY_HEADER, easy_rows(rows))
    )
    book = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("Numbers")
    sheet.write_row(0, 0, header)
    for i, row in enumerate(data, 1):
        for col, value in enumerate(row):
            if value:
                sheet.write_string(i, col, value)
    book.close()
    tmp.replace(path)
    return path


def describe(rows: int) -> str:
    """Countries and area codes the realistic file of ``rows`` rows uses."""
    import phonenumbers as pn

    countries: set[str | None] = set()
    areas: set[tuple[int | None, str]] = set()
    for row in real_rows(rows):
        for cell in (row[0], row[7]):
            parsed = pn.parse(cell, None)
            countries.add(pn.region_code_for_number(parsed))
            areas.add((parsed.country_code, pn.national_significant_number(parsed)[:3]))
    return f"{rows:,} rows: {len(countries)} countries, {len(areas)} area codes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("--kind", choices=("realistic", "easy"), default="realistic")
    parser.add_argument("--xlsx", action="store_true", help="a workbook, not a CSV file")
    parser.add_argument("--describe", action="store_true", help="count countries, area codes")
    args = parser.parse_args()
    if args.describe:
        print(describe(args.rows))
        return
    print(make_xlsx(args.rows, args.kind) if args.xlsx else make_csv(args.rows, args.kind))


if __name__ == "__main__":
    main()
