"""Which files a scan reads: source and env files, never vendored code or virtualenvs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from offramp.migrate.scan.sites import SCRIPT_SUFFIXES

PYTHON = (".py",)
SCRIPT = SCRIPT_SUFFIXES
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "site-packages",
        "dist-packages",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "vendor",
        "vendored",
        "third_party",
        "bower_components",
        "dist",
        "build",
        ".next",
        ".nuxt",
    }
)


def is_env_file(name: str) -> bool:
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


def source_files(root: Path) -> Iterator[Path]:
    """Files to scan below ``root`` (or ``root`` itself), in a stable order."""
    if root.is_file():
        yield root
        return
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith(PYTHON + SCRIPT) or is_env_file(name):
                yield here / name
