"""``POST /v1/chat/completions``: wire request in, domain call, wire response or SSE out."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of
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
from offramp.gateway.accounting import Caller
from offramp.types import ChoiceDelta, CompletionResult, Notices, StreamItem, TokenLogprob, ToolCall

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    started = time.perf_counter()
    gateway = gateway_of(request)
    chat = translate.chat_request(body)
    legacy = translate.uses_functions(body)
    completion_id = f"chatcmpl-{os.urandom(16).hex()}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        frames = _ChunkRenderer(completion_id, created, body.model, include_usage, legacy)
        stream = await until_disconnect(request, gateway.stream_chat(caller, chat))
        outcome = stream.outcome
        headers = routing_headers([outcome], started)
        return await start_sse(
            request,
            stream.value,
            frames.render,
            headers,
            lambda: cost_comment(outcome) + notice_comment(frames.notices),
        )
    done = await until_disconnect(request, gateway.chat(caller, chat))
    headers = routing_headers(done.outcomes, started, done.usages)
    headers.update(notice_headers(done.result.notices))
    if chat.output.kind != "text":
        headers["x-offramp-output-attempts"] = str(done.attempts)
    body_out = completion_body(completion_id, created, done.result, legacy=legacy)
    return JSONResponse(body_out, headers=headers)


def completion_body(
    completion_id: str, created: int, result: CompletionResult, *, legacy: bool = False
) -> dict[str, Any]:
    """The ``chat.completion`` object for ``result``; with ``legacy`` (the request used
    ``functions``) a call is a ``function_call``, as OpenAI answers such requests."""
    choices = []
    for c in result.choices:
        message: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None}
        finish: str = c.finish_reason
        if c.tool_calls and legacy:
            message["function_call"] = _function_call(c.tool_calls[0])
            finish = "function_call" if finish == "tool_calls" else finish
        elif c.tool_calls:
            message["tool_calls"] = [_tool_call(t) for t in c.tool_calls]
        choices.append(
            {
                "index": c.index,
                "message": message,
                "logprobs": {"content": [_logprob(lp) for lp in c.logprobs], "refusal": None}
                if c.logprobs is not None
                else None,
                "finish_reason": finish,
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


def _function_call(call: ToolCall) -> dict[str, str]:
    return {"name": call.name, "arguments": call.arguments}


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

    def __init__(
        self, completion_id: str, created: int, model: str, include_usage: bool, legacy: bool
    ):
        self._base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        self._include_usage = include_usage
        self._legacy = legacy
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
        finish: str | None = d.finish_reason
        if d.tool_calls and self._legacy:
            delta["function_call"] = _function_call(d.tool_calls[0])
            finish = "function_call" if finish == "tool_calls" else finish
        elif d.tool_calls:
            delta["tool_calls"] = [_tool_call(t, i) for i, t in enumerate(d.tool_calls)]
        choice = {
            "index": d.index,
            "delta": delta,
            "logprobs": {"content": [_logprob(lp) for lp in d.logprobs], "refusal": None}
            if d.logprobs
            else None,
            "finish_reason": finish,
        }
        chunk: dict[str, Any] = {**self._base, "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return sse(chunk)
