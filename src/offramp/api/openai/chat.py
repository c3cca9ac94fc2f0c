"""``POST /v1/chat/completions``: wire request in, domain call, wire response or SSE out."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from offramp.api.caller import caller_of
from offramp.api.deps import runtime_of
from offramp.api.openai import translate
from offramp.api.openai.protocol import ChatCompletionRequest
from offramp.api.responses import JSONResponse
from offramp.api.routing_headers import (
    cost_comment,
    notice_comment,
    notice_headers,
    routing_headers,
)
from offramp.api.streaming import sse, start_sse, until_disconnect
from offramp.providers.base import StreamItem
from offramp.services import metered
from offramp.services.accounting import Caller
from offramp.types import ChoiceDelta, CompletionResult, Notices, TokenLogprob, ToolCall

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    started = time.perf_counter()
    runtime = runtime_of(request)
    chat = translate.chat_request(body)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        frames = _ChunkRenderer(completion_id, created, body.model, include_usage)
        stream = await until_disconnect(request, metered.stream_chat(runtime, caller, chat))
        outcome = stream.outcome
        headers = routing_headers([outcome], started)
        return await start_sse(
            request,
            stream.value,
            frames.render,
            headers,
            lambda: cost_comment(outcome) + notice_comment(frames.notices),
        )
    attempts = request.app.state.settings.structured_max_attempts
    done = await until_disconnect(request, metered.chat(runtime, caller, chat, attempts))
    headers = routing_headers(done.outcomes, started, done.usages)
    headers.update(notice_headers(done.result.notices))
    if chat.output.kind != "text":
        headers["x-offramp-output-attempts"] = str(done.attempts)
    return JSONResponse(completion_body(completion_id, created, done.result), headers=headers)


def completion_body(completion_id: str, created: int, result: CompletionResult) -> dict[str, Any]:
    """The ``chat.completion`` object for ``result``."""
    choices = []
    for c in result.choices:
        message: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None}
        if c.tool_calls:
            message["tool_calls"] = [_tool_call(t) for t in c.tool_calls]
        choices.append(
            {
                "index": c.index,
                "message": message,
                "logprobs": {"content": [_logprob(lp) for lp in c.logprobs], "refusal": None}
                if c.logprobs is not None
                else None,
                "finish_reason": c.finish_reason,
            }
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "system_fingerprint": None,
        "choices": choices,
        "usage": translate.usage(result.usage),
    }


def _tool_call(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    if index is not None:
        out["index"] = index
    return out


def _logprob(lp: TokenLogprob) -> dict[str, Any]:
    return {
        "token": lp.token,
        "logprob": lp.logprob,
        "bytes": list(lp.bytes),
        "top_logprobs": [
            {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)} for t in lp.top
        ],
    }


class _ChunkRenderer:
    """Turns stream items into ``chat.completion.chunk`` SSE frames."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool):
        self._base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        self._include_usage = include_usage
        self._started: set[int] = set()
        self.notices: Notices = {}  # the stream's, known at its end

    def render(self, item: StreamItem) -> list[bytes]:
        if isinstance(item, ChoiceDelta):
            return [self._delta(item)]
        self.notices = item.notices
        if not self._include_usage:
            return []
        return [sse({**self._base, "choices": [], "usage": translate.usage(item.usage)})]

    def _delta(self, d: ChoiceDelta) -> bytes:
        delta: dict[str, Any] = {}
        if d.index not in self._started:
            self._started.add(d.index)
            delta["role"] = "assistant"
        if d.text or (not d.tool_calls and d.finish_reason is None):
            delta["content"] = d.text
        if d.tool_calls:
            delta["tool_calls"] = [_tool_call(t, i) for i, t in enumerate(d.tool_calls)]
        choice = {
            "index": d.index,
            "delta": delta,
            "logprobs": {"content": [_logprob(lp) for lp in d.logprobs], "refusal": None}
            if d.logprobs
            else None,
            "finish_reason": d.finish_reason,
        }
        chunk: dict[str, Any] = {**self._base, "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return sse(chunk)
