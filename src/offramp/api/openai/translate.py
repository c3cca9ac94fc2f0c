"""Pure translation between OpenAI wire models and offramp's domain types.

Every parameter is either honoured, or refused with a 400 that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from offramp.api.openai.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequestWire,
    EmbeddingRequestWire,
    NamedToolChoice,
    OtherPart,
    SamplingFields,
)
from offramp.errors import InvalidRequest, UnsupportedParameter
from offramp.types import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    Message,
    OutputFormat,
    Sampling,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)


def usage(u: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


def chat_request(body: ChatCompletionRequest) -> ChatRequest:
    both = body.max_tokens is not None and body.max_completion_tokens is not None
    if both and body.max_tokens != body.max_completion_tokens:
        raise InvalidRequest(
            "max_tokens and max_completion_tokens disagree; send one of them",
            param="max_completion_tokens",
        )
    if body.store:
        raise UnsupportedParameter(
            "store=true is not supported: offramp keeps no completions for later retrieval",
            param="store",
        )
    if body.top_logprobs and not body.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs=true", param="top_logprobs")
    max_tokens = body.max_completion_tokens or body.max_tokens
    tools = tuple(
        _tool(t.function.name, t.function.description, t.function.parameters)
        for t in body.tools or []
    )
    choice = _tool_choice(body, tools)
    return ChatRequest(
        model=body.model,
        messages=tuple(_message(i, m) for i, m in enumerate(body.messages)),
        sampling=_sampling(body, max_tokens, bool(body.logprobs), body.top_logprobs or 0),
        n=body.n or 1,
        output=_output(body),
        tools=tools,
        tool_choice=choice,
        user=body.user,
        parallel_tool_calls=body.parallel_tool_calls,
        extra=_extra(body),
    )


def completion_requests(body: CompletionRequestWire) -> list[CompletionRequest]:
    """One domain request per prompt of a (possibly batched) completion request."""
    prompts = body.prompt if isinstance(body.prompt, list) else [body.prompt]
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise UnsupportedParameter(
            "prompt must be a string or a list of strings; token-id prompts are not supported "
            "because this model uses its own tokenizer",
            param="prompt",
        )
    if body.suffix:
        raise UnsupportedParameter(
            "suffix (insertion) is not supported by this model", param="suffix"
        )
    n = body.n or 1
    if body.best_of is not None and body.best_of != n:
        raise UnsupportedParameter(
            "best_of must equal n (server-side best-of is not supported)", param="best_of"
        )
    logprobs = body.logprobs is not None
    sampling = _sampling(body, body.max_tokens, logprobs, body.logprobs or 0)
    extra = _extra(body)
    return [
        CompletionRequest(
            model=body.model,
            prompt=str(p),
            sampling=sampling,
            n=n,
            echo=bool(body.echo),
            user=body.user,
            extra=extra,
        )
        for p in prompts
    ]


def embed_request(body: EmbeddingRequestWire) -> EmbedRequest:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise InvalidRequest("input must not be empty", param="input")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise UnsupportedParameter(
                "token-id input is not supported: send text (this model uses its own tokenizer)",
                param="input",
            )
        if not text:
            raise InvalidRequest(f"input[{i}] is an empty string", param="input")
    if len(texts) > 2048:
        raise InvalidRequest(f"at most 2048 inputs per request, got {len(texts)}", param="input")
    return EmbedRequest(
        model=body.model,
        texts=tuple(str(t) for t in texts),
        dimensions=body.dimensions,
        user=body.user,
        extra=_extra(body),
    )


def _extra(body: BaseModel) -> Mapping[str, Any]:
    """The top-level fields the client sent that the wire model does not know."""
    return dict(body.model_extra or {})


def _sampling(
    body: SamplingFields, max_tokens: int | None, logprobs: bool, top_logprobs: int
) -> Sampling:
    stop: tuple[str, ...] = ()
    if isinstance(body.stop, str):
        stop = (body.stop,)
    elif body.stop:
        stop = tuple(body.stop)
    return Sampling(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=body.top_k or 0,
        min_p=body.min_p or 0.0,
        max_tokens=max_tokens,
        stop=stop,
        seed=body.seed,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        repeat_penalty=body.repeat_penalty or 1.0,
        logit_bias=_logit_bias(body.logit_bias),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        repetition_guard=not (body.offramp and body.offramp.repetition_guard is False),
    )


def _logit_bias(raw: dict[str, float] | None) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in (raw or {}).items():
        try:
            out[int(key)] = value
        except ValueError as exc:
            raise InvalidRequest(
                f"logit_bias keys must be token ids, got {key!r}", param="logit_bias"
            ) from exc
    return out


def _message(i: int, m: ChatMessage) -> Message:
    content: str | None
    if isinstance(m.content, list):
        parts = []
        for j, part in enumerate(m.content):
            if isinstance(part, OtherPart):
                raise UnsupportedParameter(
                    f"content parts of type {part.type!r} are not supported by this model; "
                    "send text parts only",
                    param=f"messages[{i}].content[{j}]",
                )
            parts.append(part.text)
        content = "\n".join(parts)
    else:
        content = m.content
    if m.role == "tool" and not m.tool_call_id:
        raise InvalidRequest(
            "a tool message needs tool_call_id", param=f"messages[{i}].tool_call_id"
        )
    if content is None and not m.tool_calls:
        raise InvalidRequest("message content must not be null", param=f"messages[{i}].content")
    calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or [])
    role = "system" if m.role == "developer" else m.role
    return Message(
        role=role, content=content, name=m.name, tool_calls=calls, tool_call_id=m.tool_call_id
    )


def _tool(name: str, description: str | None, parameters: dict[str, Any] | None) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description or "",
        parameters=parameters or {"type": "object", "properties": {}},
    )


def _tool_choice(body: ChatCompletionRequest, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    raw = body.tool_choice
    if raw is None:
        return ToolChoice("auto" if tools else "none")
    if not tools and raw != "none":
        raise InvalidRequest("tool_choice is set but no tools were given", param="tool_choice")
    if isinstance(raw, NamedToolChoice):
        if raw.function.name not in {t.name for t in tools}:
            raise InvalidRequest(
                f"tool_choice names {raw.function.name!r}, which is not in tools",
                param="tool_choice",
            )
        return ToolChoice("named", raw.function.name)
    return ToolChoice(raw)


def _output(body: ChatCompletionRequest) -> OutputFormat:
    rf = body.response_format
    if rf is None or rf.type == "text":
        return OutputFormat()
    if rf.type == "json_object":
        return OutputFormat("json_object")
    if rf.json_schema is None or rf.json_schema.schema_ is None:
        raise InvalidRequest(
            "response_format json_schema needs json_schema.schema",
            param="response_format.json_schema.schema",
        )
    return OutputFormat("json_schema", rf.json_schema.schema_, rf.json_schema.name)
