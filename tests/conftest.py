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


#: Test modules whose CSV inputs are also read by both of the dry run's CSV readers.
_CSV_CORPUS_MODULES = {"test_load", "test_bad_files", "test_sheets", "test_dry_run", "test_csvfast"}


@pytest.fixture(autouse=True)
def _csv_readers_agree(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test of a corpus module, every CSV file it left in ``tmp_path`` gives the
    same results file through pandas' reader and the stdlib one (tests/readers.py)."""
    module = request.module.__name__.rpartition(".")[2]
    if module not in _CSV_CORPUS_MODULES or "tmp_path" not in request.fixturenames:
        yield
        return
    from readers import CSV_SUFFIXES, check_both_readers

    tmp_path = request.getfixturevalue("tmp_path")  # set up now, so torn down after this
    yield
    scratch = tmp_path / ".readers"
    for path in sorted(tmp_path.rglob("*")):
        if path.suffix.lower() in CSV_SUFFIXES and path.is_file() and scratch not in path.parents:
            scratch.mkdir(exist_ok=True)
            check_both_readers(path, scratch)
