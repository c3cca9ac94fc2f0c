"""Jinja2 prompt templates: sandboxed, strict about undefined names, compiled at load.

Templates may ``{% include %}`` partials from the user's tasks folder first, then the
built-in ``templates/`` folder (e.g. ``persona.j2``, the learner-persona paragraph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from offramp.errors import InvalidRequest, OfframpError


class PromptRenderer:
    """Compiles and renders task templates over an ordered list of include folders."""

    def __init__(self, search_paths: list[Path]):
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader([str(p) for p in search_paths]),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}

    def compile(self, source: str, where: str) -> Template:
        """A compiled template; InvalidRequest (param ``tasks_dir``) naming ``where`` if bad."""
        try:
            return self._env.from_string(source)
        except TemplateError as exc:
            raise InvalidRequest(
                f"{where}: the prompt template does not compile: {exc}", param="tasks_dir"
            ) from exc

    @staticmethod
    def render(template: Template, context: dict[str, Any], where: str) -> str:
        """The rendered text, stripped; OfframpError naming ``where`` when rendering fails
        (a template that uses a value its task's input does not provide)."""
        try:
            return template.render(**context).strip()
        except TemplateError as exc:
            raise OfframpError(f"{where}: the prompt template failed: {exc}") from exc
