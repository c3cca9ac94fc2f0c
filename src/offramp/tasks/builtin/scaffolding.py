"""Hooks of the scaffold task: generated Python must parse, and templates as the fallback.

Templates live in ``builtin/scaffold/<framework>/`` as ``*.j2`` files whose relative path
is the generated file's path (a ``_project_`` folder becomes the project's name, ``_resources_`` the resource's plural).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from offramp.tasks.catalog import builtin_dir
from offramp.tasks.hooks import RunInfo, TaskHooks

FRAMEWORK_IMPORTS = {"fastapi": "fastapi", "flask": "flask", "django": "django"}
CRUD_VERBS = ("create", "get", "update", "delete")


def syntax_problem(source: str, path: str) -> str | None:
    """Where ``source`` fails to parse as Python, or None when it parses."""
    try:
        ast.parse(source, filename=path)
    except SyntaxError as exc:
        return f"{path} does not parse: line {exc.lineno}, column {exc.offset}: {exc.msg}"
    return None


def check_python_parses(result: Any, values: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """Every ``*.py`` file of the result parses."""
    problems = []
    for f in result.get("files", []):
        if str(f["path"]).endswith(".py"):
            problem = syntax_problem(f["content"], f["path"])
            if problem:
                problems.append(problem)
    return problems


def check_framework(result: Any, values: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """The files use the requested framework (CRUD: define create/get/update/delete)."""
    framework = values["framework"]
    trees = []
    for f in result.get("files", []):
        if str(f["path"]).endswith(".py") and syntax_problem(f["content"], f["path"]) is None:
            trees.append(ast.parse(f["content"]))
    if not trees:
        return ["the project has no Python file"]
    if framework in FRAMEWORK_IMPORTS:
        package = FRAMEWORK_IMPORTS[framework]
        if not any(package in _imports(t) for t in trees):
            return [f"no Python file imports {package}; this is a {framework} project"]
        return []
    defined = {n.name for t in trees for n in ast.walk(t) if isinstance(n, ast.FunctionDef)}
    missing = [v for v in CRUD_VERBS if not any(name.startswith(v) for name in defined)]
    return [f"no function for the {v!r} operation" for v in missing]


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def from_model(output: Any, run: RunInfo) -> Any:
    """The model's files as the task's result."""
    return {
        "framework": run.input["framework"],
        "project_name": run.input["project_name"],
        "source": "model",
        "files": output["files"],
        "notes": output.get("notes", ""),
    }


def from_templates(values: dict[str, Any], context: dict[str, Any]) -> Any:
    """The framework's built-in templates, rendered for this project."""
    framework = values["framework"]
    root = builtin_dir() / "scaffold" / framework
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    project, resource = values["project_name"], values["resource"]
    ctx = {
        "project": project,
        "resource": resource,
        "model": "".join(part.title() for part in resource.split("_")),
        "description": values["description"],
    }
    files = []
    for path in sorted(root.rglob("*.j2")):
        rel = path.relative_to(root).with_suffix("").as_posix()
        rel = rel.replace("_project_", project).replace("_resources_", f"{resource}s")
        source = path.relative_to(root).as_posix()
        files.append({"path": rel, "content": env.get_template(source).render(**ctx)})
    return {
        "framework": framework,
        "project_name": project,
        "source": "template",
        "files": files,
        "notes": f"Built from the {framework} templates: the model's files did not pass "
        "validation within the task's attempts.",
    }


def template_frameworks() -> list[str]:
    """Frameworks that have templates."""
    root = builtin_dir() / "scaffold"
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir())


def register(hooks: TaskHooks) -> None:
    hooks.finish.register("scaffold-project", from_model)
    hooks.validators.register("python-parses", check_python_parses)
    hooks.validators.register("scaffold-framework", check_framework)
    hooks.fallbacks.register("scaffold-templates", from_templates)
