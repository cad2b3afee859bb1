"""A local emulator of the SigmaMind phone-number API, with injectable faults.

``SandboxConfig`` (settings.py) says how it behaves, ``SandboxApp`` (app.py) is the ASGI
application and its ``SandboxState``, ``SandboxServer`` and ``serve`` (server.py) run it.
Loaded lazily: the ``bulk-import`` command imports the web server only when it needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulk_import.sandbox.app import SandboxApp, SandboxState
    from bulk_import.sandbox.server import SandboxServer, serve
    from bulk_import.sandbox.settings import Fault, SandboxConfig

_WHERE = {
    "SandboxApp": "app",
    "SandboxState": "app",
    "Fault": "settings",
    "SandboxConfig": "settings",
    "SandboxServer": "server",
    "serve": "server",
}

__all__ = ["Fault", "SandboxApp", "SandboxConfig", "SandboxServer", "SandboxState", "serve"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
