"""Pure translation between OpenAI wire models and offramp's domain types.

Every parameter is either honoured, passed on as a hint that changes nothing for a local
model, or refused with a 400 that names it. JSON schemas (``response_format``, tool
parameters) are checked by ``offramp.schemas.check_schema``. The legacy ``functions`` /
``function_call`` (and ``function`` messages, assistant ``function_call``) become tools,
tool choices and tool messages.
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
    NamedFunction,
    NamedToolChoice,
    OtherPart,
    SamplingFields,
    ToolCallWire,
)
from offramp.errors import InvalidRequest, UnsupportedParameter, quoted
from offramp.schemas import check_schema
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
    tools = _tools(body)
    choice = _tool_choice(body, tools)
    return ChatRequest(
        model=body.model,
        messages=_messages(body.messages),
        sampling=_sampling(body, max_tokens, bool(body.logprobs), body.top_logprobs or 0),
        n=body.n or 1,
        output=_output(body),
        tools=tools,
        tool_choice=choice,
        user=body.user,
        parallel_tool_calls=body.parallel_tool_calls,
        extra=_extra(body),
        hints=_hints(body),
    )


def _hints(body: ChatCompletionRequest) -> dict[str, Any]:
    """The hint fields the client set, as JSON (none: no dump of the whole model)."""
    present = {name for name in body.HINTS if getattr(body, name) is not None}
    return body.model_dump(mode="json", include=present, exclude_none=True) if present else {}


def uses_functions(body: ChatCompletionRequest) -> bool:
    """Whether the request uses the legacy ``functions``, so the answer should use
    ``function_call`` (as OpenAI's does) rather than ``tool_calls``."""
    return body.functions is not None


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
                f"logit_bias keys must be token ids, got {quoted(key)}", param="logit_bias"
            ) from exc
    return out


def _messages(wire: list[ChatMessage]) -> tuple[Message, ...]:
    """Domain messages; legacy function calls and results get ids that pair them."""
    out = []
    last_call: dict[str, str] = {}
    for i, m in enumerate(wire):
        if m.function_call is not None:
            if m.role != "assistant":
                raise InvalidRequest(
                    "only an assistant message carries a function_call",
                    param=f"messages[{i}].function_call",
                )
            if m.tool_calls:
                raise InvalidRequest(
                    "send tool_calls or function_call, not both",
                    param=f"messages[{i}].function_call",
                )
            call_id = f"call_legacy_{i}"
            last_call[m.function_call.name] = call_id
            calls = [ToolCallWire(id=call_id, function=m.function_call)]
            m = m.model_copy(update={"function_call": None, "tool_calls": calls})
        elif m.role == "function":
            if not m.name:
                raise InvalidRequest(
                    "a function message needs the function's name", param=f"messages[{i}].name"
                )
            call_id = last_call.get(m.name, f"call_legacy_{i}")
            m = m.model_copy(update={"role": "tool", "tool_call_id": call_id, "name": None})
        out.append(_message(i, m))
    return tuple(out)


def _message(i: int, m: ChatMessage) -> Message:
    content: str | None
    if isinstance(m.content, list):
        parts = []
        for j, part in enumerate(m.content):
            if isinstance(part, OtherPart):
                raise UnsupportedParameter(
                    f"content parts of type {quoted(part.type)} are not supported by this model; "
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
    assert role != "function"  # _messages rewrites them as tool messages
    return Message(
        role=role, content=content, name=m.name, tool_calls=calls, tool_call_id=m.tool_call_id
    )


def _tools(body: ChatCompletionRequest) -> tuple[ToolSpec, ...]:
    if body.functions is not None and body.tools is not None:
        raise InvalidRequest("send tools or the legacy functions, not both", param="functions")
    if body.function_call is not None and body.tool_choice is not None:
        raise InvalidRequest(
            "send tool_choice or the legacy function_call, not both", param="function_call"
        )
    if body.functions is not None:
        specs = [(f, f"functions[{i}].parameters") for i, f in enumerate(body.functions)]
    else:
        specs = [
            (t.function, f"tools[{i}].function.parameters") for i, t in enumerate(body.tools or [])
        ]
    return tuple(
        ToolSpec(
            name=f.name,
            description=f.description or "",
            parameters=check_schema(f.parameters, param)
            if f.parameters is not None
            else {"type": "object", "properties": {}},
        )
        for f, param in specs
    )


def _tool_choice(body: ChatCompletionRequest, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    raw: Any = body.tool_choice
    param = "tool_choice"
    if body.function_call is not None:
        param = "function_call"
        raw = body.function_call
        if isinstance(raw, NamedFunction):
            raw = NamedToolChoice(type="function", function=raw)
    if raw is None:
        return ToolChoice("auto" if tools else "none")
    if not tools and raw != "none":
        raise InvalidRequest(f"{param} is set but no tools were given", param=param)
    if isinstance(raw, NamedToolChoice):
        if raw.function.name not in {t.name for t in tools}:
            raise InvalidRequest(
                f"{param} names {quoted(raw.function.name)}, which is not in tools",
                param=param,
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
    schema = check_schema(rf.json_schema.schema_, "response_format.json_schema.schema")
    return OutputFormat("json_schema", schema, rf.json_schema.name)
