"""``POST /v1/messages`` (whole or streamed) and ``POST /v1/messages/count_tokens``.

A message is a chat request through the gateway (endpoint ``messages`` in the ledger
and metrics); a token count is a metered request that generates nothing. The key comes
from ``x-api-key`` as Anthropic's clients send it, or ``Authorization: Bearer``; the
``anthropic-version`` and ``anthropic-beta`` headers are accepted and change nothing.
Errors on these paths take Anthropic's envelope (``offramp.api.anthropic.errors``).
"""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from offramp.api.anthropic import translate
from offramp.api.anthropic.events import MessageEvents
from offramp.api.anthropic.protocol import CountTokensRequest, MessagesRequest
from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of
from offramp.api.responses import JSONResponse
from offramp.api.routing_headers import cost_comment, routing_headers
from offramp.api.streaming import start_sse, until_disconnect
from offramp.gateway.accounting import Caller

router = APIRouter()
ENDPOINT = "messages"  # the ledger's and metrics' name of this door


@router.post("/v1/messages", response_model=None)
async def create_message(
    body: MessagesRequest, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    started = time.perf_counter()
    gateway = gateway_of(request)
    chat = translate.chat_request(body)
    message_id = f"msg_{secrets.token_hex(12)}"
    if body.stream:
        stream = await until_disconnect(request, gateway.stream_chat(caller, chat, ENDPOINT))
        events = MessageEvents(message_id, body.model)
        outcome = stream.outcome
        headers = routing_headers([outcome], started)
        return await start_sse(
            request, stream.value, events.render, headers, lambda: cost_comment(outcome),
            failed=events.failed, done=b"",
        )  # fmt: skip
    done = await until_disconnect(request, gateway.chat(caller, chat, ENDPOINT))
    headers = routing_headers(done.outcomes, started, done.usages)
    return JSONResponse(
        translate.message_object(message_id, body.model, done.result), headers=headers
    )


@router.post("/v1/messages/count_tokens", response_model=None)
async def count_tokens(
    body: CountTokensRequest, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    chat = translate.count_request(body)
    tokens = await until_disconnect(request, gateway_of(request).count_tokens(caller, chat))
    return JSONResponse({"input_tokens": tokens})
