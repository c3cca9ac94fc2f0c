"""The built-in tasks: their files (``*.yaml``, templates, scaffolds) and the code steps
they name, registered the way a plugin's would be."""

from __future__ import annotations

from offramp.tasks.builtin import code_analysis, learning, mealplan, scaffolding, tutor
from offramp.tasks.hooks import TaskHooks


def builtin_hooks() -> TaskHooks:
    """The hooks the built-in tasks use (any user task may use them too)."""
    hooks = TaskHooks()
    for module in (learning, mealplan, scaffolding, code_analysis, tutor):
        module.register(hooks)
    return hooks
