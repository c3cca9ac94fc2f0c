"""The named code steps task files refer to: a registry, filled the way a plugin would.

Four kinds, each a plain function:

* ``prepare(input) -> context``: runs before the model (async); its mapping is added to
  the template context and handed to ``finish`` and fallbacks (e.g. static analysis).
* ``finish(output, run) -> result``: turns the model's validated output into the task's
  result (derive what code computes better than a model: grocery lists, answer keys).
* validator ``(result, input, args) -> problems``: domain rules beyond any schema; each
  problem is one sentence the model can act on in a repair attempt.
* fallback ``(input, context) -> result``: what the task returns when no attempt
  validates (templates, a catalogue); its result is validated like the model's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from offramp.errors import InvalidRequest


@dataclass(frozen=True)
class RunInfo:
    """What ``finish`` may use besides the output: the input, the prepared context, the
    model that answered and its mean token log-probability (None without logprobs)."""

    input: dict[str, Any]
    context: dict[str, Any]
    model: str
    mean_logprob: float | None = None


Prepare = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Finish = Callable[[Any, RunInfo], Any]
Validator = Callable[[Any, dict[str, Any], dict[str, Any]], list[str]]
Fallback = Callable[[dict[str, Any], dict[str, Any]], Any]

F = TypeVar("F")


class _Named(Generic[F]):
    def __init__(self, kind: str):
        self._kind = kind
        self._items: dict[str, F] = {}

    def register(self, name: str, fn: F) -> None:
        self._items[name] = fn

    def get(self, name: str, where: str) -> F:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise InvalidRequest(
                f"{where}: no {self._kind} hook named {name!r} (known: {known})",
                param="tasks_dir",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)


@dataclass
class TaskHooks:
    """Every hook a task file may name, by kind."""

    prepare: _Named[Prepare] = field(default_factory=lambda: _Named("prepare"))
    finish: _Named[Finish] = field(default_factory=lambda: _Named("finish"))
    validators: _Named[Validator] = field(default_factory=lambda: _Named("validator"))
    fallbacks: _Named[Fallback] = field(default_factory=lambda: _Named("fallback"))
