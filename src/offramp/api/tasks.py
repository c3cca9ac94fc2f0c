"""``/v1/tasks``: list the tasks with their schemas, run one whole or streamed (SSE).

A stream carries ``{"type": "delta", "attempt", "content"}`` events as the model
writes, ``{"type": "rejected", "attempt", "problems"}`` when an attempt fails
validation (the next one repairs it), then one ``{"type": "result", ...}`` event with
the validated result and its metadata, then ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from offramp.api.deps import tasks_of
from offramp.api.responses import JSONResponse
from offramp.api.streaming import sse, start_sse, until_disconnect
from offramp.services.structured import Delta, Rejected
from offramp.tasks.engine import TaskCall, TaskEvent

router = APIRouter()


class TaskRunRequest(BaseModel):
    """The body of ``POST /v1/tasks/{name}``."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(description="The task's input, per its input_schema.")
    model: str | None = Field(default=None, description="Overrides the task's model.")
    max_attempts: Annotated[int, Field(ge=1, le=10)] | None = Field(
        default=None, description="Overrides the task's bound on attempts."
    )

    def call(self) -> TaskCall:
        return TaskCall(self.input, self.model, self.max_attempts)


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
) -> Response:
    engine = tasks_of(request)
    if stream:
        return await start_sse(request, engine.events(name, body.call(), stream=True), render)
    outcome = await until_disconnect(request, engine.run(name, body.call()))
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
