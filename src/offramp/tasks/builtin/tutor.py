"""Hooks of the tutor task: the reply in seed 000's shape, naming the model that answered."""

from __future__ import annotations

from typing import Any

from offramp.tasks.hooks import RunInfo, TaskHooks


def tutor_reply(output: Any, run: RunInfo) -> Any:
    """The model's reply plus ``model_used``."""
    return {**output, "model_used": run.model}


def register(hooks: TaskHooks) -> None:
    hooks.finish.register("tutor-reply", tutor_reply)
