"""Loading task files: the built-in ones shipped in the package, then a user folder.

Everything is checked at load, so a broken task file fails start-up naming the file:
the schemas are valid JSON Schema, every hook and validator it names exists, its
templates compile, and each of its examples passes its input schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jinja2 import Template
from pydantic import ValidationError

from offramp.errors import InvalidRequest, TaskNotFound, quoted
from offramp.tasks.hooks import TaskHooks
from offramp.tasks.inputs import validate_input
from offramp.tasks.prompts import PromptRenderer
from offramp.tasks.spec import TaskSpec, resolve_schema

TASK_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Task:
    """A loaded task: its spec, compiled templates and where it came from."""

    spec: TaskSpec
    system: Template | None
    user: Template
    source: str


def builtin_dir() -> Path:
    """The folder of built-in task files inside the package."""
    return Path(str(resources.files("offramp.tasks").joinpath("builtin")))


class TaskCatalog:
    """Tasks by name; user tasks replace built-in ones of the same name."""

    def __init__(self, tasks: dict[str, Task]):
        self._tasks = dict(sorted(tasks.items()))

    @classmethod
    def load(cls, hooks: TaskHooks, user_dir: Path | None = None) -> TaskCatalog:
        """Read the built-in tasks and those in ``user_dir``; InvalidRequest (param
        ``tasks_dir``) naming the file when one is malformed."""
        folders = [builtin_dir()]
        if user_dir is not None:
            if not user_dir.is_dir():
                raise InvalidRequest(f"tasks folder {user_dir} does not exist", param="tasks_dir")
            folders.insert(0, user_dir)
        renderer = PromptRenderer([*folders, builtin_dir() / "templates"])
        tasks: dict[str, Task] = {}
        for folder in reversed(folders):  # built-in first, so user files replace them
            for path in sorted(folder.iterdir()):
                if path.suffix in TASK_SUFFIXES and path.is_file():
                    for spec in _read_specs(path):
                        tasks[spec.name] = _load_task(spec, str(path), hooks, renderer)
        return cls(tasks)

    def get(self, name: str) -> Task:
        """The task ``name``; TaskNotFound (404) naming the known ones."""
        task = self._tasks.get(name)
        if task is None:
            known = ", ".join(self._tasks)
            raise TaskNotFound(
                f"The task {quoted(name)} does not exist. Tasks: {known}", param="name"
            )
        return task

    def all(self) -> list[Task]:
        return list(self._tasks.values())


def _read_specs(path: Path) -> list[TaskSpec]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"task file {path} cannot be read: {exc}", param="tasks_dir") from exc
    if not isinstance(data, dict):
        raise InvalidRequest(f"task file {path} must hold a mapping", param="tasks_dir")
    items = data.get("tasks") if "tasks" in data else [data]
    if not isinstance(items, list):
        raise InvalidRequest(f"`tasks` in {path} must be a list", param="tasks_dir")
    specs = []
    for item in items:
        body = {k: v for k, v in item.items() if not str(k).startswith("x-")}
        try:
            specs.append(TaskSpec.model_validate(body))
        except ValidationError as exc:
            raise InvalidRequest(f"task file {path}: {exc}", param="tasks_dir") from exc
    return specs


def _load_task(spec: TaskSpec, path: str, hooks: TaskHooks, renderer: PromptRenderer) -> Task:
    where = f"task {spec.name!r} in {path}"
    for schema in (spec.input_schema, spec.output_schema, spec.result_schema):
        if schema is not None:
            _check_schema(schema, where)
    if spec.hooks.prepare:
        hooks.prepare.get(spec.hooks.prepare, where)
    if spec.hooks.finish:
        hooks.finish.get(spec.hooks.finish, where)
    if spec.fallback:
        hooks.fallbacks.get(spec.fallback, where)
    for ref in spec.validators:
        hooks.validators.get(ref.name, where)
    for i, example in enumerate(spec.examples):
        try:
            values = validate_input(spec.input_schema, example, param=f"examples[{i}]")
        except InvalidRequest as exc:
            raise InvalidRequest(f"{where}: {exc.message}", param="tasks_dir") from exc
        _check_schema(resolve_schema(spec.output_schema, values), where)
    system = renderer.compile(spec.prompt.system, where) if spec.prompt.system else None
    return Task(spec, system, renderer.compile(spec.prompt.user, where), path)


def _check_schema(schema: dict[str, Any], where: str) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(_without_placeholders(schema))
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(
            f"{where}: not a valid JSON schema: {exc.message}", param="tasks_dir"
        ) from exc


def _without_placeholders(schema: Any) -> Any:
    """Placeholders stand for input values, unknown until a run: drop them to check."""
    if isinstance(schema, dict):
        return {
            k: _without_placeholders(v)
            for k, v in schema.items()
            if not (isinstance(v, dict) and set(v) == {"$input"})
        }
    if isinstance(schema, list):
        return [_without_placeholders(v) for v in schema]
    return schema
