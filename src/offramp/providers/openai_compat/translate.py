"""Pure translation between offramp's domain types and OpenAI's wire format, as an
upstream speaks it: request bodies out; whole answers, stream chunks and embeddings in.

Nothing here touches the network. Request fields the domain does not model travel in the
request's ``extra`` and are copied into the body verbatim. A payload that does not follow
the format raises the error ``failures.malformed`` builds (via ``Malformed``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    FinishReason,
    Message,
    OutputFormat,
    Sampling,
    StreamEnd,
    StreamItem,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    TopLogprob,
    Usage,
)

Json = dict[str, Any]


class Malformed(ValueError):
    """An upstream payload does not follow OpenAI's format."""


@dataclass(frozen=True)
class Dialect:
    """What differs between OpenAI-compatible servers."""

    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    embed_encoding: Literal["float", "base64"] = "float"


# ----- requests -------------------------------------------------------------------------


def chat_body(request: ChatRequest, model: str, dialect: Dialect, *, stream: bool) -> Json:
    """The ``/chat/completions`` body; streams always ask for usage (costs need it)."""
    body: Json = {"model": model, "messages": [_message(m) for m in request.messages]}
    _sampling(body, request.sampling, dialect.max_tokens_field)
    if request.sampling.logprobs:
        body["logprobs"] = True
        if request.sampling.top_logprobs:
            body["top_logprobs"] = request.sampling.top_logprobs
    if request.n != 1:
        body["n"] = request.n
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    response_format = _response_format(request.output)
    if response_format is not None:
        body["response_format"] = response_format
    body.update(request.hints)
    return _finish(body, request.user, request.extra, stream)


def completion_body(request: CompletionRequest, model: str, *, stream: bool) -> Json:
    """The legacy ``/completions`` body for one prompt."""
    body: Json = {"model": model, "prompt": request.prompt}
    _sampling(body, request.sampling, "max_tokens")
    if request.sampling.logprobs:
        body["logprobs"] = request.sampling.top_logprobs
    if request.n != 1:
        body["n"] = request.n
    if request.echo:
        body["echo"] = True
    return _finish(body, request.user, request.extra, stream)


def embed_body(request: EmbedRequest, model: str, dialect: Dialect) -> Json:
    """The ``/embeddings`` body."""
    body: Json = {
        "model": model,
        "input": list(request.texts),
        "encoding_format": dialect.embed_encoding,
    }
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return _finish(body, request.user, request.extra, False)


def _finish(body: Json, user: str | None, extra: Mapping[str, Any], stream: bool) -> Json:
    if user is not None:
        body["user"] = user
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body


_DEFAULTS = Sampling()
# (domain field, wire field) sent only when they differ from the default.
_SAMPLING_FIELDS = (
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("min_p", "min_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
    ("repeat_penalty", "repeat_penalty"),
)


def _sampling(body: Json, s: Sampling, max_tokens_field: str) -> None:
    for name, wire in _SAMPLING_FIELDS:
        value = getattr(s, name)
        if value != getattr(_DEFAULTS, name):
            body[wire] = value
    if s.max_tokens is not None:
        body[max_tokens_field] = s.max_tokens
    if s.stop:
        body["stop"] = list(s.stop)
    if s.logit_bias:
        body["logit_bias"] = {str(k): v for k, v in s.logit_bias.items()}


def _message(m: Message) -> Json:
    out: Json = {"role": m.role, "content": m.content}
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _tool_choice(choice: ToolChoice) -> Any:
    if choice.mode == "named":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _response_format(output: OutputFormat) -> Json | None:
    if output.kind == "text":
        return None
    if output.kind == "json_object":
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": output.name or "output", "schema": output.schema},
    }


# ----- whole answers --------------------------------------------------------------------


def chat_result(payload: Any) -> CompletionResult:
    """A ``chat.completion`` object as a domain result."""
    try:
        choices: list[Choice] = []
        for c in payload["choices"]:
            message = c.get("message") or {}
            choices.append(
                Choice(
                    index=int(c.get("index", len(choices))),
                    text=message.get("content"),
                    finish_reason=finish_reason(c.get("finish_reason")),
                    tool_calls=tuple(_tool_call(t) for t in message.get("tool_calls") or ()),
                    logprobs=_chat_logprobs(c.get("logprobs")),
                )
            )
        return CompletionResult(str(payload.get("model", "")), tuple(choices), usage(payload))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Malformed(f"chat completion: {exc!r}") from exc


def completion_result(payload: Any) -> CompletionResult:
    """A ``text_completion`` object as a domain result."""
    try:
        choices = tuple(
            Choice(
                index=int(c.get("index", i)),
                text=str(c.get("text") or ""),
                finish_reason=finish_reason(c.get("finish_reason")),
                logprobs=_text_logprobs(c.get("logprobs")),
            )
            for i, c in enumerate(payload["choices"])
        )
        return CompletionResult(str(payload.get("model", "")), choices, usage(payload))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Malformed(f"completion: {exc!r}") from exc


def embed_result(payload: Any, model: str) -> EmbedResult:
    """An embeddings list (float lists or base64 little-endian float32) as vectors."""
    try:
        rows = sorted(payload["data"], key=lambda d: int(d.get("index", 0)))
        vectors = [_vector(row["embedding"]) for row in rows]
        matrix = np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
        tokens = int((payload.get("usage") or {}).get("prompt_tokens", 0))
        return EmbedResult(str(payload.get("model") or model), matrix, tokens)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Malformed(f"embeddings: {exc!r}") from exc


def _vector(raw: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
    if isinstance(raw, str):
        return np.frombuffer(base64.b64decode(raw), dtype="<f4").astype(np.float32)
    return np.asarray(raw, dtype=np.float32)


def usage(payload: Mapping[str, Any]) -> Usage:
    """The usage block of a response or final stream chunk (zeros when absent)."""
    raw = payload.get("usage") or {}
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(raw: Any) -> FinishReason:
    """OpenAI's finish reasons; anything unknown (or null) ends as ``stop``."""
    return _FINISH.get(raw, "stop")


def _tool_call(raw: Mapping[str, Any]) -> ToolCall:
    function = raw["function"]
    return ToolCall(str(raw.get("id", "")), str(function["name"]), str(function["arguments"]))


def _chat_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not raw or raw.get("content") is None:
        return None
    return tuple(
        TokenLogprob(
            token=lp["token"],
            logprob=float(lp["logprob"]),
            bytes=tuple(lp.get("bytes") or lp["token"].encode()),
            top=tuple(
                TopLogprob(t["token"], float(t["logprob"]), tuple(t.get("bytes") or ()))
                for t in lp.get("top_logprobs") or ()
            ),
        )
        for lp in raw["content"]
    )


def _text_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not raw:
        return None
    tokens: Sequence[str] = raw["tokens"]
    values: Sequence[float] = raw["token_logprobs"]
    tops: Sequence[Mapping[str, float] | None] = raw.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(
            token=tok,
            logprob=float(value or 0.0),
            bytes=tuple(tok.encode()),
            top=tuple(TopLogprob(t, float(v), tuple(t.encode())) for t, v in (top or {}).items()),
        )
        for tok, value, top in zip(tokens, values, tops, strict=False)
    )


# ----- streams --------------------------------------------------------------------------


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamDecoder:
    """Turns parsed stream chunks into domain stream items.

    ``kind`` "chat" reads ``delta.content`` and gathers tool-call fragments (a choice's
    calls are emitted whole with its finish reason); "text" reads ``text``. Role-only
    chunks produce nothing. An ``{"error": ...}`` chunk raises ``StreamFailed``.
    """

    def __init__(self, kind: Literal["chat", "text"]):
        self._chat = kind == "chat"
        self._usage = Usage()
        self._calls: dict[int, dict[int, _PartialCall]] = {}

    def feed(self, chunk: Any) -> list[StreamItem]:
        try:
            if chunk.get("error"):
                raise StreamFailed(chunk["error"])
            if chunk.get("usage"):
                self._usage = usage(chunk)
            return [d for c in chunk.get("choices") or () if (d := self._delta(c)) is not None]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Malformed(f"stream chunk: {exc!r}") from exc

    def end(self) -> StreamEnd:
        return StreamEnd(self._usage)

    def _delta(self, c: Mapping[str, Any]) -> ChoiceDelta | None:
        index = int(c.get("index", 0))
        raw_finish = c.get("finish_reason")
        finish = finish_reason(raw_finish) if raw_finish is not None else None
        if self._chat:
            delta = c.get("delta") or {}
            text = delta.get("content") or ""
            self._gather(index, delta.get("tool_calls") or ())
            logprobs = _chat_logprobs(c.get("logprobs"))
        else:
            text = c.get("text") or ""
            logprobs = _text_logprobs(c.get("logprobs"))
        calls: tuple[ToolCall, ...] = ()
        if finish is not None and index in self._calls:
            calls = self._complete_calls(index)
        if not (text or calls or logprobs or finish):
            return None
        return ChoiceDelta(index, text, calls, logprobs, finish)

    def _gather(self, index: int, fragments: Sequence[Mapping[str, Any]]) -> None:
        for frag in fragments:
            partial = self._calls.setdefault(index, {}).setdefault(
                int(frag.get("index", 0)), _PartialCall()
            )
            partial.id = frag.get("id") or partial.id
            function = frag.get("function") or {}
            partial.name = function.get("name") or partial.name
            partial.arguments.append(function.get("arguments") or "")

    def _complete_calls(self, index: int) -> tuple[ToolCall, ...]:
        calls = self._calls.pop(index)
        return tuple(ToolCall(p.id, p.name, "".join(p.arguments)) for _, p in sorted(calls.items()))


class StreamFailed(Exception):
    """An error event arrived inside a 200 stream; ``error`` is its payload."""

    def __init__(self, error: Any):
        super().__init__(str(error))
        self.error = error
