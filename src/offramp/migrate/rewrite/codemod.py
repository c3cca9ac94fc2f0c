"""Planning a migration: scan the tree, rewrite each file that needs it, and say what is
left to configuration (an environment variable) or to people.

The rewrite is driven by the scan: a site the scan says needs a code change is rewritten
where the rewriters know how; a site that only needs configuration is left alone and
reported with the variable to set. A file that does not parse is never touched.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from offramp.migrate.rewrite.js_rewrite import rewrite_script
from offramp.migrate.rewrite.plan import FileChange, Note, Plan
from offramp.migrate.rewrite.python_rewrite import rewrite_python
from offramp.migrate.scan.files import PYTHON, SCRIPT
from offramp.migrate.scan.scanner import scan
from offramp.migrate.scan.sites import ScanResult, Site


def plan_migration(root: Path) -> Plan:
    """What ``offramp migrate`` would change below ``root`` (nothing is written)."""
    result = scan(root)
    base = root if root.is_dir() else root.parent
    unparsed = {file for file, _ in result.unparsed}
    by_file: dict[str, list[Site]] = defaultdict(list)
    for site in result.sites:
        by_file[site.file].append(site)
    plan = Plan()
    for rel, sites in sorted(by_file.items()):
        if not any(s.needs_change for s in sites) or rel in unparsed:
            continue
        path = base / rel
        before = path.read_text(encoding="utf-8")
        if rel.endswith(PYTHON):
            after, notes = rewrite_python(rel, before, sites)
        elif rel.endswith(SCRIPT):
            after, notes = rewrite_script(rel, before, sites)
        else:
            continue
        plan.notes += notes
        if after != before:
            plan.changes.append(FileChange(path, rel, before, after))
    plan.notes += _configuration_notes(result)
    return plan


def left_for_people(root: Path, plan: Plan) -> list[Note]:
    """Sites still needing a code change once the plan is applied (scanned as rewritten,
    whether or not it has been written)."""
    after = scan(root, {change.path: change.after for change in plan.changes})
    return [Note(s.file, s.line, "by-hand", f"{s.kind}: {s.change}") for s in after.blocking]


def _configuration_notes(result: ScanResult) -> list[Note]:
    notes = []
    seen = set()
    for site in result.sites:
        if site.needs_change or not site.change.startswith("already configurable"):
            continue
        if site.sdk in ("azure-openai", "anthropic-bedrock", "anthropic-vertex"):
            continue  # their clients are rewritten, or left for people
        text = site.change.removeprefix("already configurable: ")
        if (site.file, site.line, text) not in seen:
            seen.add((site.file, site.line, text))
            notes.append(Note(site.file, site.line, "configure", text))
    return notes
