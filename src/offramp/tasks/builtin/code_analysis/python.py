"""Static analysis of Python source: the compiler's parser and the ruff linter.

Syntax errors come from ``ast`` (the authoritative one) and ruff (which recovers and
finds more); cyclomatic complexity is ruff's McCabe rule (C901) reported for every
function; best-practice findings are ruff's rules; size metrics come from ``ast``.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import tokenize
from typing import Any

RUFF_RULES = "E,W,F,B,SIM,UP,C4,PIE,RET,N,PL,C901"
RUFF_TIMEOUT_S = 30
_COMPLEXITY = re.compile(r"^`(?P<name>[^`]+)` is too complex \((?P<n>\d+) > 0\)$")


def analyze_python(code: str) -> dict[str, Any]:
    """Syntax errors, quality metrics, complexity and ruff findings for ``code``."""
    findings, linter = _ruff(code)
    syntax = _ast_syntax_error(code)
    syntax_errors = [syntax] if syntax else []
    for f in findings:
        known = any(e["line"] == f["line"] for e in syntax_errors)
        if f["code"] in (None, "invalid-syntax") and not known:
            syntax_errors.append(
                {"line": f["line"], "column": f["column"], "message": f["message"]}
            )
    complexity = [
        {"name": m["name"], "line": f["line"], "complexity": int(m["n"])}
        for f in findings
        if f["code"] == "C901" and (m := _COMPLEXITY.match(f["message"]))
    ]
    practices = [f for f in findings if f["code"] not in (None, "invalid-syntax", "C901")]
    return {
        "syntax_errors": syntax_errors,
        "code_quality": _metrics(code, None if syntax else ast.parse(code)),
        "performance": {
            "max_complexity": max((c["complexity"] for c in complexity), default=0),
            "functions": complexity,
        },
        "best_practices": practices,
        "linter": linter,
    }


def _ast_syntax_error(code: str) -> dict[str, Any] | None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return {"line": exc.lineno or 0, "column": exc.offset or 0, "message": exc.msg}
    return None


def _metrics(code: str, tree: ast.Module | None) -> dict[str, Any]:
    lines = code.splitlines()
    comments = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            comments += tok.type == tokenize.COMMENT
    except (tokenize.TokenError, SyntaxError):
        pass
    metrics: dict[str, Any] = {
        "lines": len(lines),
        "blank_lines": sum(1 for line in lines if not line.strip()),
        "comment_lines": comments,
    }
    if tree is None:
        return metrics
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    documented = [n for n in functions + classes if ast.get_docstring(n)]
    lengths = [(n.end_lineno or n.lineno) - n.lineno + 1 for n in functions]
    metrics.update(
        functions=len(functions),
        classes=len(classes),
        docstring_coverage=round(len(documented) / len(functions + classes), 2)
        if functions or classes
        else None,
        longest_function=max(lengths, default=0),
        recursive_functions=sorted(n.name for n in functions if _calls_itself(n)),
    )
    return metrics


def _calls_itself(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == fn.name
        for n in ast.walk(fn)
    )


def _ruff(code: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """ruff's findings on ``code`` and a note of the run (``ok`` False with the reason
    when ruff could not run; the rest of the analysis still stands)."""
    from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

    command = [
        find_ruff_bin(),
        "check",
        "--isolated",
        "--no-cache",
        "--output-format",
        "json",
        "--select",
        RUFF_RULES,
        "--config",
        "lint.mccabe.max-complexity = 0",
        "--stdin-filename",
        "snippet.py",
        "-",
    ]
    note: dict[str, Any] = {"name": "ruff", "rules": RUFF_RULES, "ok": True}
    try:
        done = subprocess.run(
            command, input=code, capture_output=True, text=True, timeout=RUFF_TIMEOUT_S
        )
        raw = json.loads(done.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return [], {**note, "ok": False, "error": f"ruff did not run: {exc}"}
    findings = [
        {
            "code": item.get("code"),
            "message": item.get("message", ""),
            "line": (item.get("location") or {}).get("row", 0),
            "column": (item.get("location") or {}).get("column", 0),
            "fixable": item.get("fix") is not None,
            "url": item.get("url"),
        }
        for item in raw
    ]
    return findings, note
