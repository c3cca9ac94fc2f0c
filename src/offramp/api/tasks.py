"""``/v1/tasks``: list the tasks with their schemas, run one whole or streamed (SSE).

A stream carries ``{"type": "delta", "attempt", "content"}`` events as the model
writes, ``{"type": "rejected", "attempt", "problems"}`` when an attempt fails
validation (the next one repairs it), then one ``{"type": "result", ...}`` event with
the validated result and its metadata, then ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of, tasks_of
from offramp.api.fields import MODEL_NAME_MAX, USER_MAX
from offramp.api.responses import JSONResponse
from offramp.api.streaming import sse, start_sse, until_disconnect
from offramp.gateway.accounting import Caller
from offramp.structured.repair import Delta, Rejected
from offramp.tasks.engine import TaskCall, TaskEvent

router = APIRouter()


class TaskRunRequest(BaseModel):
    """The body of ``POST /v1/tasks/{name}``."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(description="The task's input, per its input_schema.")
    model: Annotated[str, Field(min_length=1, max_length=MODEL_NAME_MAX)] | None = Field(
        default=None, description="Overrides the task's model."
    )
    max_attempts: Annotated[int, Field(ge=1, le=10, strict=True)] | None = Field(
        default=None, description="Overrides the task's bound on attempts."
    )
    user: Annotated[str, Field(max_length=USER_MAX)] | None = Field(
        default=None,
        description="The end user the run is for; task sessions belong to the key and user.",
    )

    def call(self) -> TaskCall:
        return TaskCall(self.input, self.model, self.max_attempts, self.user)


@router.get("/v1/tasks")
async def list_tasks(request: Request) -> JSONResponse:
    tasks = tasks_of(request).catalog.all()
    return JSONResponse({"object": "list", "data": [t.spec.listing() for t in tasks]})


@router.get("/v1/tasks/{name}")
async def get_task(name: str, request: Request) -> JSONResponse:
    return JSONResponse(tasks_of(request).catalog.get(name).spec.listing())


@router.post("/v1/tasks/{name}", response_model=None)
async def run_task(
    name: str,
    body: TaskRunRequest,
    request: Request,
    stream: Annotated[bool, Query(description="Stream SSE events.")] = False,
    caller: Caller = Depends(caller_of),
) -> Response:
    gateway = gateway_of(request)
    if stream:
        events = gateway.task_events(caller, name, body.call(), stream=True)
        return await start_sse(request, events, render)
    outcome = await until_disconnect(request, gateway.run_task(caller, name, body.call()))
    return JSONResponse(outcome.body())


def render(event: TaskEvent) -> list[bytes]:
    """One SSE frame per task event."""
    if isinstance(event, Delta):
        return [sse({"type": "delta", "attempt": event.attempt, "content": event.text})]
    if isinstance(event, Rejected):
        return [
            sse({"type": "rejected", "attempt": event.attempt, "problems": list(event.problems)})
        ]
    return [sse({"type": "result", **event.body()})]
