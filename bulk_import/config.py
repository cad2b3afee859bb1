"""Where the secrets and the API address come from, checked before anything is sent.

The API key comes from ``SIGMAMIND_API_KEY`` or a key file, never from a command-line value
(it would show in ``ps``); so does a trunk password shared by every row.  Plain ``http://``
is refused for anything but loopback unless explicitly allowed.  ``check_sending`` checks
the options of every command that sends (``run``'s and ``export``'s alike).
"""

from __future__ import annotations

import ipaddress
import math
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from .defaults import MAX_CONCURRENCY
from .errors import UsageError

DEFAULT_BASE_URL = "https://api.sigmamind.ai"
API_KEY_ENV = "SIGMAMIND_API_KEY"
BASE_URL_ENV = "SIGMAMIND_BASE_URL"


def read_secret_file(path: Path, what: str, warn: Callable[[str], None]) -> str:
    """The first line of ``path``, stripped; warns when others may read the file."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(
            f"can't read the {what} file {path}: {exc.strerror}",
            hint=f"give a file you can read whose first line is the {what}",
        ) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"the {what} file {path} is not UTF-8 text",
            hint=f"save it as UTF-8 text, the {what} on the first line",
        ) from exc
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(
            f"warning: {path} (the {what}) can be read by other users; "
            f"restrict it with: chmod 600 {path}"
        )
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not value:
        raise UsageError(
            f"the {what} file {path} is empty", hint=f"put the {what} on its first line"
        )
    return value


def resolve_api_key(
    key_file: Path | None, env: Mapping[str, str], warn: Callable[[str], None]
) -> str | None:
    if key_file is not None:
        return read_secret_file(key_file, "API key", warn)
    value = env.get(API_KEY_ENV, "").strip()
    return value or None


def resolve_base_url(given: str | None, env: Mapping[str, str]) -> str:
    return (given or env.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def check_base_url(url: str, *, allow_insecure_http: bool, param: str = "base_url") -> None:
    """An address the tool sends to (``param``: the API's, or ``ping_url``): https, or
    plain http to loopback only (unless ``allow_insecure_http``), and no credentials."""
    parts = urlsplit(url)
    if "@" in parts.netloc:  # user:pass@host: a credential in a URL ends up in logs
        if param != "base_url":
            raise UsageError(
                f"{param} must not carry a user name or password ({_without_userinfo(url)})",
                param=param,
            )
        raise UsageError(
            f"--base-url must not carry a user name or password ({_without_userinfo(url)})",
            hint=f"the API key goes in a header: set {API_KEY_ENV} or use --api-key-file",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = repr(url) if param == "base_url" else f"{parts.scheme or '(none)'}://..."
        raise UsageError(f"{param} {shown} is not an http(s) URL", param=param)
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        what = "the API key and trunk passwords" if param == "base_url" else "the run's summary"
        raise UsageError(
            f"refusing to send {what} over plain http to {parts.hostname}",
            hint="use https, or allow_insecure_http if you really mean it",
            param="allow_insecure_http",
        )


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_sending(concurrency: int, rate: float | None, max_attempts: int, timeout: float) -> None:
    """Raise ``UsageError`` for a concurrency, rate, attempts or timeout that can't be used."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(
            f"concurrency must be between 1 and {MAX_CONCURRENCY}", param="concurrency"
        )
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise UsageError(
            f"rate {rate}: give a number of requests per second above 0",
            hint="None for no limit",
            param="rate",
        )
    if max_attempts < 1:
        raise UsageError("max_attempts must be at least 1", param="max_attempts")
    if not (math.isfinite(timeout) and timeout > 0):
        raise UsageError(f"timeout {timeout}: give a number of seconds above 0", param="timeout")
