"""Static analysis of JavaScript and TypeScript with tree-sitter: syntax errors (the
parser's ERROR and MISSING nodes), size metrics and per-function cyclomatic complexity."""

from __future__ import annotations

from typing import Any

_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "function_expression",
        "function",
        "arrow_function",
        "method_definition",
        "generator_function_declaration",
    }
)
_BRANCHES = frozenset(
    {
        "if_statement",
        "for_statement",
        "for_in_statement",
        "while_statement",
        "do_statement",
        "switch_case",
        "catch_clause",
        "ternary_expression",
        "conditional_expression",
    }
)
MAX_SYNTAX_ERRORS = 20


def _parser(language: str) -> Any:
    from tree_sitter import Language, Parser

    if language == "typescript":
        import tree_sitter_typescript as ts

        return Parser(Language(ts.language_typescript()))
    import tree_sitter_javascript as js

    return Parser(Language(js.language()))


def analyze_js(code: str, language: str) -> dict[str, Any]:
    """The analysis of JS/TS ``code``, in the same shape as the Python one."""
    source = code.encode("utf-8")
    root = _parser(language).parse(source).root_node
    errors: list[dict[str, Any]] = []
    functions: list[dict[str, Any]] = []
    classes = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            if len(errors) < MAX_SYNTAX_ERRORS:
                errors.append(_error(node, source))
            if node.is_missing:
                continue
        if node.is_named and node.type in _FUNCTIONS:
            functions.append(_function(node, source))
        classes += node.is_named and node.type in ("class_declaration", "class")
        stack.extend(reversed(node.children))
    lines = code.splitlines()
    errors.sort(key=lambda e: (e["line"], e["column"]))
    return {
        "syntax_errors": errors,
        "code_quality": {
            "lines": len(lines),
            "blank_lines": sum(1 for line in lines if not line.strip()),
            "functions": len(functions),
            "classes": classes,
        },
        "performance": {
            "max_complexity": max((f["complexity"] for f in functions), default=0),
            "functions": functions,
        },
        "best_practices": [],
        "linter": {"name": "tree-sitter", "ok": True},
    }


def _error(node: Any, source: bytes) -> dict[str, Any]:
    row, col = node.start_point
    if node.is_missing:
        message = f"missing `{node.type}`"
    else:
        text = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
        message = f"unexpected `{text[:40]}`" if text.strip() else "syntax error"
    return {"line": row + 1, "column": col + 1, "message": message}


def _function(node: Any, source: bytes) -> dict[str, Any]:
    name_node = node.child_by_field_name("name")
    name = (
        source[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        if name_node is not None
        else "<anonymous>"
    )
    complexity = 1
    stack = list(node.children)
    while stack:
        child = stack.pop()
        if child.is_named and child.type in _FUNCTIONS:
            continue  # nested functions count for themselves
        if child.type in _BRANCHES:
            complexity += 1
        elif child.type == "binary_expression":
            operator = child.child_by_field_name("operator")
            complexity += operator is not None and operator.type in ("&&", "||", "??")
        stack.extend(child.children)
    return {"name": name, "line": node.start_point[0] + 1, "complexity": complexity}
