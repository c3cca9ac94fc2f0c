"""Tool calls whose arguments break their function's JSON schema: checked, then repaired.

A grammar keeps a local model's calls to the schema's shape, but some keywords have no
grammar (``multipleOf``, ``uniqueItems``, ``not``...), and an upstream model may ignore a
schema altogether. So every finished call's arguments are validated against its
function's ``parameters``. A single-choice answer that fails is repaired the way a failed
function is reported in a conversation: the call goes back as the assistant's turn and
a tool message lists the problems; the model calls again (up to ``max_attempts``
generations in all). When no attempt passes, or when ``n`` > 1, the request fails with
OutputValidationFailed naming the problems: an invalid call is never returned as valid.
Calls cut off by the token limit are returned as they are (``finish_reason: length``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from offramp.errors import OutputValidationFailed
from offramp.gateway import calls
from offramp.routing.outcome import Outcome
from offramp.routing.route import Route
from offramp.routing.router import Router
from offramp.schemas import validator_for
from offramp.types import ChatRequest, Choice, CompletionResult, Message, ToolSpec, Usage

MAX_PROBLEMS = 6


@dataclass(frozen=True)
class CheckedCalls:
    """The answer whose calls all validate, the generations it took and their outcomes."""

    result: CompletionResult
    attempts: int
    outcomes: tuple[Outcome, ...]


async def chat(
    router: Router, route: Route, request: ChatRequest, max_attempts: int
) -> CheckedCalls:
    """Answer a chat request with tools; OutputValidationFailed when calls stay invalid."""
    outcomes: list[Outcome] = []
    usage = Usage()
    current = request
    problems: list[str] = []
    for attempt in range(1, max_attempts + 1):
        routed = await calls.chat(router, route, current)
        routed.outcome.usage = routed.value.usage
        outcomes.append(routed.outcome)
        usage.prompt_tokens += routed.value.usage.prompt_tokens
        usage.completion_tokens += routed.value.usage.completion_tokens
        problems = [p for c in routed.value.choices for p in call_problems(request.tools, c)]
        if not problems:
            return CheckedCalls(replace(routed.value, usage=usage), attempt, tuple(outcomes))
        if request.n != 1:
            break
        current = _repair_request(request, routed.value.choices[0], problems, attempt)
    raise OutputValidationFailed(
        f"the model's tool call arguments failed validation after {len(outcomes)} "
        "attempt(s): " + "; ".join(problems[:MAX_PROBLEMS])
    )


def call_problems(tools: tuple[ToolSpec, ...], choice: Choice) -> list[str]:
    """Every way the finished calls of ``choice`` break their functions' schemas."""
    if choice.finish_reason == "length":
        return []
    schemas = {t.name: t.parameters for t in tools}
    found = []
    for call in choice.tool_calls:
        if call.name not in schemas:
            found.append(f"{call.name} is not one of the functions")
            continue
        try:
            value = json.loads(call.arguments)
        except ValueError as exc:
            found.append(f"the arguments of {call.name} are not JSON: {exc}")
            continue
        for error in validator_for(schemas[call.name]).iter_errors(value):
            found.append(f"{call.name} arguments at {error.json_path}: {error.message}"[:240])
    return found


def _repair_request(
    request: ChatRequest, choice: Choice, problems: list[str], attempt: int
) -> ChatRequest:
    """The conversation plus the rejected calls, answered by tool messages naming the
    problems; sampled (seeded) so the next call can differ."""
    listed = "\n".join(f"- {p}" for p in problems[:MAX_PROBLEMS])
    replies = tuple(
        Message(
            "tool",
            f"Error: the call was rejected:\n{listed}\nCall {call.name} again with these fixed.",
            tool_call_id=call.id,
        )
        for call in choice.tool_calls
    )
    messages = (
        *request.messages,
        Message("assistant", choice.text, tool_calls=choice.tool_calls),
        *replies,
    )
    sampling = request.sampling
    sampling = replace(
        sampling,
        temperature=sampling.temperature if sampling.temperature > 0 else 0.7,
        seed=(sampling.seed or 0) + attempt,
    )
    return replace(request, messages=messages, sampling=sampling)
