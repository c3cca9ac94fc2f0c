"""``POST /v1/completions``: the legacy text completion endpoint."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of
from offramp.api.openai import translate
from offramp.api.openai.protocol import CompletionRequestWire
from offramp.api.responses import JSONResponse
from offramp.api.routing_headers import (
    cost_comment,
    notice_comment,
    notice_headers,
    routing_headers,
)
from offramp.api.streaming import sse, start_sse, until_disconnect
from offramp.errors import UnsupportedParameter
from offramp.gateway.accounting import Caller
from offramp.types import ChoiceDelta, CompletionResult, Notices, StreamItem, TokenLogprob, Usage

router = APIRouter()


@router.post("/v1/completions", response_model=None)
async def create_completion(
    body: CompletionRequestWire, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    started = time.perf_counter()
    gateway = gateway_of(request)
    requests = translate.completion_requests(body)
    completion_id = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    base = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": body.model,
    }
    if body.stream:
        if len(requests) > 1:
            raise UnsupportedParameter("streaming takes one prompt per request", param="prompt")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = await until_disconnect(request, gateway.stream_complete(caller, requests[0]))
        outcome = stream.outcome
        frames = _StreamRenderer(base, include_usage)
        return await start_sse(
            request,
            stream.value,
            frames.render,
            routing_headers([outcome], started),
            lambda: cost_comment(outcome) + notice_comment(frames.notices),
        )
    routed = await until_disconnect(request, gateway.complete(caller, requests))
    results = [r.value for r in routed]
    headers = routing_headers([r.outcome for r in routed], started, [r.usage for r in results])
    for result in results:
        headers.update(notice_headers(result.notices))
    return JSONResponse({**base, **_merge(results, requests[0].n)}, headers=headers)


def _merge(results: list[CompletionResult], n: int) -> dict[str, Any]:
    choices = []
    total = Usage()
    for p, result in enumerate(results):
        total.prompt_tokens += result.usage.prompt_tokens
        total.completion_tokens += result.usage.completion_tokens
        for c in result.choices:
            choices.append(
                {
                    "index": p * n + c.index,
                    "text": c.text or "",
                    "logprobs": _logprobs(c.logprobs) if c.logprobs is not None else None,
                    "finish_reason": c.finish_reason,
                }
            )
    return {"choices": choices, "usage": translate.usage(total)}


def _logprobs(lps: tuple[TokenLogprob, ...]) -> dict[str, Any]:
    offsets, pos = [], 0
    for lp in lps:
        offsets.append(pos)
        pos += len(lp.token)
    return {
        "tokens": [lp.token for lp in lps],
        "token_logprobs": [lp.logprob for lp in lps],
        "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in lps],
        "text_offset": offsets,
    }


class _StreamRenderer:
    def __init__(self, base: dict[str, Any], include_usage: bool):
        self._base = base
        self._include_usage = include_usage
        self.notices: Notices = {}  # the stream's, known at its end

    def render(self, item: StreamItem) -> list[bytes]:
        if isinstance(item, ChoiceDelta):
            choice = {
                "index": item.index,
                "text": item.text,
                "logprobs": _logprobs(item.logprobs) if item.logprobs else None,
                "finish_reason": item.finish_reason,
            }
            return [sse({**self._base, "choices": [choice]})]
        self.notices = item.notices
        if self._include_usage:
            return [sse({**self._base, "choices": [], "usage": translate.usage(item.usage)})]
        return []
