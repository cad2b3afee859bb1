"""Library errors name parameters; the CLI says them as flags (``cli.describe``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_import.cli import FLAGS, describe
from bulk_import.errors import BulkImportError, UsageError
from bulk_import.runner import RunOptions


def test_the_cli_replaces_the_parameter_by_its_flag() -> None:
    exc = UsageError("max_attempts must be at least 1", param="max_attempts")
    assert str(exc) == "max_attempts must be at least 1"
    assert describe(exc) == "--max-attempts must be at least 1"


def test_only_the_first_mention_as_a_whole_word_is_replaced() -> None:
    exc = UsageError(
        "encoding 'x' is not a text encoding", hint="an encoding_name", param="encoding"
    )
    assert describe(exc) == "--encoding 'x' is not a text encoding (an encoding_name)"


def test_the_cli_has_its_own_hint_where_the_library_would_name_other_parameters() -> None:
    exc = UsageError("rate 0: above 0", hint="None for no limit", param="rate")
    assert describe(exc) == "--rate 0: above 0 (leave --rate out for no limit)"


def test_an_error_without_a_parameter_is_said_as_it_is() -> None:
    exc = BulkImportError("the API rejected the key", hint="check it")
    assert describe(exc) == str(exc) == "the API rejected the key (check it)"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"rate": 0.0}, "rate"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": float("nan")}, "timeout"),
        ({"encoding": "rot13"}, "encoding"),
        ({"api_key": None}, "api_key"),
        ({"command": "plan", "dry_run": True}, "dry_run"),
    ],
)
def test_run_options_name_their_parameters_never_a_flag(
    tmp_path: Path, change: dict[str, object], param: str
) -> None:
    opts = RunOptions(file=tmp_path / "n.csv", api_key="k", base_url="http://127.0.0.1:9")
    for name, value in change.items():
        setattr(opts, name, value)
    with pytest.raises(UsageError) as caught:
        opts.check()
    assert caught.value.param == param
    assert param in caught.value.message
    assert "--" not in str(caught.value)
    assert "SIGMAMIND" not in str(caught.value)
    assert param in FLAGS


def test_a_switch_named_in_a_message_or_hint_is_its_flag() -> None:
    exc = UsageError(
        "api_key is required", hint="or dry_run=True to check the file", param="api_key"
    )
    assert describe(exc) == (
        "an API key (SIGMAMIND_API_KEY or --api-key-file PATH) is required "
        "(or --dry-run to check the file)"
    )
