"""What a task file says: the typed form of one task definition.

A task file holds one task mapping, or ``tasks:`` with a list of them (keys starting
with ``x-`` are free for YAML anchors shared between the tasks of one file). Output
schemas may take values from the validated input: a mapping ``{"$input": "a.b"}``
anywhere in ``output_schema`` or ``result_schema`` is replaced by ``input.a.b`` when
the task runs (e.g. ``minItems: {$input: count}``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from offramp.errors import OfframpError
from offramp.routing.config import CaptureSpec, InContextSpec, ShadowSpec

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Spec):
    """How the task's generation runs by default; a request may name another model."""

    model: str = Field(default="gpt-4o-mini", description="Model or alias asked first.")
    max_tokens: int = Field(default=512, ge=1, description="Token budget of one attempt.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Generations (first try plus repairs) at most."
    )
    repeat_penalty: float = Field(
        default=1.0,
        gt=0.0,
        description="Above 1 discourages repeating recent text: lists of items (cards, "
        "examples) from a small model otherwise tend to copy their first item.",
    )
    logprobs: bool = Field(
        default=False,
        description="Ask for token logprobs (when the provider has them): the result's "
        "metadata then carries a confidence, and ``finish`` hooks see it.",
    )


class Prompt(_Spec):
    """Jinja2 templates of the messages; they see ``input`` and whatever ``prepare`` adds."""

    system: str | None = None
    user: str


class History(_Spec):
    """Conversation memory by session id: which input field names the session, which
    input field is the user's turn and which result field is the reply."""

    session: str = Field(description="Input field holding the session id.")
    user: str = Field(description="Input field holding the user's message.")
    assistant: str = Field(description="Result field holding the reply text.")
    turns: int = Field(default=4, ge=1, le=50, description="Earlier turns replayed.")


class Hooks(_Spec):
    """Named code steps: ``prepare`` adds template context before the model runs (e.g.
    static analysis); ``finish`` turns the model's output into the task's result."""

    prepare: str | None = None
    finish: str | None = None


class ValidatorRef(_Spec):
    """A domain validator by name, with its arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(_Spec):
    """One task definition. ``output_schema`` is what the model writes (kept to what
    grammar decoding enforces); ``result_schema`` (default: the output schema) is what the
    task returns after ``finish`` and is validated with full JSON Schema."""

    name: str = Field(pattern=NAME_PATTERN)
    version: str = "1"
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    result_schema: dict[str, Any] | None = None
    prompt: Prompt
    route: Route = Route()
    hooks: Hooks = Hooks()
    validators: tuple[ValidatorRef, ...] = ()
    fallback: str | None = Field(
        default=None,
        description="Fallback hook run when no attempt validates; None: a clear error.",
    )
    history: History | None = None
    examples: tuple[dict[str, Any], ...] = Field(
        default=(), description="Inputs that show the task's use; checked at load."
    )
    capture: CaptureSpec | None = Field(
        default=None,
        description="Capture runs as samples (input and validated output); None: as the "
        "route the run takes says.",
    )
    shadow: ShadowSpec | None = Field(
        default=None,
        description="Run the same task on a teacher in the background for a share of runs "
        "and keep its result as the sample's reference; None: as the route says.",
    )
    in_context: InContextSpec | None = Field(
        default=None,
        description="Put the most similar good captured runs of this task in its prompt "
        "(``examples`` above are sample inputs, not these).",
    )

    @field_validator("validators", mode="before")
    @classmethod
    def _names_or_refs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    def listing(self) -> dict[str, Any]:
        """The task as ``GET /v1/tasks`` shows it."""
        return {
            "name": self.name,
            "object": "task",
            "version": self.version,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.result_schema or self.output_schema,
            "model": self.route.model,
            "max_attempts": self.route.max_attempts,
            "validators": [v.name for v in self.validators],
            "fallback": self.fallback,
            "history": self.history is not None,
            "examples": list(self.examples),
        }


def lookup(values: Any, dotted: str) -> Any:
    """``values`` at the dotted path ``a.b.c``; KeyError naming the path if absent."""
    current = values
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            raise KeyError(dotted)
        current = current[part]
    return current


def resolve_schema(schema: Any, values: dict[str, Any]) -> Any:
    """``schema`` with every ``{"$input": path}`` replaced by that input value."""
    if isinstance(schema, dict):
        if set(schema) == {"$input"}:
            try:
                return lookup(values, str(schema["$input"]))
            except KeyError as exc:
                raise OfframpError(
                    f"the task's schema refers to input `{schema['$input']}`, which is absent"
                ) from exc
        return {k: resolve_schema(v, values) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolve_schema(v, values) for v in schema]
    return schema
