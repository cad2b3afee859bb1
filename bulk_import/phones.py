"""phones: whether an E.164 number can exist, by the country plans ``phonenumbers`` ships.

A number passes when its country code is assigned and the number of digits after it is a
possible length for that country, as written (``phonenumbers``' ``IS_POSSIBLE``).  A number
that is possible only as a local number (a US number of 7 digits), or only once a trunk
prefix after the country code is dropped (``+44 020 ...``), does not pass: it is not the
number to import, and the message says what is.  Whether a number is allocated
(``is_valid_number``) is not checked: numbering plans change faster than the library.

``possible(number)`` is the fast check, one dict lookup for a number whose first three
digits were seen before (the dry run calls it for every cell); ``problem(number)`` says
what is wrong with a number that does not pass.
"""

from __future__ import annotations

from functools import cache

#: The lengths (of the whole ``+...`` text) possible after each ``+DDD`` prefix; filled
#: as prefixes are met.  An empty set: the prefix starts no assigned country code.
_LENGTHS: dict[str, frozenset[int]] = {}


def possible(number: str) -> bool:
    """True if ``number`` (already ``+`` then 7 to 15 ASCII digits) can exist."""
    lengths = _LENGTHS.get(number[:4])
    if lengths is None:
        lengths = lengths_after(number[:4])
    return len(number) in lengths


def lengths_after(prefix: str) -> frozenset[int]:
    """The possible lengths after ``prefix`` (``+DDD``), remembered in ``_LENGTHS``: a
    column-wise check looks them up there itself, and calls this for a new prefix."""
    lengths = _LENGTHS.get(prefix)
    if lengths is None:
        lengths = _LENGTHS[prefix] = _lengths(prefix)
    return lengths


def problem(number: str) -> str:
    """What is wrong with ``number`` (``+`` then digits) when ``possible`` is False, as
    words that follow the number: ``is too short for +1 (US): ...``."""
    digits = number[1:]
    cc = _country_code(digits)
    if cc is None:
        return f"has no assigned country code (+{digits[:3]}... starts none)"
    national = len(digits) - len(cc)
    allowed = _national_lengths(cc)
    region = _region(cc)
    where = f"+{cc} ({region})" if region else f"+{cc}"
    shown = _or(allowed)
    if allowed and national < min(allowed):
        what = "too short"
    elif allowed and national > max(allowed):
        what = "too long"
    else:
        what = "not a possible length"
    text = f"is {what} for {where}: {national} digits after the country code, {shown} possible"
    suggestion = _without_trunk_prefix(number)
    if suggestion:
        text += f"; did you mean {suggestion} (without the trunk prefix)?"
    return text


def _or(values: tuple[int, ...]) -> str:
    words = [str(v) for v in values] or ["none"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _lengths(prefix: str) -> frozenset[int]:
    cc = _country_code(prefix[1:])
    if cc is None:
        return frozenset()
    return frozenset(1 + len(cc) + n for n in _national_lengths(cc))


def _country_code(digits: str) -> str | None:
    """The assigned country code ``digits`` start with (1 to 3 digits), as phonenumbers
    reads it: the shortest prefix that is one."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    for size in (1, 2, 3):
        if digits[:size].isdigit() and int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE:
            return digits[:size]
    return None


@cache
def _national_lengths(cc: str) -> tuple[int, ...]:
    """The possible lengths of the number after country code ``cc`` (not local-only)."""
    from phonenumbers import PhoneMetadata, region_code_for_country_code

    code = int(cc)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, region_code_for_country_code(code)
    )
    if metadata is None or metadata.general_desc is None:
        return ()
    return tuple(n for n in metadata.general_desc.possible_length if n > 0)


def _region(cc: str) -> str:
    from phonenumbers import UNKNOWN_REGION, region_code_for_country_code

    region: str = region_code_for_country_code(int(cc))
    return "" if region in (UNKNOWN_REGION, "001") else region


def _without_trunk_prefix(number: str) -> str | None:
    """The number ``phonenumbers`` reads once a trunk prefix is dropped, when that one
    is possible (``+4402079460018`` -> ``+442079460018``)."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    e164: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164 if e164 != number and possible(e164) else None
