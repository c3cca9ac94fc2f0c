"""An Anthropic Messages API response as a domain CompletionResult. Pure."""

from __future__ import annotations

import json

from offramp.providers.anthropic.wire import WireMessage, WireUsage
from offramp.types import Choice, CompletionResult, FinishReason, OutputFormat, ToolCall, Usage

# stop_reason -> finish_reason; a reason Anthropic adds later reads as a plain stop.
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "stop",
}


def finish_reason(stop_reason: str | None, output: OutputFormat) -> FinishReason:
    """The domain finish reason; in JSON mode the forced tool call is the answer (stop)."""
    reason = _FINISH.get(stop_reason or "end_turn", "stop")
    if reason == "tool_calls" and output.kind != "text":
        return "stop"
    return reason


def usage(wire: WireUsage) -> Usage:
    """Domain usage; ``prompt_tokens`` counts cache reads and writes, as OpenAI's does."""
    cached = wire.cache_read_input_tokens or 0
    written = wire.cache_creation_input_tokens or 0
    return Usage(
        prompt_tokens=(wire.input_tokens or 0) + cached + written,
        completion_tokens=wire.output_tokens or 0,
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def from_upstream(message: WireMessage, model: str, output: OutputFormat) -> CompletionResult:
    """The result for ``message``; ``model`` is the public name the client asked for.

    Text blocks are joined; ``tool_use`` blocks become tool calls with JSON arguments, or,
    when ``output`` asked for JSON, the forced tool's input is the answer's text.
    Other block types (e.g. thinking) carry nothing an OpenAI client can read.
    """
    text = "".join(b.text or "" for b in message.content if b.type == "text")
    calls = tuple(
        ToolCall(
            id=b.id or "",
            name=b.name or "",
            arguments=json.dumps(b.input or {}, ensure_ascii=False),
        )
        for b in message.content
        if b.type == "tool_use"
    )
    content: str | None = text
    if output.kind != "text" and calls:
        content, calls = calls[0].arguments, ()
    elif calls and not text:
        content = None
    choice = Choice(
        index=0,
        text=content,
        finish_reason=finish_reason(message.stop_reason, output),
        tool_calls=calls,
    )
    return CompletionResult(model=model, choices=(choice,), usage=usage(message.usage))
