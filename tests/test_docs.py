"""The README and the command line name the same options (docs/contract.md: the command line).

Every option any command's ``--help`` lists is explained in the README, and every
``--option`` the README shows is one the tool has (or one of the few other tools' flags it
quotes, listed below).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from bulk_import.cli import build_parser

from support import run_cli

ROOT = Path(__file__).resolve().parent.parent
#: Flags of other programs that the README quotes (pip, ruff, pytest, benchmarks/report.py,
#: node_exporter).
OTHER_TOOLS = {"--upgrade", "--check", "--cov", "--png", "--collector"}
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _cli_options() -> dict[str, set[str]]:
    """Every long option of every command: option -> the commands that have it."""
    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, command: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, name)
            for option in action.option_strings:
                if option.startswith("--"):
                    found.setdefault(option, set()).add(command)

    walk(build_parser(), "bulk-import")
    return found


def _readme_options() -> set[str]:
    return set(_OPTION.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def test_every_option_in_help_is_in_the_readme() -> None:
    missing = {o: sorted(c) for o, c in _cli_options().items() if o not in _readme_options()}
    assert not missing, f"options the README does not explain: {missing}"


def test_every_option_in_the_readme_exists() -> None:
    unknown = _readme_options() - set(_cli_options()) - OTHER_TOOLS
    assert not unknown, f"the README names options no command has: {sorted(unknown)}"


def test_the_walk_finds_options_of_subcommands() -> None:
    options = _cli_options()
    assert "run" in options["--dry-run"]
    assert "sandbox" in options["--rate-style"]
    assert len(options) > 40


# -- each command's --help: only what it uses, its own defaults, an example ------------------

COMMANDS = ("run", "plan", "update", "undo", "export", "template", "sandbox")


def _help(command: str) -> str:
    done = run_cli(command, "--help")
    assert done.code == 0, done.stderr
    return done.stdout


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--")}


def test_every_command_is_in_the_parser_and_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert set(_subparsers()) == set(COMMANDS)
    for command in COMMANDS:
        assert f"bulk-import {command} " in readme, command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_an_example_that_parses(command: str) -> None:
    text = _help(command).replace("\\\n", " ")
    assert "example" in text, text
    examples = [
        line.strip()
        for line in text.split("example", 1)[1].splitlines()
        if line.strip().startswith("bulk-import ")
    ]
    assert examples, text
    for line in examples:
        assert _parses(line), line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_a_command_says_what_it_does(command: str) -> None:
    parser = _subparsers()[command]
    bare = [
        a.option_strings
        for a in parser._actions
        if a.option_strings and a.help is None  # argparse.SUPPRESS hides on purpose
    ]
    assert not bare, f"{command}: options without a description: {bare}"


def _output_help(command: str) -> str:
    return _help(command).split("\n  --output", 1)[1].split("\n  --", 1)[0]


def test_plan_and_undo_say_their_own_output_defaults() -> None:
    assert ".plan.csv" in _output_help("plan")
    assert ".undo.csv" in _output_help("undo")
    assert ".results.csv" in _output_help("run")


def test_each_command_lists_only_what_it_uses() -> None:
    sub = _subparsers()
    assert "--dry-run" not in _options_of(sub["plan"])
    assert not {"--sheet", "--map", "--default-region", "--default", "--header-row"} & _options_of(
        sub["undo"]
    )
    assert "--on-existing" not in _options_of(sub["undo"])
    assert _options_of(sub["template"]) <= {"--help", "--force"}
    # export reads pages one after another: none of the row options, but run's connection
    # and output options that apply
    assert not {"--on-existing", "--resume", "--dry-run", "--map"} & _options_of(sub["export"])
    assert {"--concurrency", "--summary-json", "--log-file", "--no-progress"} <= _options_of(
        sub["export"]
    )
    for flags in (("plan", "x.csv", "--dry-run"), ("undo", "x.results.csv", "--sheet", "S")):
        done = run_cli(*flags)
        assert done.code == 2, (flags, done.stderr)


def _parses(line: str) -> bool:
    """A README or --help command line, as the tool's parser reads it (no file is read)."""
    words = shlex.split(line.split("#", 1)[0].replace("\\\n", " "))
    assert words[0] == "bulk-import"
    words = [w.replace("$BASE", "http://127.0.0.1:8080").split("|")[0] for w in words[1:]]
    parser = build_parser()
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(words)
    except SystemExit as exc:
        return exc.code == 0  # --help
    return True


def test_every_command_line_in_the_readme_parses() -> None:
    """Each ``bulk-import ...`` line the README shows is one the tool accepts."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [
        m.group(0)
        for m in re.finditer(
            r"(?<![\w/.-])bulk-import (?:run|plan|update|undo|export|template|sandbox)[^\n`]*", text
        )
    ]
    assert len(lines) > 10
    bad = [line for line in lines if not _parses(line)]
    assert not bad, bad
