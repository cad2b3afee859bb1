"""The version is written once (``bulk_import.__version__``); the package metadata, the
command line and the API client's User-Agent read it."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import bulk_import

from support import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "bulk_import.__version__"
    }
    assert importlib.metadata.version("bulk-import") == bulk_import.__version__


def test_the_command_line_says_it() -> None:
    done = run_cli("--version")
    assert done.code == 0
    assert done.stdout.strip() == f"bulk-import {bulk_import.__version__}"
