"""The request models are built from the one field table, ``models.FIELDS``."""

from __future__ import annotations

from typing import Any

from bulk_import.models import FIELDS, PATCH_NAMES
from bulk_import.payloads import ImportRequest
from bulk_import.sandbox.app import PatchRequest


def constraints(info: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in info.metadata:
        for name in ("min_length", "max_length", "pattern"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    return found


def test_import_request_has_every_field_of_the_table_with_its_limits() -> None:
    fields = ImportRequest.model_fields
    assert [(name, info.alias) for name, info in fields.items()] == [
        (spec.snake, spec.json) for spec in FIELDS
    ]
    for spec in FIELDS:
        assert fields[spec.snake].is_required() == spec.required, spec.json
        assert constraints(fields[spec.snake]) == spec.rules(), spec.json


def test_the_sandbox_patch_request_has_the_same_limits_in_patch_spelling() -> None:
    fields = PatchRequest.model_fields
    assert sorted(fields) == sorted(PATCH_NAMES.values())
    assert "terminationSipUri" in fields
    for spec in FIELDS:
        if spec.json in PATCH_NAMES:
            info = fields[PATCH_NAMES[spec.json]]
            assert not info.is_required()
            assert constraints(info) == spec.rules(), spec.json


def test_limits_follow_the_table() -> None:
    by_json = {spec.json: spec for spec in FIELDS}
    assert by_json["trunkUsername"].rules() == {"min_length": 1, "max_length": 128}
    assert by_json["friendlyName"].rules() == {"max_length": 128}
    assert "pattern" in by_json["outboundPhoneNumber"].rules()
