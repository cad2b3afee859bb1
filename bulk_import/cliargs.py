"""cliargs: the command line's words: every command, its options, its help and examples.

Each command's ``--help`` lists only the options that command uses, with its own defaults
and examples (docs/contract.md: the command line).  Options come in groups, one function
each (``_input``, ``_output``, ``_api``, ``_sending``, ``_terminal``, ...), called with the
parser and the command's name; ``GROUPS`` says which groups each command has.  A new
option goes into the group it belongs to (with an ``if command ...`` when only some of
the group's commands use it), or into a new group function listed in ``GROUPS``.

A command that lacks an option has no attribute for it in the parsed arguments:
``cli.option(args, name)`` reads one with its library default.

Parsing errors (a bad value, a missing FILE, an unknown command) are one line naming the
command's ``--help``, exit 2; never the usage block.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .config import API_KEY_ENV, BASE_URL_ENV
from .defaults import (
    CONCURRENCY,
    EXIT_ABORTED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_USAGE,
    MAX_ATTEMPTS,
    MAX_CONCURRENCY,
    TIMEOUT,
)

if TYPE_CHECKING:
    from .models import FailureLimit


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (and exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


EXIT_CODES = (
    f"exit codes: {EXIT_OK} all rows done; {EXIT_ROWS} some rows invalid/failed/not attempted; "
    f"{EXIT_USAGE} usage or file\nerror (nothing sent); {EXIT_ABORTED} aborted (key rejected, "
    f"API unreachable); {EXIT_LOCKED} another run holds the\nresults file; {EXIT_INTERRUPTED} "
    "interrupted (run it again with --resume to continue).\n"
)

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

{EXIT_CODES}"""

PLAN_EXAMPLES = f"""\
examples:
  what run would do with this file now (reads the account; sends no POST, PATCH, DELETE):
    bulk-import plan numbers.csv

  what an edited export would change, field by field (the changes column):
    bulk-import plan account.csv --on-existing update

exit codes: {EXIT_OK} every row would go through; {EXIT_ROWS} some would not (invalid, failed); \
{EXIT_USAGE} usage
or file error; {EXIT_ABORTED} the account could not be read.
"""

UPDATE_EXAMPLES = f"""\
examples:
  change friendly names or agents of numbers that exist:
    bulk-import export account.csv
    #   edit account.csv
    bulk-import plan account.csv --on-existing update    # see what would change
    bulk-import update account.csv
    bulk-import undo account.results.csv --yes           # puts the old values back

{EXIT_CODES}"""

UNDO_EXAMPLES = f"""\
examples:
  what undo would do, sending nothing:
    bulk-import undo numbers.results.csv --dry-run

  delete what the run imported, put back what it updated (no question asked):
    bulk-import undo numbers.results.csv --yes

{EXIT_CODES}"""

EXPORT_EXAMPLES = """\
examples:
  the account's numbers, sorted, in the import's columns:
    bulk-import export account.csv
    bulk-import export account.xlsx --rate 5
"""

TEMPLATE_EXAMPLES = """\
examples:
  an empty import file to fill in (phone columns formatted as text):
    bulk-import template numbers.xlsx

  replace a file that already has rows:
    bulk-import template numbers.csv --force
"""

#: Each command's line in the command list, its description and its examples.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "import every row of a CSV or Excel file",
        "Import every row of FILE (.csv, .tsv, .txt, .xlsx, .xlsm, .xlsb, .xls, .ods) and "
        "write a results file that says, row by row, what happened.",
        RUN_EXAMPLES,
    ),
    "plan": (
        "what run would do, read from the account; changes nothing",
        "For each row of FILE, what `run` would do now (would_import, would_update, "
        "unchanged, already_exists, ...) and the fields that would change, read from the "
        "account. Sends no POST, PATCH or DELETE. Results: <FILE stem>.plan.csv.",
        PLAN_EXAMPLES,
    ),
    "update": (
        "change numbers that exist: PATCH only the fields that differ",
        "For each row of FILE, read the number and PATCH only the fields that differ "
        "(nothing when none do: unchanged). Only phoneNumber is required: an export, edited, "
        "is a valid update file. `undo` puts the old values back.",
        UPDATE_EXAMPLES,
    ),
    "undo": (
        "delete what a run imported, put back what it updated",
        "Delete exactly the numbers RESULTS lists as imported, and PATCH back the old values "
        "of the rows it lists as updated (kept in its journal). Nothing else is touched. Says "
        "how many and where first; asks on a terminal, needs --yes elsewhere. Results: "
        "<RESULTS stem>.undo.csv.",
        UNDO_EXAMPLES,
    ),
    "export": (
        "the account's numbers as a spreadsheet in the import's columns",
        "Write every number of the account (all pages), sorted, to OUT (.csv or .xlsx) in "
        "the import's columns; a valid input for `update`. No trunk credentials (the API "
        "never returns them).",
        EXPORT_EXAMPLES,
    ),
    "template": (
        "an empty import spreadsheet (.csv or .xlsx)",
        "Write the header row of an import file to OUT (.csv or .xlsx), required fields "
        "first; in .xlsx the phone columns are formatted as text. A file that has rows is "
        "not replaced without --force.",
        TEMPLATE_EXAMPLES,
    ),
}

#: The positional argument of each command: dest, metavar, help.
ARGUMENTS: dict[str, tuple[str, str, str]] = {
    "run": ("file", "FILE", "the spreadsheet: .csv, .tsv, .txt, .xlsx, .xlsm, .xlsb, .xls or .ods"),
    "plan": ("file", "FILE", "the spreadsheet to plan"),
    "update": ("file", "FILE", "the spreadsheet of changes (an export, edited)"),
    "undo": ("file", "RESULTS", "the results file of run/update (.csv, or the .xlsx of --output)"),
    "export": ("out", "OUT", "the file to write: .csv or .xlsx"),
    "template": ("out", "OUT", "the file to write: .csv or .xlsx"),
}

#: Where each command writes its results by default (``--output``).
OUTPUT_DEFAULTS = {
    "run": "<FILE stem>.results.csv beside FILE",
    "plan": "<FILE stem>.plan.csv beside FILE",
    "update": "<FILE stem>.update.csv beside FILE",
    "undo": "<RESULTS stem>.undo.csv beside RESULTS",
}

Group = Callable[[argparse.ArgumentParser, str], None]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bulk-import",
        allow_abbrev=False,
        description="Import BYO phone numbers from a spreadsheet into SigmaMind, "
        "concurrently and exactly once, with a results CSV row by row.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (what, description, examples) in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=what,
            allow_abbrev=False,
            description=textwrap.fill(description, 88),
            epilog=examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        dest, metavar, about = ARGUMENTS[name]
        command.add_argument(dest, type=_path, metavar=metavar, help=about)
        for group in GROUPS[name]:
            group(command, name)
        command.set_defaults(command_name=name)
    _sandbox(sub)
    return parser


def _path(text: str) -> Path:
    """A FILE/OUT/RESULTS argument: an empty one is most often an unset variable."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (is a variable in the command unset?)")
    return Path(text)


def _sandbox(sub: argparse._SubParsersAction[Parser]) -> None:
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


# -- the option groups ---------------------------------------------------------------------


def _input(p: argparse.ArgumentParser, command: str) -> None:
    """How the input spreadsheet is read (run, plan, update)."""
    io = p.add_argument_group("the input file")
    io.add_argument("--sheet", metavar="NAME", help="workbook sheet to read (default: the first)")
    io.add_argument(
        "--header-row",
        type=int,
        metavar="N",
        help="the row number of the header (default: the first row naming two fields)",
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


def _output(p: argparse.ArgumentParser, command: str) -> None:
    """What the command writes besides talking to the API (run, plan, update, undo)."""
    out = p.add_argument_group("what it writes")
    out.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="PATH",
        help="results CSV, or a workbook if it ends in .xlsx "
        f"(default: {OUTPUT_DEFAULTS[command]})",
    )
    if command != "undo":  # undo's rows are results, not the input's cells
        out.add_argument(
            "--failed-rows",
            type=Path,
            metavar="PATH",
            help="also write the rows that did not go through (.csv or .xlsx), in the "
            "input's columns plus 'error': fix them and run that file (owner-only, 0600: "
            "it has passwords)",
        )
    out.add_argument(
        "--summary-json", type=Path, metavar="PATH", help="also write the summary as JSON"
    )
    out.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append a timestamped line per finished row (for cron)",
    )


def _api(p: argparse.ArgumentParser, command: str) -> None:
    """Where the API is and how to get in (every command that talks to it)."""
    api = p.add_argument_group("the API")
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
    doing = {
        "run": "import into it",
        "plan": "plan against it (empty: every row would_import)",
        "update": "update in it (empty: every row not_found)",
        "undo": "undo in it (empty: every row not_found)",
        "export": "export from it (empty: no rows)",
    }[command]
    api.add_argument(
        "--sandbox",
        action="store_true",
        help=f"a demo: start a local emulator of the API and {doing}",
    )
    api.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// base URL to a non-loopback host",
    )


def _sending(p: argparse.ArgumentParser, command: str) -> None:
    """How the requests are sent (run, plan, update, undo)."""
    send = p.add_argument_group("sending")
    if command != "plan":  # plan never writes: it is a dry run against the account
        send.add_argument(
            "--dry-run",
            action="store_true",
            help="list would_delete / would_restore; send nothing"
            if command == "undo"
            else "validate only and write the results file; no network at all",
        )
    send.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once, 1 to {MAX_CONCURRENCY} (default: {CONCURRENCY})",
    )
    _pacing(send, "row")
    send.add_argument(
        "--max-failures",
        type=_failure_limit,
        metavar="N|P%",
        help="stop sending once N rows (or P%% of the rows answered, judged after the "
        "first 20) ended failed; rows in flight finish; the rest are not_attempted, exit 3 "
        "(default: no limit)",
    )
    send.add_argument(
        "--resume", action="store_true", help="skip rows the results file already records as done"
    )
    if command in ("run", "plan"):
        send.add_argument(
            "--on-existing",
            choices=("skip", "update", "fail"),
            default="skip",
            help="a number that already exists: skip it (already_exists), "
            "update it (PATCH), or fail the row (default: skip)",
        )
    elif command == "update":  # only --resume reads it: a row edited since it was done
        send.add_argument(
            "--on-existing",
            choices=("skip", "update"),
            default="skip",
            help="with --resume, a row edited since an earlier run updated it: note the "
            "change (skip) or PATCH it again (update) (default: skip)",
        )


def _pacing(group: argparse._ArgumentGroup, unit: str) -> None:
    """--rate, --max-attempts and --timeout: for rows, or for the pages of export."""
    group.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="requests per second at most (default: no limit; backs off on 429)",
    )
    group.add_argument(
        "--max-attempts",
        type=int,
        default=MAX_ATTEMPTS,
        metavar="N",
        help=f"tries per {unit} for 429, 5xx and network errors (default: {MAX_ATTEMPTS})",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"a deadline for each request, answer included (default: {TIMEOUT:g})",
    )


def _undo(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--yes", "-y", action="store_true", help="go ahead without asking")
    p.add_argument(
        "--force",
        action="store_true",
        help="delete or restore a number even if it changed since the batch "
        "(otherwise it is changed_since, left as it is)",
    )


def _ledger(p: argparse.ArgumentParser, command: str) -> None:
    """What the batch's ledger lets a person overrule: the account it was sent to."""
    ledger = p.add_argument_group("the batch's ledger")
    ledger.add_argument(
        "--other-account",
        action="store_true",
        help="go on although the batch was sent to another --base-url or API key"
        + ("" if command == "undo" else " (--resume)"),
    )


def _terminal(p: argparse.ArgumentParser, command: str) -> None:
    out = p.add_argument_group("terminal")
    out.add_argument(
        "--quiet", "-q", action="store_true", help="print only the summary line (and errors)"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar or lines")


def _export(p: argparse.ArgumentParser, command: str) -> None:
    pages = p.add_argument_group("reading the account")
    _pacing(pages, "page")
    pages.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        metavar="N",
        help="connections at most (pages are read one after another: each names the next)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--summary-json", type=Path, metavar="PATH", help="also write the summary as JSON"
    )
    out.add_argument(
        "--log-file", type=Path, metavar="PATH", help="append a start and an end line (for cron)"
    )
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")


def _template(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--force", action="store_true", help="replace OUT even when it already has rows")


def _watch(p: argparse.ArgumentParser, command: str) -> None:
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
    if command != "export":  # an export has no rows to report on
        watch.add_argument(
            "--report",
            type=Path,
            metavar="PATH.html",
            help="write a one-file HTML report at the end",
        )


#: The option groups of each command, in the order its --help shows them.
GROUPS: dict[str, tuple[Group, ...]] = {
    "run": (_input, _output, _api, _sending, _ledger, _watch, _terminal),
    "plan": (_input, _output, _api, _sending, _watch, _terminal),
    "update": (_input, _output, _api, _sending, _ledger, _watch, _terminal),
    "undo": (_undo, _output, _api, _sending, _ledger, _watch, _terminal),
    "export": (_api, _export, _watch),
    "template": (_template,),
}


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
