"""``POST /v1/batch``: many chat or task requests in one call (seed 004's batch endpoint).

Requests run at most ``batch_concurrency`` at a time and answer in order. Each result
holds the status code and the body the request would have had on its own endpoint (the
error envelope when it failed); one failure never fails the others. Each item goes
through the gateway as a request of its own: the key's model policy, its RPM/TPM and
budget, the cache, and one ledger record per item (request id ``<batch id>-<index>``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of
from offramp.api.errors import validation_error
from offramp.api.openai import translate
from offramp.api.openai.chat import completion_body
from offramp.api.openai.protocol import ChatCompletionRequest
from offramp.api.responses import JSONResponse
from offramp.api.streaming import until_disconnect
from offramp.api.tasks import TaskRunRequest
from offramp.errors import InvalidRequest, OfframpError
from offramp.gateway.accounting import Caller
from offramp.gateway.gateway import Gateway
from offramp.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()


class BatchItem(BaseModel):
    """One request of a batch: a chat completion body, or a task name and its body."""

    model_config = ConfigDict(extra="forbid")

    custom_id: Annotated[str, Field(max_length=128)] | None = None
    type: Literal["chat", "task"]
    task: str | None = Field(default=None, description="The task to run (type `task`).")
    body: dict[str, Any]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: Annotated[list[BatchItem], Field(min_length=1)]
    concurrency: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="At most this many at once (capped by the server's setting)."
    )


@router.post("/v1/batch")
async def run_batch(
    body: BatchRequest, request: Request, caller: Caller = Depends(caller_of)
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    gateway = gateway_of(request)
    if len(body.requests) > settings.batch_max_requests:
        raise InvalidRequest(
            f"a batch holds at most {settings.batch_max_requests} requests, "
            f"got {len(body.requests)}",
            param="requests",
        )
    limit = min(body.concurrency or settings.batch_concurrency, settings.batch_concurrency)
    gate = asyncio.Semaphore(limit)

    async def guarded(index: int, item: BatchItem) -> dict[str, Any]:
        async with gate:
            status, out = await _answer(gateway, caller.item(index), item)
        return {"index": index, "custom_id": item.custom_id, "status_code": status, "body": out}

    work = asyncio.gather(*(guarded(i, item) for i, item in enumerate(body.requests)))
    results = await until_disconnect(request, work)
    failed = sum(1 for r in results if r["status_code"] >= 400)
    return JSONResponse(
        {
            "object": "batch.result",
            "results": results,
            "succeeded": len(results) - failed,
            "failed": failed,
        }
    )


async def _answer(gateway: Gateway, caller: Caller, item: BatchItem) -> tuple[int, Any]:
    """(status code, body) of one item; every failure becomes its own error envelope."""
    try:
        if item.type == "chat":
            return 200, await _chat(gateway, caller, item.body)
        if not item.task:
            raise InvalidRequest("a task request names its `task`", param="task")
        call = TaskRunRequest.model_validate(item.body).call()
        outcome = await gateway.run_task(caller, item.task, call)
        return 200, outcome.body()
    except ValidationError as exc:
        invalid = validation_error(RequestValidationError(exc.errors()))
        return invalid.status_code, invalid.envelope()
    except OfframpError as exc:
        if exc.status_code >= 500:
            log.error("batch request failed: %s", exc.message)
        return exc.status_code, exc.envelope()
    except Exception as exc:
        log.exception("batch request failed unexpectedly")
        error = OfframpError(f"internal error: {type(exc).__name__}")
        return error.status_code, error.envelope()


async def _chat(gateway: Gateway, caller: Caller, raw: dict[str, Any]) -> dict[str, Any]:
    body = ChatCompletionRequest.model_validate(raw)
    if body.stream:
        raise InvalidRequest("requests in a batch cannot stream", param="stream")
    repaired = await gateway.chat(caller, translate.chat_request(body))
    return completion_body(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), repaired.result)
