"""``python -m bulk_import.sandbox`` (and ``bulk-import sandbox``): serve the sandbox.

Prints ``sandbox listening on http://127.0.0.1:PORT`` once it accepts connections, then
the API key it accepts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bulk_import.sandbox.settings import (
    IETF_FORMS,
    LIST_STYLES,
    RATE_HEADERS,
    RATE_STYLES,
    SandboxConfig,
)

DEFAULTS = SandboxConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options, shared by both ways of starting it."""
    add = parser.add_argument
    add("--port", type=int, default=0, help="0 picks a free port (printed)")
    add(
        "--api-key",
        default=DEFAULTS.api_key,
        help="the one key it accepts in X-API-Key (a test value; default: %(default)s)",
    )
    add("--rate", type=float, default=None, help="requests/second before it answers 429")
    add(
        "--rate-headers",
        choices=RATE_HEADERS,
        default=DEFAULTS.rate_headers,
        help="send X-RateLimit-* on every answer, on 429s only, or never (default: %(default)s)",
    )
    add(
        "--rate-style",
        choices=RATE_STYLES,
        default=DEFAULTS.rate_style,
        help="how the limit is enforced and announced: silent (429 only), bucket "
        "(X-RateLimit-* per second), window (X-RateLimit-* per --window), ietf "
        "(RateLimit-Policy + RateLimit) (default: %(default)s)",
    )
    add(
        "--window",
        type=float,
        default=None,
        metavar="S",
        help="window of the window style (default 60 s) and the IETF policy (default 1 s)",
    )
    add(
        "--announce-rate",
        type=float,
        default=None,
        metavar="R",
        help="announce this limit (per second) instead of the one enforced: wrong headers",
    )
    add("--burst", type=float, default=None, help="bucket size (default: max(1, rate/10))")
    add("--decimal-reset", action="store_true", help="Reset with 3 decimals, not whole seconds")
    add("--reset-epoch", action="store_true", help="window style: Reset as a Unix time")
    add("--ietf-trio", action="store_true", help="ietf style: the same as --ietf-form trio")
    add(
        "--ietf-form",
        choices=IETF_FORMS,
        default=DEFAULTS.ietf_form,
        help="ietf style's headers: draft (RateLimit-Policy: Q;w=W + RateLimit: limit=, "
        "remaining=, reset=), trio (RateLimit-Limit/-Remaining/-Reset), structured "
        '("name";q=Q;w=W + "name";r=N;t=S, and a looser daily policy) (default: %(default)s)',
    )
    add("--reject-all", action="store_true", help="answer every import 400")
    add("--latency-ms", type=float, default=0.0, help="delay before every answer")
    add("--fail-rate", type=float, default=0.0, help="share of imports answered 500")
    add("--unavailable-rate", type=float, default=0.0, help="share answered 503 + Retry-After")
    add("--reset-rate", type=float, default=0.0, help="share dropped before storing")
    add(
        "--drop-after-store-rate",
        type=float,
        default=0.0,
        help="share stored, then the connection dropped without an answer",
    )
    add("--late-rate", type=float, default=0.0, help="share stored, then answered late")
    add("--late-ms", type=float, default=DEFAULTS.late_ms, help="how late (ms)")
    add("--burst-429-every", type=int, default=None, help="every Nth import answered 429")
    add(
        "--fault-retry-after",
        type=float,
        default=DEFAULTS.fault_retry_after,
        help="Retry-After (s) of injected 429/503",
    )
    add("--decimal-retry-after", action="store_true", help="Retry-After with decimals")
    add("--seed", type=int, default=None, help="repeatable fault draws")
    add(
        "--preload",
        type=Path,
        default=None,
        metavar="FILE",
        help="start holding the numbers of FILE (an export, or an import file)",
    )
    add(
        "--list-style",
        choices=LIST_STYLES,
        default=DEFAULTS.list_style,
        help="the shape of the list endpoint's pages (default: %(default)s)",
    )
    add(
        "--page-size",
        type=int,
        default=DEFAULTS.page_size,
        help="numbers per list page at most (default: %(default)s)",
    )


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Build the config from parsed options and serve until Ctrl-C or SIGTERM."""
    options = {k: v for k, v in vars(args).items() if k in SandboxConfig.__dataclass_fields__}
    from bulk_import.sandbox.server import serve

    try:
        config = SandboxConfig(**options)
    except ValueError as exc:
        parser.error(str(exc))
    serve(config, args.port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bulk_import.sandbox", description=__doc__, allow_abbrev=False
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args, parser)
    except OSError as exc:
        parser.exit(
            2,
            f"{parser.prog}: error: can't listen on 127.0.0.1:{args.port}: "
            f"{exc.strerror or exc} (choose another --port, or --port 0 for a free one)\n",
        )
