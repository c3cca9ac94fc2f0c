"""What routes need from the running app, looked up on the request (no globals)."""

from __future__ import annotations

from fastapi import Request

from offramp.services.pool import ModelPool
from offramp.services.runtime import Runtime
from offramp.tasks.engine import TaskEngine


def pool_of(request: Request) -> ModelPool:
    pool: ModelPool = request.app.state.runtime.pool
    return pool


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def tasks_of(request: Request) -> TaskEngine:
    engine: TaskEngine = request.app.state.tasks
    return engine
