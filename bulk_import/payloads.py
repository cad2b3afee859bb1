"""The API's request and answer as pydantic models, built from ``models.FIELDS``.

Kept apart from ``models`` so that what does not validate a row through the model or talk
to the API never loads pydantic: a dry run of good rows checks them column by column
(validate.py) and never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .models import ANSWER_TEXT_LIMIT, RULES, SIP_URI_RE, same_number

__all__ = ["ImportRequest", "PhoneNumberRecord", "ValidationError"]


class ImportRequest(BaseModel):
    """The body of ``POST /v1/phone-numbers/import``; ``repr`` never shows the password."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    # The constraints come from ``FIELDS`` (``RULES``); tests check the names match it.
    phone_number: str = Field(alias="phoneNumber", **RULES["phoneNumber"])
    trunk_username: str = Field(alias="trunkUsername", **RULES["trunkUsername"])
    trunk_password: SecretStr = Field(alias="trunkPassword", **RULES["trunkPassword"])
    termination_sip_uri: str = Field(alias="terminationSipURI", **RULES["terminationSipURI"])
    friendly_name: str | None = Field(default=None, alias="friendlyName", **RULES["friendlyName"])
    inbound_agent_id: str | None = Field(
        default=None, alias="inboundAgentId", **RULES["inboundAgentId"]
    )
    outbound_agent_id: str | None = Field(
        default=None, alias="outboundAgentId", **RULES["outboundAgentId"]
    )
    outbound_phone_number: str | None = Field(
        default=None, alias="outboundPhoneNumber", **RULES["outboundPhoneNumber"]
    )

    @field_validator("termination_sip_uri")
    @classmethod
    def _sip_shape(cls, value: str) -> str:
        if not SIP_URI_RE.match(value):
            raise ValueError(
                "is not a SIP host or URI (e.g. sip.telnyx.com or sip:pbx.example.com:5060)"
            )
        return value

    def to_json(self) -> dict[str, str]:
        """The POST body: JSON names, the password revealed, absent optionals left out."""
        body: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True)
        body["trunkPassword"] = self.trunk_password.get_secret_value()
        return body


class PhoneNumberRecord(BaseModel):
    """What the API answers for a number (create, get, patch, list)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    sip_phone_number: str | None = Field(default=None, alias="sipPhoneNumber")
    inbound_agent_id: str | None = Field(default=None, alias="inboundAgentId")
    outbound_agent_id: str | None = Field(default=None, alias="outboundAgentId")
    outbound_phone_number: str | None = Field(default=None, alias="outboundPhoneNumber")
    active: bool | None = None
    termination_sip_uri: str | None = Field(default=None, alias="terminationSipURI")
    friendly_name: str | None = Field(default=None, alias="friendlyName")

    @classmethod
    def from_answer(
        cls, data: Any, *, clean: Callable[[str], str] | None = None
    ) -> PhoneNumberRecord | None:
        """The record in any JSON answer, leniently; never raises (None if not an object).

        Unknown fields are ignored; a number or boolean where text belongs becomes its text
        (``12345`` -> ``"12345"``); a list, object or null is dropped; text is cut to
        ``ANSWER_TEXT_LIMIT`` characters and passed through ``clean`` (the caller's
        secret scrubber).  ``active`` is kept only when it reads as a boolean.
        """
        if not isinstance(data, dict):
            return None
        values: dict[str, Any] = {}
        for name, spec in cls.model_fields.items():
            value = data.get(spec.alias or name)
            if name == "active":
                values[name] = _as_bool(value)
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int | float):
                value = str(value)
            if isinstance(value, str):
                value = value[:ANSWER_TEXT_LIMIT]
                values[name] = clean(value) if clean is not None else value
        # Every value is now what its field takes (text, or a boolean for ``active``):
        # validating would only copy them (model_validate was a tenth of an answer's CPU).
        return cls.model_construct(**values)

    def matches(self, request: ImportRequest) -> bool:
        """True when this record holds the values ``request`` would have stored."""
        if self.sip_phone_number is not None and not same_number(
            self.sip_phone_number, request.phone_number
        ):
            return False
        if self.termination_sip_uri is not None and (
            self.termination_sip_uri != request.termination_sip_uri
        ):
            return False
        for name in ("inbound_agent_id", "outbound_agent_id", "outbound_phone_number"):
            sent = getattr(request, name)
            if sent is not None and getattr(self, name) != sent:
                return False
        return request.friendly_name is None or self.friendly_name == request.friendly_name


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None
