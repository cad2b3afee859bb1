"""Shared fixtures: the API sandbox served over real loopback HTTP.

- ``sandbox``: a ``SandboxServer`` with the default ``SandboxConfig`` (key
  ``sandbox-key``, no rate limit, no latency, no faults), emptied before each test.  One
  server serves the whole session, so it costs nothing per test.
- ``sandbox_factory(**config)``: starts a fresh ``SandboxServer`` with
  ``SandboxConfig(**config)`` (plus ``port=`` if given); call it as often as needed,
  every server is stopped at teardown.
- ``hostile``: a ``HostileServer`` for the answers the sandbox won't give (odd types, deep
  JSON, trickled or huge bodies, echoed secrets, another number in a 2xx).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hostile_server import HostileServer

from bulk_import.sandbox import SandboxConfig, SandboxServer

SandboxFactory = Callable[..., SandboxServer]


@pytest.fixture(scope="session")
def _shared_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig()) as server:
        yield server


@pytest.fixture
def sandbox(_shared_sandbox: SandboxServer) -> SandboxServer:
    """The default sandbox, with no numbers and zeroed counters."""
    _shared_sandbox.state.reset()
    return _shared_sandbox


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """``sandbox_factory(rate=5, fail_rate=0.5, ...)`` -> a running ``SandboxServer``."""
    servers: list[SandboxServer] = []

    def start(*, port: int = 0, **config: Any) -> SandboxServer:
        server = SandboxServer(SandboxConfig(**config), port=port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A ``HostileServer`` (tests/hostile_server.py) answering well until a test sets
    ``hostile.answer`` to one of that module's hostile answers."""
    with HostileServer() as server:
        yield server
