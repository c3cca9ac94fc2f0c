"""The console's Tasks page: the catalogue with each task's schemas, and a run of one
with an input typed into the page: the admin's, through the gateway like any other call
(recorded in the ledger as a ``task`` request without a key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from offramp.api.deps import gateway_of, tasks_of
from offramp.api.responses import JSONResponse
from offramp.console.access import admin_change, signed_in
from offramp.gateway.accounting import Caller
from offramp.tasks.engine import TaskCall

router = APIRouter(prefix="/console/api/tasks")


class TryTask(BaseModel):
    """The body of a run from the Tasks page."""

    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] = Field(description="The task's input, per its input_schema.")
    model: str | None = Field(default=None, min_length=1, description="Overrides the model.")


@router.get("", dependencies=[Depends(signed_in)])
async def list_tasks(request: Request) -> JSONResponse:
    tasks = tasks_of(request).catalog.all()
    return JSONResponse({"data": [t.spec.listing() for t in tasks]})


@router.post("/{name}", dependencies=[Depends(admin_change)])
async def try_task(name: str, body: TryTask, request: Request) -> JSONResponse:
    caller = Caller(getattr(request.state, "request_id", None) or "console")
    call = TaskCall(body.input, body.model, None, None)
    outcome = await gateway_of(request).run_task(caller, name, call)
    return JSONResponse(outcome.body())
