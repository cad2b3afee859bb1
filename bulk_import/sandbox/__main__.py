"""``python -m bulk_import.sandbox``: serve the sandbox in its own process (benchmarks).

Prints ``sandbox listening on http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse

from bulk_import.sandbox.faults import SandboxConfig
from bulk_import.sandbox.server import serve

DEFAULTS = SandboxConfig()


def main(argv: list[str] | None = None) -> None:
    """Parse the options, then serve until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bulk_import.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULTS.api_key)
    parser.add_argument("--rate", type=float, default=None, help="requests/second limit")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--unavailable-rate", type=float, default=0.0)
    parser.add_argument("--reset-rate", type=float, default=0.0)
    parser.add_argument("--drop-after-store-rate", type=float, default=0.0)
    parser.add_argument("--late-rate", type=float, default=0.0)
    parser.add_argument("--late-ms", type=float, default=DEFAULTS.late_ms)
    parser.add_argument("--burst-429-every", type=int, default=None)
    parser.add_argument("--fault-retry-after", type=float, default=DEFAULTS.fault_retry_after)
    parser.add_argument("--decimal-retry-after", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    args = vars(parser.parse_args(argv))
    port = args.pop("port")
    try:
        config = SandboxConfig(**args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(config, port)


if __name__ == "__main__":
    main()
