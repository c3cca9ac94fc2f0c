"""Scanning a tree: each file to its scanner; files that do not parse are reported.

Names imported from another module of the tree into an SDK key or endpoint are resolved
after every file has been read, so a base URL kept in ``config.py`` is reported where it is
written, as the endpoint it is, not as a raw HTTP call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from offramp.migrate.scan.files import PYTHON, SCRIPT, is_env_file, source_files
from offramp.migrate.scan.js_source import scan_js, script_module
from offramp.migrate.scan.origins import FileScan, slot_site
from offramp.migrate.scan.python_source import module_name, scan_python
from offramp.migrate.scan.sites import ScanResult, Site, env_sdk, is_key_var

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=")


def scan(root: Path, overrides: Mapping[Path, str] | None = None) -> ScanResult:
    """Every site below ``root``; paths in the result are relative to it. ``overrides``
    gives the text of some files instead of what is on disk (a planned rewrite)."""
    base = root if root.is_dir() else root.parent
    result = ScanResult(root=str(root))
    python: dict[str, FileScan] = {}
    scripts: dict[str, FileScan] = {}
    for path in source_files(root):
        rel = path.relative_to(base).as_posix()
        result.files_scanned += 1
        try:
            raw = (
                overrides[path].encode("utf-8")
                if overrides and path in overrides
                else path.read_bytes()
            )
        except OSError as exc:
            result.unparsed.append((rel, f"cannot read: {exc.strerror}"))
            continue
        if path.name.endswith(PYTHON):
            try:
                python[module_name(rel)] = scan_python(rel, raw.decode("utf-8", errors="replace"))
            except (SyntaxError, ValueError) as exc:
                result.unparsed.append((rel, f"Python syntax error: {exc}"))
        elif path.name.endswith(SCRIPT):
            found, had_errors = scan_js(rel, raw)
            scripts[script_module(rel)] = found
            if had_errors:
                result.unparsed.append((rel, "syntax errors; scanned the parts that parse"))
        elif is_env_file(path.name):
            result.sites += _env_sites(rel, raw.decode("utf-8", errors="replace"))
    for table in (python, scripts):
        for found in table.values():
            result.sites += found.sites
            result.sites += _resolved(found, table)
    result.sites = _deduplicated(result.sites)
    return result


def _resolved(found: FileScan, table: dict[str, FileScan]) -> list[Site]:
    sites = []
    for ref in found.refs:
        target = table.get(ref.module) or next(
            (scan for name, scan in table.items() if name.endswith("." + ref.module)), None
        )
        origin = target.exports.get(ref.name) if target is not None else None
        site = slot_site(origin, ref.slot, ref.sdk) if origin is not None else None
        if site is not None:
            sites.append(site)
    return sites


def _deduplicated(sites: list[Site]) -> list[Site]:
    """One site per place and kind; a URL or variable that configures a client's endpoint
    is reported as that endpoint only."""
    endpoints = {(s.file, s.line, s.column) for s in sites if s.kind == "endpoint"}
    unique: dict[tuple[str, int, int, str], Site] = {}
    for site in sites:
        key = (site.file, site.line, site.column, site.kind)
        if site.kind in ("raw-http", "api-key-env") and key[:3] in endpoints:
            continue
        unique.setdefault(key, site)
    return sorted(unique.values(), key=lambda s: (s.file, s.line, s.column, s.kind))


def _env_sites(rel: str, text: str) -> list[Site]:
    sites = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ENV_LINE.match(line)
        if match and is_key_var(match.group(1)):
            name = match.group(1)
            sites.append(Site(rel, number, 1, "api-key-env", env_sdk(name), detail=name))
    return sites
