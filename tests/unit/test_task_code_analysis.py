"""Static code analysis: ast + ruff for Python, tree-sitter for JavaScript/TypeScript."""

from __future__ import annotations

from offramp.tasks.builtin.code_analysis import analyze

FACTORIAL = "def factorial(n):\n    if n == 0:\n        return 1\n    return n * factorial(n-1)\n"

BRANCHY = '''import os


def classify(x):
    """Say what x is."""
    if x is None:
        return "none"
    for i in range(3):
        if i == x and x > 0:
            return "small"
    while x > 100:
        x -= 1
    return "big" if x else "zero"
'''


def test_python_metrics_complexity_and_ruff_findings() -> None:
    report = analyze(BRANCHY, "python")
    assert report["syntax_errors"] == []
    assert report["linter"]["ok"] is True
    [fn] = report["performance"]["functions"]
    assert fn["name"] == "classify" and fn["line"] == 4
    assert fn["complexity"] == report["performance"]["max_complexity"] >= 5
    quality = report["code_quality"]
    assert quality["functions"] == 1 and quality["docstring_coverage"] == 1.0
    assert quality["lines"] == len(BRANCHY.splitlines())
    unused = [f for f in report["best_practices"] if f["code"] == "F401"]
    assert unused and unused[0]["line"] == 1 and unused[0]["fixable"] is True


def test_python_recursion_and_simple_complexity() -> None:
    report = analyze(FACTORIAL, "python")
    assert report["code_quality"]["recursive_functions"] == ["factorial"]
    assert report["performance"]["functions"][0]["complexity"] == 2


def test_python_syntax_errors_have_line_and_column() -> None:
    report = analyze("x = 1\ndef broken(:\n    pass\n", "python")
    first = report["syntax_errors"][0]
    assert first["line"] == 2 and first["column"] >= 1 and first["message"]
    assert "functions" not in report["code_quality"]  # no tree to measure


def test_javascript_and_typescript_are_parsed() -> None:
    ok = analyze(
        "function add(a, b) {\n  if (a && b) { return a + b }\n  return 0\n}\n", "javascript"
    )
    assert ok["syntax_errors"] == []
    assert ok["performance"]["functions"] == [{"name": "add", "line": 1, "complexity": 3}]
    bad = analyze("const x = ;\nfunction f( {\n", "javascript")
    assert bad["syntax_errors"] and bad["syntax_errors"][0]["line"] == 1
    typed = analyze("class A { m(x: number): string { return `${x}` } }\n", "typescript")
    assert typed["syntax_errors"] == [] and typed["code_quality"]["classes"] == 1
    assert analyze("let y: = 3\n", "typescript")["syntax_errors"]
