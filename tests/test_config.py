"""config: secrets from the environment or files, never the command line; http refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_import.cli import resolve_trunk_password
from bulk_import.config import check_base_url, resolve_api_key, resolve_base_url
from bulk_import.errors import UsageError


def test_api_key_from_env_or_file(tmp_path: Path) -> None:
    warnings: list[str] = []
    assert resolve_api_key(None, {"SIGMAMIND_API_KEY": " k1 "}, warnings.append) == "k1"
    assert resolve_api_key(None, {}, warnings.append) is None
    key = tmp_path / "key"
    key.write_text("k2\n")
    key.chmod(0o600)
    assert resolve_api_key(key, {"SIGMAMIND_API_KEY": "k1"}, warnings.append) == "k2"
    assert warnings == []


def test_key_file_readable_by_others_warns_without_the_key(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("topsecret-key\n")
    key.chmod(0o644)
    warnings: list[str] = []
    assert resolve_api_key(key, {}, warnings.append) == "topsecret-key"
    assert len(warnings) == 1
    assert "chmod 600" in warnings[0]
    assert "topsecret-key" not in warnings[0]


def test_missing_or_empty_key_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        resolve_api_key(tmp_path / "nope", {}, print)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError):
        resolve_api_key(empty, {}, print)


def test_trunk_password_sources(tmp_path: Path) -> None:
    assert resolve_trunk_password("PW", None, {"PW": "s3"}, print) == "s3"
    assert resolve_trunk_password(None, None, {}, print) is None
    with pytest.raises(UsageError, match="not set"):
        resolve_trunk_password("PW", None, {}, print)
    f = tmp_path / "pw"
    f.write_text("filepw\n")
    f.chmod(0o600)
    assert resolve_trunk_password(None, f, {}, print) == "filepw"
    with pytest.raises(UsageError, match="not both"):
        resolve_trunk_password("PW", f, {"PW": "x"}, print)


def test_base_url_resolution_and_http_refusal() -> None:
    assert resolve_base_url(None, {}) == "https://api.sigmamind.ai"
    assert resolve_base_url(None, {"SIGMAMIND_BASE_URL": "http://127.0.0.1:9/"}) == (
        "http://127.0.0.1:9"
    )
    assert resolve_base_url("https://x.example/", {}) == "https://x.example"
    check_base_url("http://127.0.0.1:8080", allow_insecure_http=False)
    check_base_url("http://localhost:8080", allow_insecure_http=False)
    check_base_url("http://[::1]:8080", allow_insecure_http=False)
    check_base_url("https://api.sigmamind.ai", allow_insecure_http=False)
    with pytest.raises(UsageError, match="plain http"):
        check_base_url("http://api.example.com", allow_insecure_http=False)
    check_base_url("http://api.example.com", allow_insecure_http=True)
    with pytest.raises(UsageError):
        check_base_url("ftp://x", allow_insecure_http=True)
