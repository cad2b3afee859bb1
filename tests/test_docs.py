"""The README and the command line name the same options (docs/contract.md: the command line).

Every option any command's ``--help`` lists is explained in the README, and every
``--option`` the README shows is one the tool has (or one of the few other tools' flags it
quotes, listed below).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bulk_import.cli import build_parser

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
