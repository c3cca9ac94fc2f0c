"""Scanning a tree: each file to its scanner; files that do not parse are reported."""

from __future__ import annotations

import re
from pathlib import Path

from offramp.migrate.scan.files import PYTHON, SCRIPT, is_env_file, source_files
from offramp.migrate.scan.js_source import scan_js
from offramp.migrate.scan.python_source import scan_python
from offramp.migrate.scan.sites import KEY_VARS, ScanResult, Site, env_sdk

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=")


def scan(root: Path) -> ScanResult:
    """Every site below ``root``; paths in the result are relative to it."""
    base = root if root.is_dir() else root.parent
    result = ScanResult(root=str(root))
    for path in source_files(root):
        rel = path.relative_to(base).as_posix()
        result.files_scanned += 1
        try:
            raw = path.read_bytes()
        except OSError as exc:
            result.unparsed.append((rel, f"cannot read: {exc.strerror}"))
            continue
        if path.name.endswith(PYTHON):
            try:
                result.sites += scan_python(rel, raw.decode("utf-8", errors="replace"))
            except (SyntaxError, ValueError) as exc:
                result.unparsed.append((rel, f"Python syntax error: {exc}"))
        elif path.name.endswith(SCRIPT):
            sites, had_errors = scan_js(rel, raw)
            result.sites += sites
            if had_errors:
                result.unparsed.append((rel, "syntax errors; scanned the parts that parse"))
        elif is_env_file(path.name):
            result.sites += _env_sites(rel, raw.decode("utf-8", errors="replace"))
    result.sites.sort(key=lambda s: (s.file, s.line, s.column, s.kind))
    return result


def _env_sites(rel: str, text: str) -> list[Site]:
    sites = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ENV_LINE.match(line)
        if match and match.group(1) in KEY_VARS:
            name = match.group(1)
            sites.append(Site(rel, number, 1, "api-key-env", env_sdk(name), detail=name))
    return sites
