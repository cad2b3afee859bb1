"""cli: the ``bulk-import`` command; flags in, exit code out.

The CLI only parses, resolves secrets, calls ``runner.run_import`` (or the sandbox), and
turns a ``BulkImportError`` into one message and its exit code.  No traceback reaches a
user: anything unexpected is reported in one line (exit 1); ``BULK_IMPORT_DEBUG=1`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    read_secret_file,
    resolve_api_key,
    resolve_base_url,
)
from .defaults import (
    CONCURRENCY,
    EXIT_ABORTED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_USAGE,
    MAX_ATTEMPTS,
    MAX_CONCURRENCY,
    TIMEOUT,
)
from .errors import BulkImportError, MissingColumnsError, UsageError

if TYPE_CHECKING:
    from .models import FailureLimit

RUN_EXAMPLES = f"""\
examples:
  check a file, sending nothing:
    bulk-import run numbers.xlsx --dry-run

  try it end to end against a local emulator (no account needed):
    bulk-import run samples/phone_numbers.csv --sandbox

  import for real (the key comes from the environment or a file, never the command line):
    export {API_KEY_ENV}=...            # or: --api-key-file ~/.sigmamind-key
    bulk-import run numbers.csv --rate 20 --concurrency 8

  every row uses the same trunk: give it once instead of in every row:
    export TRUNK_PASSWORD=...
    bulk-import run numbers.csv --default trunkUsername=acme \\
        --default terminationSipURI=sip.telnyx.com --trunk-password-env TRUNK_PASSWORD

  headers with other names, and numbers written without +1:
    bulk-import run numbers.csv --map "Number=phoneNumber" --map "Agent=inboundAgentId" \\
        --default-region US

  pick up where a stopped or failed run left off (skips rows already imported):
    bulk-import run numbers.csv --resume

exit codes: {EXIT_OK} all rows done; {EXIT_ROWS} some rows invalid/failed/not attempted; \
{EXIT_USAGE} usage or file
error (nothing sent); {EXIT_ABORTED} aborted (key rejected, API unreachable); {EXIT_LOCKED} \
another run holds the
results file; {EXIT_INTERRUPTED} interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulk-import",
        allow_abbrev=False,
        description="Import BYO phone numbers from a spreadsheet into SigmaMind, "
        "concurrently and exactly once, with a results CSV row by row.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="import every row of a CSV or Excel file",
        allow_abbrev=False,
        description="Import every row of FILE (.csv, .tsv, .txt, .xlsx, .xlsm, .xlsb, .xls, "
        ".ods) and write a results file that says, row by row, what happened.",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="the spreadsheet: .csv, .tsv, .txt, .xlsx, .xlsm, .xlsb, .xls or .ods",
    )
    _run_options(run)
    run.set_defaults(command_name="run")
    _batch_commands(sub)

    from .sandbox.cli import DEFAULTS, add_arguments

    sandbox = sub.add_parser(
        "sandbox",
        help="serve a local emulator of the API (for tests and demos)",
        allow_abbrev=False,
        description="Serve the SigmaMind phone-number API on 127.0.0.1, with its validation, "
        "409 for known numbers, 429 above --rate, and injected faults.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="It accepts one API key in the X-API-Key header: --api-key (default: "
        f"{DEFAULTS.api_key!r}, a test value).\n\n"
        "example:\n  bulk-import sandbox --port 8080 --api-key test --rate 50 "
        "--latency-ms 50 --fail-rate 0.1\n  SIGMAMIND_API_KEY=test bulk-import run "
        "samples/phone_numbers.csv --base-url http://127.0.0.1:8080\n",
    )

    add_arguments(sandbox)
    sandbox.set_defaults(parser=sandbox)
    return parser


#: The commands that take one file: name -> (its line in the command list, its
#: description, and its file argument: dest, metavar, help).
_FILE_COMMANDS: dict[str, tuple[str, str, tuple[str, str, str]]] = {
    "plan": (
        "what run would do, read from the account; changes nothing",
        "For each row of FILE, what `run` would do now (would_import, "
        "would_update, unchanged, already_exists, ...) and the fields that would change, "
        "read from the account. Sends no POST, PATCH or DELETE. Results: <FILE stem>.plan.csv.",
        ("file", "FILE", "the spreadsheet to plan"),
    ),
    "update": (
        "change numbers that exist: PATCH only the fields that differ",
        "For each row of FILE, read the number and PATCH only the fields that "
        "differ (nothing when none do: unchanged). Only phoneNumber is required: an export, "
        "edited, is a valid update file. `undo` puts the old values back.",
        ("file", "FILE", "the spreadsheet of changes"),
    ),
    "undo": (
        "delete what a run imported, put back what it updated",
        "Delete exactly the numbers RESULTS lists as imported, and PATCH back the "
        "old values of the rows it lists as updated (kept in its journal). Nothing else is "
        "touched. Says how many and where first; asks on a terminal, needs --yes elsewhere. "
        "Results: <RESULTS stem>.undo.csv.",
        ("file", "RESULTS", "the results file of run/update (.csv, or the .xlsx of --output)"),
    ),
    "export": (
        "the account's numbers as a spreadsheet in the import's columns",
        "Write every number of the account (all pages), sorted, to OUT (.csv or "
        ".xlsx) in the import's columns; a valid input for `update`. No trunk credentials "
        "(the API never returns them).",
        ("out", "OUT", "the file to write: .csv or .xlsx"),
    ),
    "template": (
        "an empty import spreadsheet (.csv or .xlsx)",
        "Write the header row of an import file to OUT (.csv or .xlsx), required "
        "fields first; in .xlsx the phone columns are formatted as text.",
        ("out", "OUT", "the file to write"),
    ),
}


def _batch_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """plan, update, undo, export and template: the rest of a batch's life."""
    for name, (what, description, (dest, metavar, about)) in _FILE_COMMANDS.items():
        command = sub.add_parser(
            name,
            allow_abbrev=False,
            help=what,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_argument(dest, type=Path, metavar=metavar, help=about)
        if name == "undo":
            command.add_argument("--yes", "-y", action="store_true", help="go ahead without asking")
        if name == "export":
            _connection_options(command)
            _watch_options(command, report=False)
        elif name != "template":
            _run_options(command)
        command.set_defaults(command_name=name)


def _connection_options(p: argparse.ArgumentParser) -> None:
    api = p.add_argument_group("the API")
    api.add_argument("--base-url", metavar="URL", help=f"API address (default: ${BASE_URL_ENV})")
    api.add_argument(
        "--api-key-file", type=Path, metavar="PATH", help=f"the API key (default: ${API_KEY_ENV})"
    )
    api.add_argument("--sandbox", action="store_true", help="export from a local emulator (a demo)")
    api.add_argument("--allow-insecure-http", action="store_true", help=argparse.SUPPRESS)
    api.add_argument("--rate", type=float, metavar="R", help="requests per second at most")
    api.add_argument(
        "--max-attempts", type=int, default=MAX_ATTEMPTS, metavar="N", help="tries per page"
    )
    api.add_argument("--timeout", type=float, default=TIMEOUT, metavar="SECONDS")
    api.add_argument("--quiet", "-q", action="store_true", help="print only errors")


def _run_options(run: argparse.ArgumentParser) -> None:
    """``run``'s options, shared by plan, update and undo."""
    _watch_options(run)
    io = run.add_argument_group("input and output")
    io.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="PATH",
        help="results CSV, or a workbook if it ends in .xlsx "
        "(default: <FILE stem>.results.csv beside FILE)",
    )
    io.add_argument("--sheet", metavar="NAME", help="workbook sheet to read (default: the first)")
    io.add_argument(
        "--header-row",
        type=int,
        metavar="N",
        help="the row number of the header (default: the first row naming two fields)",
    )
    io.add_argument(
        "--failed-rows",
        type=Path,
        metavar="PATH",
        help="also write the rows that did not go through (.csv or .xlsx), in the input's "
        "columns plus 'error': fix them and run that file (owner-only, 0600: it has passwords)",
    )
    io.add_argument(
        "--encoding", metavar="NAME", help="CSV encoding (default: UTF-8, falling back to cp1252)"
    )
    io.add_argument(
        "--map",
        action="append",
        default=[],
        metavar='"Header=field"',
        help="read the column 'Header' as the API field (repeatable)",
    )
    io.add_argument(
        "--default",
        action="append",
        default=[],
        metavar="field=value",
        help="value for a field when its column is missing or the cell empty "
        "(repeatable; not for trunkPassword)",
    )
    io.add_argument(
        "--trunk-password-env",
        metavar="VAR",
        help="default trunkPassword from this environment variable",
    )
    io.add_argument(
        "--trunk-password-file",
        type=Path,
        metavar="PATH",
        help="default trunkPassword from the first line of this file",
    )
    io.add_argument(
        "--default-region",
        metavar="XX",
        help="read numbers without + as numbers of this country (e.g. US, GB)",
    )
    io.add_argument(
        "--summary-json", type=Path, metavar="PATH", help="also write the summary as JSON"
    )
    io.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append a timestamped line per finished row (for cron)",
    )

    api = run.add_argument_group("the API")
    api.add_argument(
        "--base-url",
        metavar="URL",
        help=f"API address (default: ${BASE_URL_ENV} or https://api.sigmamind.ai)",
    )
    api.add_argument(
        "--api-key-file",
        type=Path,
        metavar="PATH",
        help=f"read the API key from this file (default: ${API_KEY_ENV})",
    )
    api.add_argument(
        "--sandbox",
        action="store_true",
        help="start a local emulator of the API and import into it (a demo)",
    )
    api.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// base URL to a non-loopback host",
    )

    send = run.add_argument_group("sending")
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="validate only and write the results file; no network at all",
    )
    send.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once, 1 to {MAX_CONCURRENCY} (default: {CONCURRENCY})",
    )
    send.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="requests per second at most (default: no limit; backs off on 429)",
    )
    send.add_argument(
        "--max-attempts",
        type=int,
        default=MAX_ATTEMPTS,
        metavar="N",
        help=f"tries per row for 429, 5xx and network errors (default: {MAX_ATTEMPTS})",
    )
    send.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"per request (default: {TIMEOUT:g})",
    )
    send.add_argument(
        "--max-failures",
        type=_failure_limit,
        metavar="N|P%",
        help="stop sending once N rows (or P%% of the rows answered, judged after the "
        "first 20) ended failed; the rest are not_attempted, exit 3 (default: no limit)",
    )
    send.add_argument(
        "--resume", action="store_true", help="skip rows the results file already records as done"
    )
    send.add_argument(
        "--on-existing",
        choices=("skip", "update", "fail"),
        default="skip",
        help="a number that already exists: skip it (already_exists), "
        "update it (PATCH), or fail the row (default: skip)",
    )

    out = run.add_argument_group("terminal")
    out.add_argument(
        "--quiet", "-q", action="store_true", help="print only the summary line (and errors)"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar or lines")


#: The message for ``--api-key VALUE`` (``run`` and the other API commands): never echoed.
API_KEY_FLAG_REFUSED = (
    "bulk-import: error: --api-key is not an option: a key on the command line is visible "
    f"to every user in ps. Set {API_KEY_ENV} in the environment, or use --api-key-file PATH "
    "(a file only you can read)"
)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _gives_api_key(argv):
        print(API_KEY_FLAG_REFUSED, file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {_shown(unknown)}")
    _setup_logging(quiet=getattr(args, "quiet", False))
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "template":
            return _template(args)
        if args.command == "export":
            return _export(args)
        return _run(args)
    except BulkImportError as exc:
        print(f"bulk-import: error: {describe(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bulk-import: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("BULK_IMPORT_DEBUG"):
            raise
        print(
            f"bulk-import: internal error: {type(exc).__name__}: {exc} "
            "(set BULK_IMPORT_DEBUG=1 to see where; please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR


#: The command line's word for each library parameter an error may name
#: (``BulkImportError.param``): the first mention of the parameter in the message (and
#: in its hint) is replaced by this, and so is any ``name=True`` (a switch).
FLAGS: dict[str, str] = {
    "file": "FILE",
    "output": "--output",
    "sheet": "--sheet",
    "header_row": "--header-row",
    "failed_rows": "--failed-rows",
    "encoding": "--encoding",
    "base_url": "--base-url",
    "api_key": f"an API key ({API_KEY_ENV} or --api-key-file PATH)",
    "concurrency": "--concurrency",
    "rate": "--rate",
    "max_attempts": "--max-attempts",
    "timeout": "--timeout",
    "dry_run": "--dry-run",
    "resume": "--resume",
    "on_existing": "--on-existing",
    "max_failures": "--max-failures",
    "mapping": "--map",
    "defaults": "--default",
    "default_region": "--default-region",
    "summary_json": "--summary-json",
    "log_file": "--log-file",
    "allow_insecure_http": "--allow-insecure-http",
    "sandbox": "--sandbox",
    "yes": "--yes",
}
#: The command line's own hint for a parameter, where the library's (which may name other
#: parameters, or say "None") would not read right on a terminal.
HINTS: dict[str, str] = {
    "rate": "leave --rate out for no limit",
    "yes": "confirm with --yes (not asked: not on a terminal)",
}


def describe(exc: BulkImportError) -> str:
    """The error as the command line says it: the parameter it names becomes its flag."""
    if isinstance(exc, MissingColumnsError):
        return f"{exc.message} ({_missing_columns_hint(exc.missing)})"
    message, hint = _switches(exc.message), exc.hint and _switches(exc.hint)
    param = exc.param
    if param in FLAGS:
        # Not inside a path or a file name (``/data/mapping.csv``).
        name = re.compile(rf"(?<![\w/\\.-]){re.escape(param)}(?![\w/\\.-])")
        flag = FLAGS[param]
        message = name.sub(lambda _m: flag, message, count=1)
        if param in HINTS:
            hint = HINTS[param]
        elif hint:
            hint = name.sub(lambda _m: flag, hint, count=1)
    return f"{message} ({hint})" if hint else message


def _switches(text: str) -> str:
    """``dry_run=True`` as ``--dry-run``."""
    return re.sub(r"(?<![\w-])([a-z_]+)=True\b", lambda m: FLAGS.get(m[1], m[0]), text)


def _missing_columns_hint(missing: list[str]) -> str:
    hints = []
    if any(name != "trunkPassword" for name in missing):
        hints.append(
            "rename the column, add --map 'Your Header=field', or give a default "
            "with --default field=value"
        )
    if "trunkPassword" in missing:
        hints.append(
            "trunkPassword: add a column, or give one password for every row with "
            "--trunk-password-env VAR or --trunk-password-file PATH"
        )
    return "; ".join(hints)


def _gives_api_key(argv: Sequence[str]) -> bool:
    """True when a command other than ``sandbox`` is given ``--api-key`` (never parsed:
    argparse would echo its value in an error message)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "sandbox":
        return False
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--api-key" or arg.startswith("--api-key="):
            return True
    return False


def _shown(unknown: Sequence[str]) -> str:
    """Unrecognized arguments as options only: a value next to a mistyped option (say
    ``--api-keyfile SECRET``) may be a secret, so values are counted, never shown."""
    options = [arg.partition("=")[0] for arg in unknown if arg.startswith("-")]
    values = len(unknown) - len(options) + sum("=" in arg for arg in unknown)
    if values:
        options.append(f"(and {values} value(s), not shown)")
    return " ".join(options)


def console() -> None:
    """The ``bulk-import`` command (and ``python -m bulk_import``): ``main``, then exit.

    After a run every file is closed and flushed, so the process ends at once with
    ``os._exit`` rather than wait for the interpreter to tear down pandas, numpy and
    aiohttp (0.15-0.2 s: a cron job's or a benchmark's wall time).  ``--help`` and usage
    errors leave through ``SystemExit`` as usual.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


class _Stderr(logging.Handler):
    """Log records as ``bulk-import: message`` on whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        text = f"bulk-import: {record.getMessage()}"
        bar = sys.modules.get("tqdm")
        if bar is not None:  # a progress bar may be showing: print above it, not on it
            bar.tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)


def _setup_logging(*, quiet: bool) -> None:
    """The package's own log messages (an abort's reason, say) go to stderr, one line each."""
    logger = logging.getLogger("bulk_import")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
        logger.propagate = False
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    for name in ("httpx", "httpcore"):  # their INFO lines would log every request URL
        other = logging.getLogger(name)
        if other.level < logging.WARNING:
            other.setLevel(logging.WARNING)


def _warn(text: str) -> None:
    print(text, file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    # Imported here, so that --help and usage errors answer at once (pandas is slow to load).
    from .runner import RunOptions, run_import

    env = os.environ
    defaults = parse_defaults(args.default)
    password = resolve_trunk_password(args.trunk_password_env, args.trunk_password_file, env, _warn)
    if password is not None:
        defaults["trunkPassword"] = password
    # plan reads the account even though it writes nothing: it needs the key.
    needs_key = not args.sandbox and (not args.dry_run or args.command_name == "plan")
    api_key = resolve_api_key(args.api_key_file, env, _warn) if needs_key else None
    opts = RunOptions(
        file=args.file,
        output=args.output,
        sheet=args.sheet,
        header_row=args.header_row,
        failed_rows=args.failed_rows,
        encoding=args.encoding,
        base_url=resolve_base_url(args.base_url, env),
        api_key=api_key,
        concurrency=args.concurrency,
        rate=args.rate,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        dry_run=args.dry_run,
        resume=args.resume,
        on_existing=args.on_existing,
        max_failures=args.max_failures,
        mapping=parse_mapping(args.map),
        defaults=defaults,
        default_region=args.default_region,
        summary_json=args.summary_json,
        log_file=args.log_file,
        progress=not (args.quiet or args.no_progress),
        allow_insecure_http=args.allow_insecure_http,
        sandbox=args.sandbox,
        command=args.command_name,
        yes=getattr(args, "yes", False),
        confirm=_ask if _on_terminal() else None,
        **_watch_fields(args),
    )
    say = (lambda _text: None) if args.quiet else _warn
    summary = run_import(opts, say=say, handle_signals=True)
    print(summary.line(), file=sys.stderr)
    return summary.exit_code


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``--map Header=field``, repeated -> ``{header: JSON field name}``."""
    from .load import match_header
    from .models import FIELDS_HINT

    mapping: dict[str, str] = {}
    for item in items:
        header, sep, name = item.rpartition("=")
        header, name = header.strip(), name.strip()
        if not sep or not header or not name:
            raise UsageError(
                f"--map {item!r} is not of the form 'Header=field'",
                hint=FIELDS_HINT,
            )
        json_name = match_header(name)
        if json_name is None:
            raise UsageError(f"--map {item!r}: {name!r} is not a field", hint=FIELDS_HINT)
        mapping[header] = json_name
    return mapping


def parse_defaults(items: Sequence[str]) -> dict[str, str]:
    """``--default field=value``, repeated -> ``{JSON field name: value}``."""
    from .load import match_header
    from .models import FIELD_BY_JSON, FIELDS_HINT

    defaults: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        json_name = match_header(name) if sep else None
        if not sep or not name.strip():
            raise UsageError(f"--default {item!r} is not of the form 'field=value'")
        if json_name is None:
            raise UsageError(f"--default {item!r}: {name!r} is not a field", hint=FIELDS_HINT)
        if FIELD_BY_JSON[json_name].secret:
            raise UsageError(
                "--default cannot set trunkPassword: it would be visible in ps; "
                "use --trunk-password-env VAR or --trunk-password-file PATH"
            )
        if not value.strip():
            raise UsageError(f"--default {json_name}=: the value is empty")
        defaults[json_name] = value.strip()
    return defaults


def resolve_trunk_password(
    env_var: str | None,
    file: Path | None,
    env: Mapping[str, str],
    warn: Callable[[str], None],
) -> str | None:
    """The trunk password every row shares: ``--trunk-password-env`` or ``-file``."""
    if env_var and file:
        raise UsageError("give --trunk-password-env or --trunk-password-file, not both")
    if file is not None:
        return read_secret_file(file, "trunk password", warn)
    if env_var:
        value = env.get(env_var)
        if not value:
            raise UsageError(
                f"--trunk-password-env {env_var}: that environment variable is not set or empty"
            )
        return value
    return None


def _failure_limit(text: str) -> FailureLimit:
    """``--max-failures``: ``N`` rows, or ``P%`` of the rows answered."""
    from .models import FailureLimit  # here: --help answers without loading the stages

    raw = text.strip()
    try:
        if raw.endswith("%"):
            share = float(raw[:-1]) / 100
            if not math.isfinite(share):
                raise ValueError
            return FailureLimit(share=share)
        return FailureLimit(count=int(raw))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count of rows (say 50) or a percentage above 0 and at most "
            "100 (say 10%)"
        ) from None


def _on_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _ask(what: str) -> bool:
    """Ask on the terminal; only 'y' or 'yes' goes ahead."""
    print(f"{what}. Go ahead? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def _template(args: argparse.Namespace) -> int:
    from .spreadsheet import write_template

    write_template(args.out)
    print(f"bulk-import: template written to {args.out}", file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .spreadsheet import ExportOptions, export_account

    env = os.environ
    api_key = None if args.sandbox else resolve_api_key(args.api_key_file, env, _warn)
    opts = ExportOptions(
        out=args.out,
        base_url=resolve_base_url(args.base_url, env),
        api_key=api_key,
        rate=args.rate,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        sandbox=args.sandbox,
        allow_insecure_http=args.allow_insecure_http,
        **_watch_fields(args),
    )
    say = (lambda _text: None) if args.quiet else _warn
    count = export_account(opts, say=say)
    print(f"bulk-import: exported {count} number(s) to {args.out}", file=sys.stderr)
    return EXIT_OK


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox.cli import run

    if not 0 <= args.port < 65536:
        raise UsageError("--port must be between 0 and 65535")
    try:
        run(args, args.parser)
    except OSError as exc:
        raise UsageError(
            f"the sandbox can't listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
            hint="choose another --port, or --port 0 for a free one",
        ) from exc
    return EXIT_OK


# -- watching a run (watch.py): metrics, health pings, a report ---------------------------

FLAGS.update(
    {
        "metrics_file": "--metrics-file",
        "metrics_labels": "--metrics-label",
        "ping_url": "--ping-url",
        "report": "--report",
    }
)


def _watch_options(p: argparse.ArgumentParser, *, report: bool = True) -> None:
    """The options for whoever watches a scheduled run (README: "Watching it")."""
    watch = p.add_argument_group("watching it")
    watch.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH.prom",
        help="write Prometheus metrics (node_exporter's textfile collector) at the end",
    )
    watch.add_argument(
        "--metrics-label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a label on every metric (repeatable), e.g. job=nightly",
    )
    watch.add_argument(
        "--ping-url",
        metavar="URL",
        help="a health-check URL (healthchecks.io and compatible): URL/start, then "
        "URL/<exit code> with the summary",
    )
    if report:
        watch.add_argument(
            "--report",
            type=Path,
            metavar="PATH.html",
            help="write a one-file HTML report at the end",
        )


def _watch_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The watching options as ``RunOptions`` fields."""
    labels: dict[str, str] = {}
    for item in args.metrics_label:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"--metrics-label {item!r} is not of the form NAME=VALUE",
                hint="e.g. --metrics-label job=nightly",
            )
        labels[name.strip()] = value
    fields = {"metrics_file": args.metrics_file, "metrics_labels": labels}
    fields["ping_url"] = args.ping_url
    if hasattr(args, "report"):  # export has none
        fields["report"] = args.report
    return fields
