"""A local emulator of the SigmaMind phone-number API, with injectable faults.

``SandboxConfig`` (faults.py) says how it behaves, ``SandboxApp`` (app.py) is the ASGI
application and its ``SandboxState``, ``SandboxServer`` and ``serve`` (server.py) run it.
"""

from bulk_import.sandbox.app import SandboxApp, SandboxState
from bulk_import.sandbox.faults import Fault, SandboxConfig
from bulk_import.sandbox.server import SandboxServer, serve

__all__ = ["Fault", "SandboxApp", "SandboxConfig", "SandboxServer", "SandboxState", "serve"]
