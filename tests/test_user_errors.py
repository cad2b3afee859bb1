"""Every error a user can cause, for every command: one table, one check.

Each case runs the real command in a child process and must give: no traceback, the
documented exit code (README "Exit codes"), a message that names the fix, nothing sent
to the API when the exit code is 2, and no secret (API key, trunk password, a key given
on the command line) in stdout or stderr.

To cover a new command or a new mistake, add a ``Case`` to ``CASES``: ``argv`` builds the
command line from the ``World`` (files, the sandbox's URL, a busy port), ``env`` changes
the environment, ``says`` is a piece of the message that names the fix.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bulk_import.sandbox import SandboxServer

from support import API_KEY, PASSWORD, cli_env, run_cli, write_numbers

#: A key typed on the command line: it must never be echoed back.
TYPED_KEY = "sk-typed-on-the-command-line-77"


@dataclass
class World:
    """What a case can point at: good and bad files, the sandbox, a port in use."""

    dir: Path
    url: str
    busy_port: int

    @property
    def good(self) -> str:
        return str(self.dir / "good.csv")

    def path(self, name: str) -> str:
        return str(self.dir / name)


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[World], list[str]]
    code: int
    says: str
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset the variable
    holds_lock: bool = False  # another run holds the lock on the good file's results

    def __str__(self) -> str:
        return self.name


def run_(*extra: str, file: str = "good.csv") -> Callable[[World], list[str]]:
    """``bulk-import run FILE --base-url <sandbox> EXTRA...``."""
    return lambda w: ["run", w.path(file), "--base-url", w.url, "--no-progress", *extra]


def sandbox_(*extra: str) -> Callable[[World], list[str]]:
    return lambda w: ["sandbox", *extra]


CASES = [
    # -- the command line as a whole
    Case("no command", lambda w: [], 2, "required: COMMAND"),
    Case("unknown command", lambda w: ["imprt"], 2, "invalid choice: 'imprt'"),
    # -- run: the input file
    Case("missing file", run_(file="nope.csv"), 2, "no such file (check the path)"),
    Case("file is a directory", run_(file="dir.csv"), 2, "is a directory"),
    Case("unsupported type", run_(file="f.pdf"), 2, "bulk-import reads .csv"),
    Case("empty file", run_(file="empty.csv"), 2, "the first row must name the columns"),
    Case("missing columns", run_(file="cols.csv"), 2, "--map 'Your Header=field'"),
    Case("no password column", run_(file="nopw.csv"), 2, "--trunk-password-env VAR"),
    # -- run: the API key
    Case("no API key", run_(), 2, "SIGMAMIND_API_KEY", env={"SIGMAMIND_API_KEY": None}),
    Case("--api-key VALUE", run_("--api-key", TYPED_KEY), 2, "--api-key-file PATH"),
    Case("--api-key=VALUE", run_(f"--api-key={TYPED_KEY}"), 2, "SIGMAMIND_API_KEY"),
    Case("--api-key -VALUE", run_("--api-key", f"-{TYPED_KEY}"), 2, "SIGMAMIND_API_KEY"),
    Case("mistyped key flag", run_("--api-keyfile", TYPED_KEY), 2, "arguments: --api-keyfile"),
    Case("abbreviated flag", run_("--api-key-f", "key.txt"), 2, "unrecognized arguments"),
    Case("key file missing", run_("--api-key-file", "/nonexistent/k"), 2, "a file you can read"),
    Case(
        "key file is a dir",
        lambda w: [*run_()(w), "--api-key-file", w.path("dir.csv")],
        2,
        "a file you can read",
    ),
    Case(
        "key file empty",
        lambda w: [*run_()(w), "--api-key-file", w.path("empty.txt")],
        2,
        "on its first line",
    ),
    Case(
        "key file not text",
        lambda w: [*run_()(w), "--api-key-file", w.path("binary.txt")],
        2,
        "save it as UTF-8",
    ),
    Case("wrong key", run_(), 3, "SIGMAMIND_API_KEY", env={"SIGMAMIND_API_KEY": "wrong-key"}),
    # -- run: trunk passwords and defaults
    Case(
        "password env unset",
        run_("--trunk-password-env", "NO_SUCH_VAR_X"),
        2,
        "NO_SUCH_VAR_X: that environment variable is not set",
    ),
    Case(
        "password file missing",
        run_("--trunk-password-file", "/nonexistent/pw"),
        2,
        "a file you can read",
    ),
    Case(
        "password env and file",
        run_("--trunk-password-env", "X", "--trunk-password-file", "pw"),
        2,
        "not both",
    ),
    Case(
        "--default trunkPassword",
        run_("--default", f"trunkPassword={PASSWORD}"),
        2,
        "--trunk-password-env VAR",
    ),
    Case("--default unknown field", run_("--default", "colour=red"), 2, "fields: phoneNumber"),
    Case("--default without =", run_("--default", "trunkUsername"), 2, "'field=value'"),
    Case("--map without =", run_("--map", "Number"), 2, "'Header=field'"),
    Case("unknown region", run_("--default-region", "XX"), 2, "such as US, GB or DE"),
    # -- run: numbers out of range
    Case("--concurrency 0", run_("--concurrency", "0"), 2, "between 1 and 1000"),
    Case("--concurrency 3000000", run_("--concurrency", "3000000"), 2, "between 1 and 1000"),
    Case("--concurrency abc", run_("--concurrency", "abc"), 2, "argument --concurrency"),
    Case("--rate nan", run_("--rate", "nan"), 2, "above 0"),
    Case("--rate inf", run_("--rate", "inf"), 2, "leave --rate out for no limit"),
    Case("--rate 0", run_("--rate", "0"), 2, "above 0"),
    Case("--timeout inf", run_("--timeout", "inf"), 2, "seconds above 0"),
    Case("--timeout nan", run_("--timeout", "nan"), 2, "seconds above 0"),
    Case("--timeout 0", run_("--timeout", "0"), 2, "seconds above 0"),
    Case("--max-attempts 0", run_("--max-attempts", "0"), 2, "at least 1"),
    Case("--encoding rot13", run_("--encoding", "rot13"), 2, "e.g. utf-8"),
    Case("--encoding unknown", run_("--encoding", "klingon"), 2, "e.g. utf-8"),
    Case("--on-existing bogus", run_("--on-existing", "bogus"), 2, "choose from 'skip'"),
    # -- run: where it sends and writes
    Case("not an http URL", lambda w: ["run", w.good, "--base-url", "ftp://x"], 2, "http(s)"),
    Case(
        "plain http elsewhere",
        lambda w: ["run", w.good, "--base-url", "http://example.com"],
        2,
        "use https",
    ),
    Case(
        "output is the input",
        lambda w: [*run_()(w), "--output", w.good],
        2,
        "is the input file",
    ),
    Case(
        "output dir missing",
        run_("--output", "/nonexistent/r.csv"),
        2,
        "choose another path for --output",
    ),
    Case("results file locked", run_(), 75, "choose another --output", holds_lock=True),
    # -- sandbox
    Case(
        "sandbox port busy",
        lambda w: ["sandbox", "--port", str(w.busy_port)],
        2,
        "choose another --port",
    ),
    Case("sandbox port out of range", sandbox_("--port", "70000"), 2, "between 0 and 65535"),
    Case("sandbox --rate nan", sandbox_("--rate", "nan"), 2, "must be finite"),
    Case("sandbox fault rate", sandbox_("--fail-rate", "2"), 2, "in [0, 1]"),
    Case("sandbox abbreviation", sandbox_("--api-k", "x"), 2, "unrecognized arguments"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("mistakes")
    write_numbers(d / "good.csv", 3)
    (d / "dir.csv").mkdir()
    (d / "f.pdf").write_text("%PDF-1.4\n")
    (d / "empty.csv").write_text("")
    (d / "cols.csv").write_text("a,b\n1,2\n")
    (d / "nopw.csv").write_text("phoneNumber,trunkUsername,terminationSipURI\n")
    (d / "empty.txt").write_text("\n")
    (d / "binary.txt").write_bytes(b"\xff\xfe\x00k\x00e\x00y\xff")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield World(d, "", busy.getsockname()[1])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_user_error_gets_a_message_and_its_exit_code(
    case: Case, world: World, sandbox_factory: Callable[..., SandboxServer]
) -> None:
    api = sandbox_factory(api_key=API_KEY)
    world.url = api.url
    env = cli_env()
    for name, value in case.env.items():
        env.pop(name, None) if value is None else env.__setitem__(name, value)
    lock = Path(world.good).with_name("good.results.csv.lock")
    holder = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600) if case.holds_lock else None
    try:
        if holder is not None:
            fcntl.flock(holder, fcntl.LOCK_EX)
        done = run_cli(*case.argv(world), env=env, timeout=60)
    finally:
        if holder is not None:
            os.close(holder)
            lock.unlink()
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    assert done.code == case.code, out
    assert case.says in done.stderr, done.stderr
    if case.code == 2:
        assert api.state.requests == 0, f"sent {api.state.requests} request(s) with exit 2"
    for secret in (API_KEY, PASSWORD, TYPED_KEY):
        assert secret not in out, f"{secret[:5]}... is in the output"
