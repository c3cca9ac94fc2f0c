"""What a Python rewrite changes: the scan's sites as positions in the source."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field

from offramp.migrate.rewrite.endpoints import for_url
from offramp.migrate.scan.sites import Sdk, Site


@dataclass
class Targets:
    """Where the scan found something to change, by (line, column)."""

    endpoints: dict[tuple[int, int], Sdk] = field(default_factory=dict)
    raw: set[tuple[int, int]] = field(default_factory=set)
    clients: dict[tuple[int, int], Sdk] = field(default_factory=dict)
    wrappers: set[tuple[int, int]] = field(default_factory=set)  # LangChain Azure classes
    legacy: set[tuple[int, int]] = field(default_factory=set)
    as_dict: set[tuple[int, int]] = field(default_factory=set)


def find_targets(source: str, sites: Sequence[Site]) -> Targets:
    """The positions a rewrite changes, from the scan's sites in ``source``."""
    t = Targets()
    for site in sites:
        # ast columns count from 0; scan columns from 1. libcst's are ast's.
        where = (site.line, site.column - 1)
        if site.kind == "endpoint" and not site.env:
            t.endpoints[where] = site.sdk
        elif site.kind == "raw-http" and for_url(site.detail) is not None:
            t.raw.add(where)
        elif site.kind == "client" and site.needs_change:
            t.clients[where] = site.sdk
        elif site.kind == "legacy-call":
            t.legacy.add(where)
        elif site.kind == "wrapper" and site.sdk == "azure-openai":
            t.wrappers.add(where)
    if t.legacy:
        t.as_dict = _read_as_dict(source, t.legacy)
    return t


def _read_as_dict(source: str, calls: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Pre-1.0 answers were dicts: the calls whose answer the code indexes by key."""
    tree = ast.parse(source)
    parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}

    def scope_of(node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
            node = parents[id(node)]
        return node

    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (node.lineno, node.col_offset) not in calls:
            continue
        if any(k.arg == "stream" for k in node.keywords):
            continue
        outer: ast.AST = node
        parent = parents.get(id(outer))
        if isinstance(parent, ast.Await):
            outer, parent = parent, parents.get(id(parent))
        if isinstance(parent, ast.Subscript) and parent.value is outer:
            found.add((node.lineno, node.col_offset))
        elif isinstance(parent, ast.Assign) and isinstance(parent.targets[0], ast.Name):
            name = parent.targets[0].id
            scope = scope_of(node)
            if any(
                isinstance(s, ast.Subscript)
                and isinstance(s.value, ast.Name)
                and s.value.id == name
                and isinstance(s.slice, ast.Constant)
                and isinstance(s.slice.value, str)
                for s in ast.walk(scope)
            ):
                found.add((node.lineno, node.col_offset))
    return found
