"""Adding ``import os`` / ``import openai`` where an import sorter would put it: in its
section (standard library, then third party), in alphabetical order, sections apart by one
blank line, so a tree that passed ruff's import rules still does."""

from __future__ import annotations

import sys

import libcst as cst

_Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement


def add_import(module: cst.Module, name: str) -> cst.Module:
    """``module`` with ``import NAME`` added, unless it already has it."""
    body: list[_Statement] = list(module.body)
    header = _header(body)
    if any(_plain(body[i]) == name for i in header):
        return module
    stdlib = name in sys.stdlib_module_names
    same = [i for i in header if _section(body[i]) == stdlib and _root(body[i]) != "__future__"]
    plain = [i for i in same if _plain(body[i])]
    new = cst.SimpleStatementLine([cst.Import([cst.ImportAlias(cst.Name(name))])])
    later = [i for i in plain if (_plain(body[i]) or "").lower() > name]
    if later:
        at = later[0]
    elif plain:
        at = plain[-1] + 1
    elif same:
        at = same[0]
    else:
        return _new_section(module, body, header, new, stdlib)
    if at < len(body) and at in same and at == same[0]:
        new = new.with_changes(leading_lines=body[at].leading_lines)
        body[at] = body[at].with_changes(leading_lines=[])
    body.insert(at, new)
    return module.with_changes(body=body)


def _new_section(
    module: cst.Module,
    body: list[_Statement],
    header: list[int],
    new: cst.SimpleStatementLine,
    stdlib: bool,
) -> cst.Module:
    """A section of its own: the standard library goes before the other imports."""
    future = [i for i in header if _root(body[i]) == "__future__"]
    others = [i for i in header if _root(body[i]) != "__future__"]
    if stdlib and others:
        at = others[0]
        new = new.with_changes(leading_lines=body[at].leading_lines)
        body[at] = body[at].with_changes(leading_lines=[cst.EmptyLine()])
    else:
        at = (others[-1] + 1) if others else (future[-1] + 1 if future else _after_docstring(body))
        new = new.with_changes(leading_lines=[cst.EmptyLine()] if at > 0 else [])
        if at < len(body) and not body[at].leading_lines:
            body[at] = body[at].with_changes(leading_lines=[cst.EmptyLine()])
    body.insert(at, new)
    return module.with_changes(body=body)


def _header(body: list[_Statement]) -> list[int]:
    """Indexes of the module's leading import statements (after a docstring)."""
    out = []
    for i, stmt in enumerate(body):
        if i == 0 and _is_docstring(stmt):
            continue
        if isinstance(stmt, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Import | cst.ImportFrom) for s in stmt.body
        ):
            out.append(i)
        else:
            break
    return out


def _after_docstring(body: list[_Statement]) -> int:
    return 1 if body and _is_docstring(body[0]) else 0


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _root(stmt: cst.BaseStatement) -> str:
    if not isinstance(stmt, cst.SimpleStatementLine):
        return ""
    node = stmt.body[0]
    if isinstance(node, cst.Import):
        return _dotted(node.names[0].name).split(".")[0]
    if isinstance(node, cst.ImportFrom) and node.module is not None and not node.relative:
        return _dotted(node.module).split(".")[0]
    return ""


def _plain(stmt: cst.BaseStatement) -> str | None:
    """The module of a plain ``import X`` statement, else None."""
    if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Import):
        return _dotted(stmt.body[0].names[0].name)
    return None


def _section(stmt: cst.BaseStatement) -> bool:
    """True for the standard library section."""
    return _root(stmt) in sys.stdlib_module_names


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""
