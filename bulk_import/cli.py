"""cli: the ``bulk-import`` command; flags in, exit code out.

The CLI only parses, resolves secrets, calls ``runner.run_import`` (or the sandbox), and
turns a ``BulkImportError`` into one message and its exit code.  No traceback reaches a
user: anything unexpected is reported in one line (exit 1); ``BULK_IMPORT_DEBUG=1`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cliargs import build_parser
from .config import (
    API_KEY_ENV,
    read_secret_file,
    resolve_api_key,
    resolve_base_url,
)
from .defaults import (
    CONCURRENCY,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    MAX_ATTEMPTS,
    TIMEOUT,
)
from .errors import BulkImportError, MissingColumnsError, UsageError

if TYPE_CHECKING:
    from .record import Summary

__all__ = ["build_parser", "describe", "main", "option"]

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
    _setup_logging(quiet=option(args, "quiet"))
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
        print(f"bulk-import: interrupted{_after_interrupt(args)}", file=sys.stderr)
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
    "other_account": "--other-account",
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
    "force": "--force",
}
#: The command line's own hint for a parameter, where the library's (which may name other
#: parameters, or say "None") would not read right on a terminal.
HINTS: dict[str, str] = {
    "rate": "leave --rate out for no limit",
    "yes": "confirm with --yes (not asked: not on a terminal)",
    "force": "--force replaces it; or give another file name",
}


def describe(exc: BulkImportError) -> str:
    """The error as the command line says it: the parameter it names becomes its flag."""
    if isinstance(exc, MissingColumnsError):
        return f"{exc.message} ({_missing_columns_hint(exc)})"
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


def _missing_columns_hint(exc: MissingColumnsError) -> str:
    """The likely fix first: map the header most like each missing field (if any)."""
    missing, closest = exc.missing, exc.closest
    hints = []
    if closest:
        maps = " ".join(f"--map {f'{h}={f}'!r}" for f, h in closest.items())
        hints.append(f"the closest headers: {maps}")
    if any(name != "trunkPassword" and name not in closest for name in missing):
        hints.append(
            "rename the column, add --map 'Your Header=field', or give a default "
            "with --default field=value"
        )
    if "trunkPassword" in missing and "trunkPassword" not in closest:
        hints.append(
            "trunkPassword: add a column, or give one password for every row with "
            "--trunk-password-env VAR or --trunk-password-file PATH"
        )
    return "; ".join(hints)


#: What to run after an interrupt, by command (the rows a run finished are recorded).
_AFTER_INTERRUPT = {
    "export": "; nothing was written: run it again",
    "template": "; nothing was written: run it again",
    "sandbox": "",
}


def _after_interrupt(args: argparse.Namespace) -> str:
    if option(args, "dry_run"):
        return "; nothing was sent: run it again"
    return _AFTER_INTERRUPT.get(
        args.command,
        "; the rows finished so far are recorded: run the same command with --resume to continue",
    )


def summary_line(summary: Summary) -> str:
    """The summary line, and what to run next after an interrupt (exit 130)."""
    line = summary.line()
    if summary.exit_code == EXIT_INTERRUPTED:
        line += "; to continue: the same command with --resume"
    return line


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
    ``os._exit`` rather than wait for the interpreter to tear down pandas, numpy and the
    HTTP client (0.15-0.2 s: a cron job's or a benchmark's wall time).  ``--help`` and usage
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


#: The value of an option a command does not have (each command's parser has only the
#: options it uses: cliargs.GROUPS); None for the rest.
_ABSENT: dict[str, Any] = {
    "map": [],
    "default": [],
    "on_existing": "skip",
    "concurrency": CONCURRENCY,
    "max_attempts": MAX_ATTEMPTS,
    "timeout": TIMEOUT,
    "dry_run": False,
    "resume": False,
    "yes": False,
    "other_account": False,
    "force": False,
    "quiet": False,
    "no_progress": False,
    "sandbox": False,
    "allow_insecure_http": False,
}


def option(args: argparse.Namespace, name: str) -> Any:
    """An option's value, or its default when the command has no such option."""
    return getattr(args, name, _ABSENT.get(name))


def _run(args: argparse.Namespace) -> int:
    # Imported here, so that --help and usage errors answer at once (pandas is slow to load).
    from .runner import RunOptions, run_import

    env = os.environ
    defaults = parse_defaults(option(args, "default"))
    password = resolve_trunk_password(
        option(args, "trunk_password_env"), option(args, "trunk_password_file"), env, _warn
    )
    if password is not None:
        defaults["trunkPassword"] = password
    dry_run, quiet = option(args, "dry_run"), option(args, "quiet")
    # plan reads the account even though it writes nothing: it needs the key.
    needs_key = not args.sandbox and (not dry_run or args.command_name == "plan")
    api_key = resolve_api_key(args.api_key_file, env, _warn) if needs_key else None
    opts = RunOptions(
        file=args.file,
        output=args.output,
        sheet=option(args, "sheet"),
        header_row=option(args, "header_row"),
        failed_rows=option(args, "failed_rows"),
        encoding=option(args, "encoding"),
        base_url=resolve_base_url(args.base_url, env),
        api_key=api_key,
        concurrency=args.concurrency,
        rate=args.rate,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        dry_run=dry_run,
        resume=args.resume,
        on_existing=option(args, "on_existing"),
        max_failures=args.max_failures,
        mapping=parse_mapping(option(args, "map")),
        defaults=defaults,
        default_region=option(args, "default_region"),
        summary_json=args.summary_json,
        log_file=args.log_file,
        progress=not (quiet or option(args, "no_progress")),
        allow_insecure_http=args.allow_insecure_http,
        sandbox=args.sandbox,
        command=args.command_name,
        yes=option(args, "yes"),
        other_account=option(args, "other_account"),
        force=option(args, "force"),
        confirm=_ask if _on_terminal() else None,
        **_watch_fields(args),
    )
    say = (lambda _text: None) if quiet else _warn
    summary = run_import(opts, say=say, handle_signals=True)
    print(summary_line(summary), file=sys.stderr)
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

    write_template(args.out, force=args.force)
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
        concurrency=args.concurrency,
        summary_json=args.summary_json,
        log_file=args.log_file,
        progress=not (args.quiet or args.no_progress),
        **_watch_fields(args),
    )
    say = (lambda _text: None) if args.quiet else _warn
    count = export_account(opts, say=say)
    if not args.quiet:
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
