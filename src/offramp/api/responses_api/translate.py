"""Pure translation between the Responses API's wire format and offramp's domain types.

A request becomes a chat request: ``instructions`` a system message, input items turns
(``function_call`` items assistant tool calls, ``function_call_output`` items tool
results), ``text.format`` the output format. The answer becomes output items: one
``message`` with its ``output_text``, then one ``function_call`` per call. Every
parameter is honoured or refused with a 400 naming it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from offramp.api.responses_api.protocol import (
    Content,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    FunctionTool,
    InputItem,
    MessageItem,
    ResponsesRequest,
    TextContent,
)
from offramp.errors import InvalidRequest, UnsupportedParameter, quoted
from offramp.types import (
    ChatRequest,
    CompletionResult,
    Message,
    OutputFormat,
    Sampling,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

Json = dict[str, Any]
_ITEMS: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])
# `include` values that ask for nothing this server would leave out
_HARMLESS_INCLUDES = frozenset({"reasoning.encrypted_content"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Shape:
    """What one response echoes of its request, and the ids it gives its output."""

    id: str
    created_at: int
    message_id: str
    body: ResponsesRequest


def input_items(body: ResponsesRequest) -> list[Json]:
    """The request's input as stored items: each with an id and typed content parts."""
    raw = body.input
    if raw is None:
        if body.previous_response_id is None:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input")
        return []
    if isinstance(raw, str):
        raw = [MessageItem(role="user", content=raw)]
    return [_stored(item) for item in raw]


def _stored(item: Any) -> Json:
    data: Json = item.model_dump(exclude_none=True, by_alias=True)
    prefixes = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}
    data.setdefault("id", new_id(prefixes.get(data["type"], "item")))
    if isinstance(item, MessageItem) and isinstance(item.content, str):
        kind = "output_text" if item.role == "assistant" else "input_text"
        data["content"] = [{"type": kind, "text": item.content}]
    return data


def chat_request(body: ResponsesRequest, history: list[Json], new: list[Json]) -> ChatRequest:
    """The chat request for ``body`` continuing ``history`` (a previous response's input
    items and output) with the ``new`` input items."""
    messages: list[Message] = []
    if body.instructions:
        messages.append(Message("system", body.instructions))
    items = _ITEMS.validate_python(history) if history else []
    for item in items:
        _add(messages, item, "previous_response_id")
    for i, item in enumerate(_parsed(new)):
        _add(messages, item, f"input[{i}]")
    if not messages:
        raise InvalidRequest("input must hold at least one item", param="input")
    tools = tuple(_tool(i, t) for i, t in enumerate(body.tools or []))
    _check_include(body.include)
    return ChatRequest(
        model=body.model,
        messages=tuple(messages),
        sampling=Sampling(
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            max_tokens=body.max_output_tokens,
        ),
        output=_output(body),
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        user=body.user,
        parallel_tool_calls=body.parallel_tool_calls,
        extra=dict(body.model_extra or {}),
    )


def _parsed(new: list[Json]) -> list[Any]:
    try:
        return _ITEMS.validate_python(new)
    except ValidationError as exc:  # the request's own items were validated already
        message = f"invalid input items: {exc.errors()[0]['msg']}"
        raise InvalidRequest(message, param="input") from exc


def _add(messages: list[Message], item: Any, where: str) -> None:
    if isinstance(item, MessageItem):
        role = "system" if item.role == "developer" else item.role
        messages.append(Message(role, _text(item.content, f"{where}.content")))
    elif isinstance(item, FunctionCallItem):
        call = ToolCall(item.call_id, item.name, item.arguments)
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant" and last.tool_calls:
            messages[-1] = Message("assistant", last.content, tool_calls=(*last.tool_calls, call))
        else:
            messages.append(Message("assistant", None, tool_calls=(call,)))
    elif isinstance(item, FunctionCallOutputItem):
        output = _text(item.output, f"{where}.output")
        messages.append(Message("tool", output, tool_call_id=item.call_id))
    else:
        raise UnsupportedParameter(
            f"input items of type {quoted(item.type)} are not supported by this model; send "
            "messages, function_call and function_call_output items",
            param=where,
        )


def _text(content: str | Sequence[Content], where: str) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for j, part in enumerate(content):
        if isinstance(part, TextContent):
            parts.append(part.text)
        elif part.type == "refusal":
            parts.append(getattr(part, "refusal", ""))
        else:
            raise UnsupportedParameter(
                f"content parts of type {quoted(part.type)} are not supported by this model; "
                "send input_text parts only",
                param=f"{where}[{j}]",
            )
    return "\n".join(parts)


def _tool(i: int, tool: Any) -> ToolSpec:
    if not isinstance(tool, FunctionTool):
        raise UnsupportedParameter(
            f"tools of type {quoted(tool.type)} are not available here; define function tools",
            param=f"tools[{i}]",
        )
    return ToolSpec(
        tool.name,
        tool.description or "",
        tool.parameters or {"type": "object", "properties": {}},
    )


def _tool_choice(raw: str | FunctionChoice | None, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice("auto" if tools else "none")
    if not tools and raw != "none":
        raise InvalidRequest("tool_choice is set but no tools were given", param="tool_choice")
    if isinstance(raw, FunctionChoice):
        if raw.name not in {t.name for t in tools}:
            raise InvalidRequest(
                f"tool_choice names {quoted(raw.name)}, which is not in tools",
                param="tool_choice",
            )
        return ToolChoice("named", raw.name)
    return ToolChoice(raw)  # type: ignore[arg-type]


def _output(body: ResponsesRequest) -> OutputFormat:
    fmt = body.text.format if body.text is not None else None
    if fmt is None or fmt.type == "text":
        return OutputFormat()
    if fmt.type == "json_object":
        return OutputFormat("json_object")
    if fmt.schema_ is None:
        raise InvalidRequest(
            "text.format of type json_schema needs a schema", param="text.format.schema"
        )
    if not fmt.name:
        raise InvalidRequest(
            "text.format of type json_schema needs a name", param="text.format.name"
        )
    return OutputFormat("json_schema", fmt.schema_, fmt.name)


def _check_include(include: list[str] | None) -> None:
    for i, value in enumerate(include or []):
        if value not in _HARMLESS_INCLUDES:
            raise UnsupportedParameter(
                f"include {quoted(value)} is not supported by this model", param=f"include[{i}]"
            )


# -- the answer -------------------------------------------------------------------------


def message_item(shape: Shape, text: str, status: str) -> Json:
    return {
        "id": shape.message_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_text_part(text)] if status != "in_progress" else [],
    }


def _text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(call: ToolCall, status: str) -> Json:
    return {
        "id": "fc_" + call.id.removeprefix("call_"),
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments if status != "in_progress" else "",
    }


def output_items(shape: Shape, result: CompletionResult) -> list[Json]:
    """The output items of the first (only) choice of ``result``."""
    choice = result.choices[0]
    status = "incomplete" if choice.finish_reason == "length" else "completed"
    out: list[Json] = []
    if choice.text or not choice.tool_calls:
        out.append(message_item(shape, choice.text or "", status))
    out.extend(function_call_item(call, status) for call in choice.tool_calls)
    return out


def response_object(
    shape: Shape,
    status: str,
    output: list[Json],
    usage: Usage | None,
    error: Json | None = None,
) -> Json:
    """The ``response`` object, echoing the request's parameters as OpenAI does."""
    body = shape.body
    fmt = body.text.format if body.text is not None and body.text.format is not None else None
    return {
        "id": shape.id,
        "object": "response",
        "created_at": shape.created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "model": body.model,
        "output": output,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.store is not False,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "text": {
            "format": fmt.model_dump(exclude_none=True, by_alias=True) if fmt else {"type": "text"}
        },
        "tool_choice": _choice_echo(body.tool_choice),
        "tools": [t.model_dump(exclude_none=True) for t in body.tools or []],
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "truncation": "disabled",
        "usage": usage_object(usage) if usage is not None else None,
        "user": body.user,
        "metadata": body.metadata or {},
    }


def _choice_echo(raw: str | FunctionChoice | None) -> Any:
    if isinstance(raw, FunctionChoice):
        return raw.model_dump()
    return raw or "auto"


def usage_object(u: Usage) -> Json:
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    }


def finished_status(result: CompletionResult) -> str:
    return "incomplete" if result.choices[0].finish_reason == "length" else "completed"
