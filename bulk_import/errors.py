"""Every error bulk-import raises on purpose, in one tree.

Third-party errors (httpx, pandas, python-calamine, pydantic) are caught at the boundary of the
stage that uses the library and re-raised as one of these, ``from`` the original.  Only the
CLI turns them into a message and an exit code (``exit_code`` below)::

    BulkImportError                 base class; .exit_code
    ├── UsageError                  bad options or configuration               exit 2
    ├── InputFileError              the file cannot be read as a table         exit 2
    │   ├── MissingColumnsError     required fields absent from the header     exit 2
    │   └── InputChangedError       the input changed while a run read it      exit 2/3
    ├── LockedError                 another run holds the results file lock    exit 75
    ├── ResultsFileError            the results file or journal can't be used  exit 2
    ├── WriteError                  an output failed mid-run (disk full): stop  exit 3
    ├── ApiError                    the API could not be used at all           exit 3
    │   ├── AuthError               401/403: the API key was rejected          exit 3
    │   ├── UnreachableError        no answer past the retry budget            exit 3
    │   └── TooManyFailures         rows kept failing past the failure limit   exit 3
    ├── ConnectionFailed            one request got no answer (retried; internal)
    └── NotANumberError             no request for a number that is not E.164 (internal)

Row-level problems (a bad cell, a refused request) are never exceptions: they are
results with status ``invalid`` or ``failed``.

Messages name the library's parameters, never command-line flags: an error about one
option sets ``param`` to its name (a ``RunOptions`` field or a function's parameter) and
writes that name in its message, e.g. ``UsageError("concurrency must be at least 1",
param="concurrency")``.  The CLI rewrites the name into its flag (``cli.describe``).
"""

from __future__ import annotations

from .defaults import EXIT_ABORTED, EXIT_ERROR, EXIT_LOCKED, EXIT_USAGE


class BulkImportError(Exception):
    """Base class of every error bulk-import raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: The parameter the error is about (its name is written in ``message``), if any.
        self.param = param

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(BulkImportError):
    """The command line or configuration is wrong; nothing was sent."""

    exit_code = EXIT_USAGE


class InputFileError(BulkImportError):
    """The input file can't be read as a table (missing, unreadable, bad format)."""

    exit_code = EXIT_USAGE


class MissingColumnsError(InputFileError):
    """Required fields are neither in the header nor given a default.

    ``closest`` pairs a missing field with the header most like it (a misspelling, another
    wording): the likely fix is to map that header to the field.
    """

    def __init__(
        self, missing: list[str], found: list[str], closest: dict[str, str] | None = None
    ) -> None:
        self.missing = missing
        self.found = found
        self.closest = dict(closest or {})
        shown = ", ".join(repr(h) for h in found) if found else "(none)"
        others = [name for name in missing if name != "trunkPassword"]
        hints = []
        if self.closest:
            pairs = ", ".join(f"{h!r}: {f!r}" for f, h in self.closest.items())
            hints.append(f"the closest headers: pair them in mapping ({{{pairs}}})")
        if any(name not in self.closest for name in others):
            hints.append(
                "rename the column, pair it with a field in mapping ({'Your Header': "
                "'field'}), or give a value in defaults ({'field': 'value'})"
            )
        if "trunkPassword" in missing and "trunkPassword" not in self.closest:
            hints.append(
                "trunkPassword: add a column, or give one password for every row in defaults"
            )
        super().__init__(
            f"missing required column(s): {', '.join(missing)}; the header has: {shown}",
            hint="; ".join(hints),
        )


class InputChangedError(InputFileError):
    """The input file changed (truncated, appended to, rewritten) while it was read.

    Before anything is sent it is a file error (exit 2); during a run, the run stops
    sending and ends aborted (exit 3), naming the row from which on nothing was read.
    """


class LockedError(BulkImportError):
    """Another run is writing the same results file."""

    exit_code = EXIT_LOCKED


class ResultsFileError(BulkImportError):
    """The results file or its journal can't be created, read or resumed."""

    exit_code = EXIT_USAGE


class WriteError(BulkImportError):
    """An output (journal, results, log, summary) could not be written once the run had
    begun sending (a full disk, an I/O error): the run stops.

    Rows in flight may have been stored without their answer being recorded; their numbers
    stay marked in the journal, so ``--resume`` checks them.  Before the first request
    the same failure is a ``ResultsFileError`` (exit 2: nothing was sent).
    """

    exit_code = EXIT_ABORTED


class ApiError(BulkImportError):
    """The API as a whole can't be used: the run stops."""

    exit_code = EXIT_ABORTED


class AuthError(ApiError):
    """The API rejected the key (401/403)."""


class UnreachableError(ApiError):
    """The API did not answer past the retry budget."""


class TooManyFailures(ApiError):
    """So many rows ended ``failed`` that the run stopped sending (a failure limit)."""


class ConnectionFailed(BulkImportError):
    """One request got no HTTP answer (connect refused, reset, timeout).

    Raised by the API client in place of httpx's transport errors; ``maybe_sent`` is True
    when the request may have reached the API (so it may have been stored).  ``submit``
    retries it; it reaches the CLI only wrapped in ``UnreachableError``.
    """

    exit_code = EXIT_ABORTED

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class NotANumberError(BulkImportError):
    """A request about a number that is not E.164 (``+`` then 7 to 15 digits) was refused
    before it was built: no path is made of it, nothing is sent.

    Raised by the API client; ``submit`` turns it into the row's ``failed`` result.
    """

    exit_code = EXIT_ERROR
