"""``/v1/responses``: create (whole or streamed), retrieve, delete, list input items.

A response is a chat request through the gateway (endpoint ``responses`` in the ledger
and metrics). With ``store`` (the default) it is kept in the ledger database for its
key, so it can be retrieved, deleted, listed and continued by ``previous_response_id``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of, stored_responses_of
from offramp.api.responses import JSONResponse
from offramp.api.responses_api import translate
from offramp.api.responses_api.events import ResponseEvents
from offramp.api.responses_api.protocol import ResponsesRequest
from offramp.api.responses_api.translate import Json, Shape
from offramp.api.routing_headers import cost_comment, routing_headers
from offramp.api.streaming import start_sse, until_disconnect
from offramp.cache.responses import StreamAssembler
from offramp.errors import UnsupportedParameter
from offramp.gateway.accounting import Caller
from offramp.ledger.stored_responses import StoredResponse, StoredResponses
from offramp.types import CompletionResult, StreamEnd, StreamItem

router = APIRouter()
ENDPOINT = "responses"  # the ledger's and metrics' name of this door


@router.post("/v1/responses", response_model=None)
async def create_response(
    body: ResponsesRequest, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    started = time.perf_counter()
    gateway = gateway_of(request)
    stored = stored_responses_of(request)
    history: list[Json] = []
    if body.previous_response_id is not None:
        previous = await stored.get(body.previous_response_id, caller.partition)
        history = [*previous.context, *previous.response["output"]]
    new = translate.input_items(body)
    chat = translate.chat_request(body, history, new)
    shape = Shape(translate.new_id("resp"), int(time.time()), translate.new_id("msg"), body)
    keeper = _Keeper(stored, caller, shape, [*history, *new]) if body.store is not False else None
    if body.stream:
        stream = await until_disconnect(request, gateway.stream_chat(caller, chat, ENDPOINT))
        events = ResponseEvents(shape)
        items = stream.value if keeper is None else keeper.kept(stream.value, body.model)
        outcome = stream.outcome
        headers = routing_headers([outcome], started)
        return await start_sse(
            request, items, events.render, headers, lambda: cost_comment(outcome),
            failed=events.failed, done=b"",
        )  # fmt: skip
    done = await until_disconnect(request, gateway.chat(caller, chat, ENDPOINT))
    whole = _whole(shape, done.result)
    if keeper is not None:
        await keeper.keep(whole)
    headers = routing_headers(done.outcomes, started, done.usages)
    return JSONResponse(whole, headers=headers)


@router.get("/v1/responses/{response_id}", response_model=None)
async def retrieve_response(
    response_id: str, request: Request, caller: Caller = Depends(caller_of), stream: bool = False
) -> Response:
    if stream:
        raise UnsupportedParameter(
            "replaying a stored response as a stream is not supported; retrieve it whole",
            param="stream",
        )
    found = await stored_responses_of(request).get(response_id, caller.partition)
    return JSONResponse(found.response)


@router.delete("/v1/responses/{response_id}", response_model=None)
async def delete_response(
    response_id: str, request: Request, caller: Caller = Depends(caller_of)
) -> Response:
    await stored_responses_of(request).delete(response_id, caller.partition)
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get("/v1/responses/{response_id}/input_items", response_model=None)
async def list_input_items(
    response_id: str,
    request: Request,
    caller: Caller = Depends(caller_of),
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    """The input items the response saw (those of the responses it continued included),
    newest first unless ``order=asc``, ``limit`` at a time after the item ``after``."""
    found = await stored_responses_of(request).get(response_id, caller.partition)
    items = found.context if order == "asc" else found.context[::-1]
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


def _whole(shape: Shape, result: CompletionResult) -> Json:
    output = translate.output_items(shape, result)
    status = translate.finished_status(result)
    return translate.response_object(shape, status, output, result.usage)


class _Keeper:
    """Stores a finished response with the input items it answered."""

    def __init__(self, stored: StoredResponses, caller: Caller, shape: Shape, context: list[Json]):
        self._stored = stored
        self._caller = caller
        self._shape = shape
        self._context = context

    async def keep(self, whole: Json) -> None:
        shape = self._shape
        await self._stored.save(
            StoredResponse(
                id=shape.id,
                owner=self._caller.partition,
                created_at=time.time(),
                model=shape.body.model,
                previous_id=shape.body.previous_response_id,
                response=whole,
                context=self._context,
                request_id=self._caller.request_id,
            )
        )

    async def kept(self, items: AsyncIterator[StreamItem], model: str) -> AsyncIterator[StreamItem]:
        """``items`` passed on; the whole response is stored before the stream's end is
        (so a client that reads ``response.completed`` can retrieve it at once)."""
        whole = StreamAssembler(model)
        try:
            async for item in items:
                whole.add(item)
                if isinstance(item, StreamEnd):
                    result = whole.result()
                    if result is not None:
                        await self.keep(_whole(self._shape, result))
                yield item
        finally:
            await items.aclose()  # type: ignore[attr-defined]
