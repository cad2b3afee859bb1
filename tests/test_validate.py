"""bulk_import.validate: rows -> jobs or invalid results (docs/contract.md: input, results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_import.cli import parse_defaults
from bulk_import.errors import MissingColumnsError, UsageError
from bulk_import.load import open_table
from bulk_import.models import Job, RawRow, RowResult, Status
from bulk_import.validate import (
    PhoneError,
    Validator,
    check_columns,
    normalize_phone,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NO_CC = (
    "has no country code (+...); "
    "if Excel dropped the '+', format the column as text or use --default-region"
)
EXCEL_FLOAT = (
    "looks like a number Excel stored as a float (digits lost or added); format the column "
    "as text and enter the numbers again"
)
GOOD = {
    "phoneNumber": "+14155552671",
    "trunkUsername": "alice",
    "trunkPassword": "s3cr3t-VALUE",
    "terminationSipURI": "sip.telnyx.com",
}


def check(
    values: dict[str, str], row: int = 2, validator: Validator | None = None
) -> Job | RowResult:
    return (validator or Validator()).check(RawRow(row, values))


def invalid(values: dict[str, str], validator: Validator | None = None, row: int = 2) -> RowResult:
    result = check(values, row, validator)
    assert isinstance(result, RowResult), result
    assert result.status is Status.INVALID
    assert result.http_status is None
    assert result.attempts == 0
    assert result.sip_phone_number == ""
    return result


# --- phone numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+14155552671", "+14155552671"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+1.415.555.2671", "+14155552671"),
        ("+1 [415] 555 2671", "+14155552671"),
        ("+1\u00a0415\u00a0555\u00a02671", "+14155552671"),
        ("+1 415\u2013555\u20132671", "+14155552671"),
        ("0014155552671", "+14155552671"),
        ("00 44 20 7946 0123", "+442079460123"),
        ("+44 20 7946 0123", "+442079460123"),
        ("+44 (0)20 7946 0123", "+442079460123"),
        ("+3912345678", "+3912345678"),  # possible for Italy (6 to 12 digits)
        ("＋１ ４１５ ５５５ ２６７１", "+14155552671"),  # full-width, read as ASCII
        ("+80012345678", "+80012345678"),  # a non-geographic code (freephone)
    ],
)
def test_normalize_phone(text: str, expected: str) -> None:
    assert normalize_phone(text, None) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4155552671", f"'4155552671' {NO_CC}"),
        ("14155552671", f"'14155552671' {NO_CC}"),
        ("(415) 555-2671", f"'(415) 555-2671' {NO_CC}"),
        # Not written like a phone number (a password, maybe): its shape, not its value.
        (
            "+1 415 CALL NOW",
            "(15 characters: letters, digits, spaces, punctuation) is not a phone number",
        ),
        ("call me", "(7 characters: letters, spaces) is not a phone number"),
        ("tel:+14155552671", "(16 characters: letters, digits, punctuation) is not a phone number"),
        ("-", "'-' is not a phone number"),
        ("+", "'+' is not a phone number"),
        ("+123456", "'+123456' is not E.164: + then 7 to 15 digits (6 digits)"),
        (
            "+1234567890123456",
            "'+1234567890123456' is not E.164: + then 7 to 15 digits (16 digits)",
        ),
        ("+04155552671", "'+04155552671' is not E.164: a country code never starts with 0"),
        ("+١٤١٥٥٥٥٢٦٧١", "'+١٤١٥٥٥٥٢٦٧١' is not a phone number"),
        # E.164 in shape, but no such number can exist:
        (
            "+1 415 555 267",
            "'+1 415 555 267' is too short for +1 (US): 9 digits after the country code, "
            "10 possible",
        ),
        ("+999 1234567", "'+999 1234567' has no assigned country code (+999... starts none)"),
        (
            "+123456789012345",
            "'+123456789012345' is too long for +1 (US): 14 digits after the country code, "
            "10 possible",
        ),
        (
            "+15552671",
            "'+15552671' is too short for +1 (US): 7 digits after the country code, 10 possible",
        ),  # possible only as a local number
        (
            "+4402079460018",
            "'+4402079460018' is too long for +44 (GB): 11 digits after the country code, "
            "7, 9 or 10 possible; did you mean +442079460018 (without the trunk prefix)?",
        ),
        # a number cell Excel turned into a float
        ("+14155552672.0", f"'+14155552672.0' {EXCEL_FLOAT}"),
        ("14155552672.0", f"'14155552672.0' {EXCEL_FLOAT}"),
        ("4.42079E+11", f"'4.42079E+11' {EXCEL_FLOAT}"),
        ("4.42079e11", f"'4.42079e11' {EXCEL_FLOAT}"),
    ],
)
def test_normalize_phone_errors(text: str, message: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(text, None)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("4155552671", "US", "+14155552671"),
        ("14155552671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("1 415 555 2671", "us", "+14155552671"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("+442079460123", "US", "+442079460123"),  # a + number is read as written
        ("0044 20 7946 0123", "US", "+442079460123"),
    ],
)
def test_normalize_phone_with_region(text: str, region: str, expected: str) -> None:
    assert normalize_phone(text, region) == expected


@pytest.mark.parametrize(
    ("text", "region"), [("555", "US"), ("4155552671", "GB"), ("1234567890123", "US")]
)
def test_normalize_phone_invalid_in_region(text: str, region: str) -> None:
    with pytest.raises(PhoneError, match=rf"^'{text}' is not a valid {region} number$"):
        normalize_phone(text, region)


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone("1" * 500, None)
    assert (
        str(caught.value)
        == f"'{'1' * 40}...' has no country code"
        + (str(caught.value).split("has no country code", 1)[1])
    )


def test_default_region_is_checked() -> None:
    assert Validator(default_region="gb").region == "GB"
    with pytest.raises(UsageError, match="'XX' is not a known region"):
        Validator(default_region="XX")


def test_region_applies_to_rows() -> None:
    result = check(
        {**GOOD, "phoneNumber": "415 555 2671", "outboundPhoneNumber": "4155550100"},
        validator=Validator(default_region="US"),
    )
    assert isinstance(result, Job)
    assert result.phone_number == "+14155552671"
    assert result.request.outbound_phone_number == "+14155550100"


# --- rows ------------------------------------------------------------------------------


def test_good_row_is_a_job() -> None:
    result = check({**GOOD, "phoneNumber": "+1 415 555 2671", "friendlyName": "Main"}, row=7)
    assert isinstance(result, Job)
    assert result.row == 7
    assert result.request.to_json() == {**GOOD, "friendlyName": "Main"}  # no absent optionals


def test_every_problem_in_field_order() -> None:
    result = invalid({"phoneNumber": "4155552671", "trunkUsername": "u", "trunkPassword": "p"})
    assert result.error == f"phoneNumber: '4155552671' {NO_CC}; terminationSipURI: required"
    assert result.phone_number == "4155552671"


def test_all_required_missing() -> None:
    result = invalid({"friendlyName": "x"})
    assert result.error == (
        "phoneNumber: required; trunkUsername: required; "
        "trunkPassword: required; terminationSipURI: required"
    )
    assert result.phone_number == ""


def test_length_and_uri_messages() -> None:
    result = invalid(
        {
            **GOOD,
            "trunkUsername": "u" * 300,
            "terminationSipURI": "bad uri",
            "friendlyName": "f" * 129,
            "inboundAgentId": "a" * 65,
            "outboundPhoneNumber": "+1 415 CALL",
        }
    )
    assert result.error == (
        "trunkUsername: longer than 128 characters (300); "
        "terminationSipURI: the value (7 characters, with spaces, no dot) is not a SIP host or URI "
        "(e.g. sip.telnyx.com or sip:pbx.example.com:5060); "
        "friendlyName: longer than 128 characters (129); "
        "inboundAgentId: longer than 64 characters (65); "
        "outboundPhoneNumber: (11 characters: letters, digits, spaces, punctuation) "
        "is not a phone number"
    )
    assert result.phone_number == "+14155552671"


def test_password_is_never_in_the_error() -> None:
    secret = "TOP-SECRET-" * 20
    result = invalid({**GOOD, "trunkPassword": secret, "terminationSipURI": "x y"})
    assert result.error.startswith(
        "trunkPassword: longer than 128 characters; "
        "terminationSipURI: the value (3 characters, with spaces, no dot)"
    )
    assert "TOP-SECRET" not in result.error
    assert str(len(secret)) not in result.error


@pytest.mark.parametrize(
    "uri",
    [
        "sip.telnyx.com",
        "acme.pstn.twilio.com",
        "sip:pbx.example.com:5060;transport=tls",
        "sips:[2001:db8::1]:5061",
    ],
)
def test_sip_uris_accepted(uri: str) -> None:
    assert isinstance(check({**GOOD, "terminationSipURI": uri}), Job)


def test_unknown_keys_are_ignored() -> None:
    assert isinstance(check({**GOOD, "Notes": "hello"}), Job)


def test_duplicates_name_the_first_row() -> None:
    validator = Validator()
    assert isinstance(check(GOOD, 2, validator), Job)
    assert isinstance(check({**GOOD, "phoneNumber": "+14155550000"}, 3, validator), Job)
    again = invalid({**GOOD, "phoneNumber": "+1 (415) 555-2671"}, validator, row=5)
    assert again.error == "phoneNumber: duplicate of row 2"
    assert again.phone_number == "+14155552671"
    third = invalid(
        {**GOOD, "phoneNumber": "0014155552671", "terminationSipURI": ""}, validator, row=9
    )
    assert third.error == "phoneNumber: duplicate of row 2; terminationSipURI: required"


def test_duplicate_of_an_invalid_row_still_counts() -> None:
    validator = Validator()
    first = invalid({"phoneNumber": "+14155552671"}, validator, row=2)
    assert "duplicate" not in first.error
    assert invalid(GOOD, validator, row=3).error == "phoneNumber: duplicate of row 2"


def test_unreadable_numbers_are_not_duplicates() -> None:
    validator = Validator()
    invalid({**GOOD, "phoneNumber": "4155552671"}, validator, row=2)
    assert f"'4155552671' {NO_CC}" == invalid(
        {**GOOD, "phoneNumber": "4155552671"}, validator, row=3
    ).error.removeprefix("phoneNumber: ")


def test_defaults_fill_empty_cells() -> None:
    validator = Validator(
        defaults={
            "terminationSipURI": "sip.telnyx.com",
            "trunkPassword": "from-env",
            "friendlyName": "Default",
        }
    )
    result = check(
        {"phoneNumber": "+14155552671", "trunkUsername": "u", "friendlyName": "Own"},
        validator=validator,
    )
    assert isinstance(result, Job)
    assert result.request.to_json() == {
        "phoneNumber": "+14155552671",
        "trunkUsername": "u",
        "trunkPassword": "from-env",
        "terminationSipURI": "sip.telnyx.com",
        "friendlyName": "Own",
    }


def test_bad_default_is_reported_per_row() -> None:
    result = invalid(
        GOOD | {"terminationSipURI": ""}, Validator(defaults={"terminationSipURI": "not a uri"})
    )
    assert result.error.startswith(
        "terminationSipURI: the value (9 characters, with spaces, no dot) is not a SIP host or URI"
    )


# --- options and columns ---------------------------------------------------------------


def test_parse_defaults() -> None:
    assert parse_defaults(
        ["termination_sip_uri = sip:pbx.example.com;transport=tls", "Friendly Name=a=b"]
    ) == {
        "terminationSipURI": "sip:pbx.example.com;transport=tls",
        "friendlyName": "a=b",
    }


@pytest.mark.parametrize("item", ["trunkPassword=x", "trunk_password=x", "Password=x"])
def test_parse_defaults_refuses_the_password(item: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_defaults([item])
    message = str(caught.value)
    assert (
        "would be visible in ps; use --trunk-password-env VAR or --trunk-password-file PATH"
        in message
    )
    assert "=x" not in message


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("colour=red", "'colour' is not a field"),
        ("phoneNumber", "not of the form"),
        ("=x", "not of the form"),
        ("friendlyName=  ", "empty"),
    ],
)
def test_parse_defaults_rejects_bad_items(item: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_defaults([item])


def test_check_columns() -> None:
    check_columns(["phoneNumber", "trunkUsername", "trunkPassword", "terminationSipURI"], [], [])
    check_columns(["phoneNumber", "trunkUsername"], ["trunkPassword", "terminationSipURI"], [])
    with pytest.raises(MissingColumnsError) as caught:
        check_columns(
            ["phoneNumber", "friendlyName"], ["trunkUsername"], ["Phone", "Name", "Notes"]
        )
    assert caught.value.missing == ["trunkPassword", "terminationSipURI"]
    assert caught.value.found == ["Phone", "Name", "Notes"]
    assert (
        "missing required column(s): trunkPassword, terminationSipURI; "
        "the header has: 'Phone', 'Name', 'Notes'" in str(caught.value)
    )


# --- the samples -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["phone_numbers.csv", "phone_numbers.xlsx"])
def test_samples_validate_as_documented(name: str) -> None:
    with open_table(SAMPLES / name) as table:
        assert table.ignored == []
        check_columns(table.columns, {}, table.header)
        validator = Validator()
        results = [validator.check(raw) for raw in table.rows()]
        bad = [r for r in results if isinstance(r, RowResult)]
        assert len(results) - len(bad) == 17
        assert [(r.row, r.error.split(":")[0]) for r in bad] == [
            (8, "phoneNumber"),
            (12, "terminationSipURI"),
            (17, "phoneNumber"),
        ]
        assert bad[2].error == "phoneNumber: duplicate of row 2"


def test_template_is_header_only() -> None:
    with open_table(SAMPLES / "template.csv") as table:
        assert len(table.columns) == 8
        assert list(table.rows()) == []
