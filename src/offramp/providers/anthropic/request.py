"""A domain ChatRequest as the JSON body of Anthropic's ``POST /v1/messages``.

Pure: no network, no settings. Every field is either translated or refused with an
UnsupportedParameter naming it. System messages become the top-level ``system``; tool
results become ``tool_result`` blocks of a user turn; consecutive turns of one role are
merged (the Messages API wants alternating turns); ``response_format`` becomes a forced
tool whose input is the JSON answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from offramp.errors import InvalidRequest, UnsupportedParameter, UnsupportedSchema
from offramp.types import ChatRequest, Message, OutputFormat, Sampling, ToolChoice, ToolSpec

Json = dict[str, Any]

JSON_TOOL_FALLBACK_NAME = "json_response"
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_TEMPERATURE = 1.0  # the Messages API takes 0..1 (OpenAI's range is 0..2)

# Sampling fields the Messages API has no equivalent for, with their neutral values.
_UNSUPPORTED_SAMPLING: dict[str, object] = {
    "seed": None,
    "min_p": 0.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repeat_penalty": 1.0,
    "logit_bias": {},
    "logprobs": False,
    "top_logprobs": 0,
}


def to_upstream(request: ChatRequest, model: str, max_tokens: int) -> Json:
    """The Messages API body for ``request`` sent to upstream ``model``.

    ``max_tokens`` is used when the request names none (the API requires it).
    Raises UnsupportedParameter / InvalidRequest / UnsupportedSchema naming the field.
    """
    if request.n != 1:
        raise UnsupportedParameter("n must be 1 for Anthropic models", param="n")
    system, turns = _conversation(request.messages)
    body: Json = {"model": model, "messages": turns}
    if system:
        body["system"] = system
    body.update(_sampling(request.sampling, max_tokens))
    body.update(_tooling(request))
    if request.user:
        body["metadata"] = {"user_id": request.user}
    return body


def json_tool_name(output: OutputFormat) -> str:
    """The name of the forced tool that carries a JSON answer."""
    if output.name and _TOOL_NAME.fullmatch(output.name):
        return output.name
    return JSON_TOOL_FALLBACK_NAME


def _sampling(sampling: Sampling, max_tokens: int) -> Json:
    for name, neutral in _UNSUPPORTED_SAMPLING.items():
        if getattr(sampling, name) != neutral:
            raise UnsupportedParameter(f"Anthropic models do not support {name}", param=name)
    if sampling.temperature > MAX_TEMPERATURE:
        raise UnsupportedParameter(
            f"temperature must be at most {MAX_TEMPERATURE} for Anthropic models, "
            f"got {sampling.temperature}",
            param="temperature",
        )
    out: Json = {"max_tokens": sampling.max_tokens or max_tokens}
    # Only values that differ from the API's own defaults are sent: newer Claude models
    # refuse temperature and top_p together, so a default is never spelled out.
    if sampling.temperature != 1.0:
        out["temperature"] = sampling.temperature
    if sampling.top_p != 1.0:
        out["top_p"] = sampling.top_p
    if sampling.top_k:
        out["top_k"] = sampling.top_k
    if sampling.stop:
        out["stop_sequences"] = list(sampling.stop)
    return out


def _conversation(messages: tuple[Message, ...]) -> tuple[str, list[Json]]:
    system: list[str] = []
    turns: list[Json] = []
    for i, message in enumerate(messages):
        if message.name is not None:
            raise UnsupportedParameter(
                "Anthropic models do not take a message name", param=f"messages[{i}].name"
            )
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(i, message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest(
            "Anthropic models need at least one user or assistant message", param="messages"
        )
    return "\n\n".join(system), turns


def _blocks(i: int, message: Message) -> list[Json]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise InvalidRequest(
                "a tool message needs tool_call_id", param=f"messages[{i}].tool_call_id"
            )
        result: Json = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            result["content"] = message.content
        return [result]
    blocks: list[Json] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for j, call in enumerate(message.tool_calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": _arguments(i, j, call.arguments),
            }
        )
    if not blocks:
        raise InvalidRequest(
            "message content must not be empty for Anthropic models",
            param=f"messages[{i}].content",
        )
    return blocks


def _arguments(i: int, j: int, arguments: str) -> Json:
    param = f"messages[{i}].tool_calls[{j}].function.arguments"
    try:
        value = json.loads(arguments or "{}")
    except ValueError as exc:
        raise InvalidRequest(f"tool call arguments are not valid JSON: {exc}", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param=param)
    return value


def _tooling(request: ChatRequest) -> Json:
    if request.output.kind != "text":
        if request.tools:
            raise UnsupportedParameter(
                "Anthropic models cannot combine response_format with tools: the JSON "
                "answer is itself produced through a forced tool",
                param="response_format",
            )
        return _json_tool(request.output)
    if not request.tools:
        return {}
    tools = [_tool(i, t) for i, t in enumerate(request.tools)]
    return {"tools": tools, "tool_choice": _tool_choice(request.tool_choice)}


def _tool(i: int, tool: ToolSpec) -> Json:
    if tool.parameters.get("type", "object") != "object":
        raise UnsupportedSchema(
            "Anthropic tools take an object schema (type: object) as parameters",
            param=f"tools[{i}].function.parameters",
        )
    out: Json = {"name": tool.name, "input_schema": {"type": "object", **tool.parameters}}
    if tool.description:
        out["description"] = tool.description
    return out


def _tool_choice(choice: ToolChoice) -> Json:
    if choice.mode == "named":
        return {"type": "tool", "name": choice.name}
    return {"type": {"none": "none", "auto": "auto", "required": "any"}[choice.mode]}


def _json_tool(output: OutputFormat) -> Json:
    schema = output.schema if output.kind == "json_schema" else None
    if schema is not None and schema.get("type") != "object":
        raise UnsupportedSchema(
            "Anthropic models return JSON through a tool, whose schema must be an object "
            "(type: object) at the root",
            param="response_format.json_schema.schema",
        )
    name = json_tool_name(output)
    tool = {
        "name": name,
        "description": "Give the final answer as this tool's input, following its schema.",
        "input_schema": schema or {"type": "object"},
    }
    return {"tools": [tool], "tool_choice": {"type": "tool", "name": name}}
