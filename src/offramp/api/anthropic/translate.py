"""Pure translation between Anthropic's Messages API and offramp's domain types.

``system`` becomes a system message; a user turn's text blocks a user message and its
``tool_result`` blocks tool messages, in their order; an assistant turn's text and
``tool_use`` blocks one assistant message with its tool calls. ``tool_choice`` ``auto``,
``any``, ``tool`` and ``none`` are the chat API's ``auto``, ``required``, a named
function and ``none``. The answer's text and calls become ``text`` and ``tool_use``
blocks. Every parameter is honoured or refused with a 400 naming it.
"""

from __future__ import annotations

import json
from typing import Any

from offramp.api.anthropic.protocol import (
    Block,
    CountTokensRequest,
    MessageParam,
    MessagesRequest,
    TextBlock,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlock,
    ToolUseBlock,
)
from offramp.errors import InvalidRequest, OutputValidationFailed, UnsupportedParameter, quoted
from offramp.types import (
    ChatRequest,
    CompletionResult,
    FinishReason,
    Message,
    OutputFormat,
    Sampling,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

Json = dict[str, Any]
STOP_REASONS: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def chat_request(body: MessagesRequest) -> ChatRequest:
    """The chat request ``POST /v1/messages`` asks for."""
    tools = _tools(body)
    return ChatRequest(
        model=body.model,
        messages=_conversation(body),
        sampling=Sampling(
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            top_k=body.top_k or 0,
            max_tokens=body.max_tokens,
            stop=tuple(body.stop_sequences or ()),
        ),
        output=_output(body),
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        user=body.metadata.user_id if body.metadata is not None else None,
        parallel_tool_calls=_parallel(body.tool_choice),
        extra=dict(body.model_extra or {}),
    )


def count_request(body: CountTokensRequest) -> ChatRequest:
    """The chat request whose prompt ``POST /v1/messages/count_tokens`` counts."""
    tools = _tools(body)
    return ChatRequest(
        model=body.model,
        messages=_conversation(body),
        output=_output(body),
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        extra=dict(body.model_extra or {}),
    )


def _output(body: CountTokensRequest) -> OutputFormat:
    """``output_config.format``: the answer's text is JSON following the schema."""
    config = body.output_config
    if config is None or config.format is None:
        return OutputFormat()
    return OutputFormat("json_schema", config.format.schema_, "output")


def _conversation(body: CountTokensRequest) -> tuple[Message, ...]:
    messages: list[Message] = []
    if body.system:
        system = body.system
        text = system if isinstance(system, str) else "\n".join(b.text for b in system)
        messages.append(Message("system", text))
    for i, turn in enumerate(body.messages):
        messages += _turn(i, turn)
    if body.messages[-1].role == "assistant":
        raise UnsupportedParameter(
            "a final assistant turn (a prefill to continue) is not supported by this model; "
            "end with a user turn",
            param=f"messages[{len(body.messages) - 1}]",
        )
    return tuple(messages)


def _turn(i: int, turn: MessageParam) -> list[Message]:
    if isinstance(turn.content, str):
        return [Message(turn.role, turn.content)]
    if turn.role == "assistant":
        return [_assistant(i, turn.content)]
    out: list[Message] = []
    texts: list[str] = []
    for j, block in enumerate(turn.content):
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolResultBlock):
            if texts:
                out.append(Message("user", "\n".join(texts)))
                texts = []
            out.append(_tool_result(f"messages[{i}].content[{j}]", block))
        else:
            raise _unsupported_block(block.type, f"messages[{i}].content[{j}]", "a user turn")
    if texts or not out:
        out.append(Message("user", "\n".join(texts)))
    return out


def _assistant(i: int, blocks: list[Block]) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
        else:
            where = f"messages[{i}].content[{j}]"
            raise _unsupported_block(block.type, where, "an assistant turn")
    return Message("assistant", "\n".join(texts) if texts else None, tool_calls=tuple(calls))


def _tool_result(where: str, block: ToolResultBlock) -> Message:
    content = block.content
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            if not isinstance(part, TextBlock):
                raise _unsupported_block(part.type, f"{where}.content[{k}]", "a tool result")
            texts.append(part.text)
        content = "\n".join(texts)
    text = content or ""
    if block.is_error:
        text = f"Error: {text}"
    return Message("tool", text, tool_call_id=block.tool_use_id)


def _unsupported_block(kind: str, where: str, place: str) -> UnsupportedParameter:
    return UnsupportedParameter(
        f"content blocks of type {quoted(kind)} are not supported in {place} by this model; "
        "send text, tool_use and tool_result blocks",
        param=where,
    )


def _tools(body: CountTokensRequest) -> tuple[ToolSpec, ...]:
    out = []
    for i, tool in enumerate(body.tools or []):
        if not isinstance(tool, ToolParam):
            raise UnsupportedParameter(
                f"tools of type {quoted(tool.type)} are not available here; define custom "
                "tools with an input_schema",
                param=f"tools[{i}]",
            )
        out.append(ToolSpec(tool.name, tool.description or "", tool.input_schema))
    return tuple(out)


def _tool_choice(raw: ToolChoiceParam | None, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice("auto" if tools else "none")
    if not tools and raw.type != "none":
        raise InvalidRequest("tool_choice is set but no tools were given", param="tool_choice")
    if raw.type != "tool":
        return ToolChoice({"auto": "auto", "any": "required", "none": "none"}[raw.type])  # type: ignore[arg-type]
    if raw.name is None:
        raise InvalidRequest("tool_choice of type tool needs a name", param="tool_choice.name")
    if raw.name not in {t.name for t in tools}:
        raise InvalidRequest(
            f"tool_choice names {quoted(raw.name)}, which is not in tools",
            param="tool_choice.name",
        )
    return ToolChoice("named", raw.name)


def _parallel(raw: ToolChoiceParam | None) -> bool | None:
    if raw is None or raw.disable_parallel_tool_use is None:
        return None
    return not raw.disable_parallel_tool_use


# -- the answer -------------------------------------------------------------------------


def tool_use_id(call: ToolCall) -> str:
    """The id of a call as a ``tool_use`` block shows it."""
    return call.id if call.id.startswith("toolu_") else "toolu_" + call.id.removeprefix("call_")


def tool_input(call: ToolCall, cut: bool = False) -> Json:
    """A call's arguments as the ``input`` object of its ``tool_use`` block; a call that
    ``max_tokens`` cut off has partial arguments, shown as ``{}`` (its stream carried the
    partial JSON)."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError as exc:
        if cut:
            return {}
        raise OutputValidationFailed("the model's tool call arguments are not JSON") from exc
    if not isinstance(value, dict):
        raise OutputValidationFailed("the model's tool call arguments are not a JSON object")
    return value


def message_object(message_id: str, model: str, result: CompletionResult) -> Json:
    """The ``message`` answering a whole request (its first, only choice)."""
    choice = result.choices[0]
    content: list[Json] = []
    if choice.text:
        content.append({"type": "text", "text": choice.text})
    cut = choice.finish_reason == "length"
    for call in choice.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call),
                "name": call.name,
                "input": tool_input(call, cut),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS[choice.finish_reason],
        "stop_sequence": None,
        "usage": usage_object(result.usage),
    }


def usage_object(u: Usage) -> Json:
    """Anthropic's usage: ``input_tokens`` excludes cache reads and writes."""
    return {
        "input_tokens": max(u.prompt_tokens - u.cached_tokens - u.cache_write_tokens, 0),
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "service_tier": "standard",
    }
