"""The README from the top, as a new user follows it on a fresh clone.

Every indented shell block after a ``<!-- walkthrough ... -->`` line of README.md is run,
in order, in a copy of the clone's ``samples/`` (so the repository itself is never
written), with ``bulk-import`` (and ``.venv/bin/bulk-import``) being this checkout's
command.  What each line's ``# comment`` claims is checked against what it did:

- ``N status`` pairs (``17 imported, 3 invalid``) against the results file it wrote;
- ``N numbers`` against the count an export printed;
- ``(exit N)`` against its exit code (without one, the line must exit 0 or 1).

Lines the test handles itself: the install (``python3 -m venv``, ``pip install``: the
test runs inside that install already), ``export NAME=value ...`` (the environment of the
lines after it), ``bulk-import sandbox`` (served on a free port; ``BASE``'s port is
replaced by it), and the ``#   edit account.csv`` step (a friendly name, as it says).
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bulk_import.models import Status

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARK = "<!-- walkthrough"
STATUSES = "|".join(sorted((s.value for s in Status), key=len, reverse=True))
CLAIM = re.compile(rf"\b(\d+) ({STATUSES})\b")
NUMBERS = re.compile(r"\b(\d+) numbers\b")
EXIT = re.compile(r"\(exit (\d+)\)")
VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")
RESULTS = re.compile(r"(?:results|plan): (\S+) \(exit")


def blocks(text: str) -> list[list[str]]:
    """The indented code blocks that follow each walkthrough mark, as lines."""
    found: list[list[str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(MARK):
            continue
        block: list[str] = []
        for after in lines[i + 1 :]:
            if after.startswith("    "):
                block.append(after[4:])
            elif after.strip() and block:
                break
            elif after.strip():
                raise AssertionError(f"a walkthrough mark not followed by a block: {line}")
        found.append(block)
    return found


@dataclass
class Walk:
    """The state of the walk: where it runs, its environment, the sandbox it started."""

    where: Path
    env: dict[str, str]
    sandbox: subprocess.Popen[str] | None = None
    port: str | None = None
    ran: list[str] = field(default_factory=list)

    def shell_words(self, line: str) -> list[str]:
        """The line's words, ``$NAME`` replaced from the walk's environment (as a shell)."""

        def value(m: re.Match[str]) -> str:
            return self.env.get(m[1] or m[2], "")

        return [VARIABLE.sub(value, w) for w in shlex.split(line, comments=True)]


def _shim(bindir: Path) -> None:
    """``bulk-import`` on PATH as this checkout's command (the venv's script, in effect)."""
    bindir.mkdir()
    script = bindir / "bulk-import"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bulk_import "$@"\n')
    script.chmod(0o755)


def _counts(path: Path) -> Counter[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return Counter(row["status"] for row in csv.DictReader(f))


def _edit_account(path: Path) -> None:
    """The README's "edit account.csv: a friendly name (SF Sales -> SF Sales HQ)"."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["friendlyName"] == "SF Sales", rows[0]
    rows[0]["friendlyName"] = "SF Sales HQ"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _start_sandbox(walk: Walk, words: list[str]) -> None:
    assert walk.sandbox is None, "one sandbox at a time"
    args = list(words[1:])
    if "--port" in args:
        walk.port = args[args.index("--port") + 1]
        args[args.index("--port") + 1] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_import", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=walk.where,
        env=walk.env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
    assert match, first
    walk.sandbox = proc
    walk.env["_WALK_PORT"] = match[1]


def _export(walk: Walk, words: list[str]) -> None:
    for word in words[1:]:
        name, _, value = word.partition("=")
        if walk.port and walk.env.get("_WALK_PORT"):
            value = value.replace(f":{walk.port}", f":{walk.env['_WALK_PORT']}")
        walk.env[name] = value


def _run_line(walk: Walk, line: str) -> None:
    comment = line.split("#", 1)[1] if "#" in line else ""
    command = line.split("#", 1)[0].strip()
    parts = [p.strip() for p in command.split("&&")]
    install = [p for p in parts if p.startswith(("python3 -m venv", ".venv/bin/pip install"))]
    parts = [p for p in parts if p not in install]
    for part in parts:
        words = walk.shell_words(part)
        if words[0] == ".venv/bin/bulk-import":
            words[0] = "bulk-import"
        if words[0] == "export":
            _export(walk, words)
            continue
        assert words[0] == "bulk-import", line
        if words[1] == "sandbox":
            _start_sandbox(walk, words)
            continue
        done = subprocess.run(
            words, cwd=walk.where, env=walk.env, capture_output=True, text=True, timeout=120
        )
        walk.ran.append(part)
        _check(walk, line, comment, done)


def _check(walk: Walk, line: str, comment: str, done: subprocess.CompletedProcess[str]) -> None:
    said = EXIT.search(comment)
    if said:
        assert done.returncode == int(said[1]), (line, done.stderr)
    else:
        assert done.returncode in (0, 1), (line, done.stderr)
    assert "Traceback" not in done.stderr
    claims = CLAIM.findall(comment)
    if claims:
        named = RESULTS.search(done.stderr)
        assert named, (line, done.stderr)
        counts = _counts(walk.where / named[1])
        for n, status in claims:
            assert counts[status] == int(n), (line, status, dict(counts))
    numbers = NUMBERS.search(comment)
    if numbers:
        assert f"exported {numbers[1]} number(s)" in done.stderr, (line, done.stderr)


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    for made in (tmp_path / "samples").glob("*.results.*"):
        made.unlink()  # a fresh clone has none
    _shim(tmp_path / "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMAMIND_")}
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    state = Walk(tmp_path, env)
    yield state
    if state.sandbox is not None:
        state.sandbox.terminate()
        state.sandbox.communicate(timeout=10)


def test_the_readme_walkthrough_does_what_it_says(walk: Walk) -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    assert len(found) >= 3
    for block in found:
        for line in block:
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                if text.lstrip("# ").startswith("edit account.csv"):
                    _edit_account(walk.where / "account.csv")
                continue
            _run_line(walk, text)
    ran = " | ".join(walk.ran)
    for command in ("run", "plan", "export", "update", "undo", "template"):
        assert f"bulk-import {command} " in ran, command


def test_bulk_import_is_put_on_path_before_the_readme_first_says_it_bare() -> None:
    """The README tells how to get ``bulk-import`` on PATH before its first bare use."""
    text = README.read_text(encoding="utf-8")
    bare = re.search(r"^    bulk-import ", text, re.MULTILINE)
    assert bare, "no bare bulk-import command"
    before = text[: bare.start()]
    assert ". .venv/bin/activate" in before
    assert ".venv/bin/bulk-import" in before


def test_the_readme_python_example_runs_against_a_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_factory: Any
) -> None:
    """The Python API example, with the ``base_url`` it shows, against the sandbox."""
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'base_url: str = "https://api.sigmamind.ai"' in code
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    api = sandbox_factory(api_key="k-readme")
    shutil.copy(ROOT / "samples" / "phone_numbers.csv", tmp_path / "inbox.csv")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match=r"3 row\(s\) not done"):
        namespace["nightly_import"]("k-readme", api.url)
    assert _counts(tmp_path / "inbox.results.csv") == Counter({"imported": 17, "invalid": 3})
