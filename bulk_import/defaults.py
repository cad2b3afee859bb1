"""defaults: every default and limit that more than one module uses, written once.

The CLI's flags, ``RunOptions``, ``SubmitOptions``, ``RetryPolicy``, ``ExportOptions`` and
the HTTP client read their defaults here; the exit codes are the ones docs/contract.md
("Outcome") lists.
"""

from __future__ import annotations

#: Requests in flight at once.
CONCURRENCY = 8
#: The most requests in flight a run allows: each one holds a connection and a task, and
#: no API serves one client more usefully than this.
MAX_CONCURRENCY = 1000
#: Tries per request (the first one included) for 429, 5xx and network errors.
MAX_ATTEMPTS = 5
#: Seconds one request may take.
TIMEOUT = 30.0

#: Exit codes (docs/contract.md, "Outcome").
EXIT_OK = 0  # every row done
EXIT_ROWS = 1  # some rows invalid, failed or not attempted
EXIT_ERROR = 1  # an error of no other kind (a bug, reported in one line)
EXIT_USAGE = 2  # bad options, input file or results file
EXIT_ABORTED = 3  # the API could not be used, or too many rows failed
EXIT_LOCKED = 75  # another run holds the results file
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C or a signal
