"""bulk-import: import BYO phone numbers from a spreadsheet into SigmaMind, exactly once.

The stages, one module each::

    load -> validate -> submit -> record        runner wires them; cli parses flags

The public, callable surface is re-exported here (docs/contract.md, "Python API")::

    from bulk_import import RunOptions, run_import
    summary = run_import(RunOptions(file=Path("numbers.csv"), api_key=key, rate=50))

It prints nothing, shows no progress bar, installs no signal handler and reads no
environment variable unless asked.  Importing it is cheap: each name is loaded from its
module the first time it is used (the error classes are loaded at once).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import (
    ApiError,
    AuthError,
    BulkImportError,
    ConnectionFailed,
    InputChangedError,
    InputFileError,
    LockedError,
    MissingColumnsError,
    NotANumberError,
    ResultsFileError,
    TooManyFailures,
    UnreachableError,
    UsageError,
    WriteError,
)

if TYPE_CHECKING:
    from .commands import (
        aexport,
        aplan,
        aundo,
        aupdate,
        export,
        plan,
        template,
        undo,
        update,
    )
    from .models import FailureLimit, RowResult, Status
    from .record import Summary
    from .runner import RunOptions, arun_import, run_import
    from .sandbox import SandboxConfig, SandboxServer
    from .spreadsheet import ExportOptions

__version__ = "0.1.0"

# A library's log records go where its caller's logging sends them; without any setup,
# nowhere (not Python's last-resort handler on stderr).  The CLI adds its own handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())

_WHERE = {
    "run_import": "runner",
    "arun_import": "runner",
    "RunOptions": "runner",
    "Summary": "record",
    "RowResult": "models",
    "Status": "models",
    "FailureLimit": "models",
    "plan": "commands",
    "aplan": "commands",
    "update": "commands",
    "aupdate": "commands",
    "undo": "commands",
    "aundo": "commands",
    "export": "commands",
    "aexport": "commands",
    "template": "commands",
    "ExportOptions": "spreadsheet",
    "SandboxServer": "sandbox",
    "SandboxConfig": "sandbox",
}

__all__ = [
    "ApiError",
    "AuthError",
    "BulkImportError",
    "ConnectionFailed",
    "ExportOptions",
    "FailureLimit",
    "InputChangedError",
    "InputFileError",
    "LockedError",
    "MissingColumnsError",
    "NotANumberError",
    "ResultsFileError",
    "RowResult",
    "RunOptions",
    "SandboxConfig",
    "SandboxServer",
    "Status",
    "Summary",
    "TooManyFailures",
    "UnreachableError",
    "UsageError",
    "WriteError",
    "__version__",
    "aexport",
    "aplan",
    "arun_import",
    "aundo",
    "aupdate",
    "export",
    "plan",
    "run_import",
    "template",
    "undo",
    "update",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
