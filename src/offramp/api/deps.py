"""What routes need from the running app, looked up on the request (no globals)."""

from __future__ import annotations

from fastapi import Request

from offramp.gateway.gateway import Gateway
from offramp.gateway.runtime import Runtime
from offramp.local.pool import ModelPool
from offramp.tasks.engine import TaskEngine


def pool_of(request: Request) -> ModelPool:
    pool: ModelPool = request.app.state.runtime.pool
    return pool


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def gateway_of(request: Request) -> Gateway:
    """The one gateway every door calls."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def tasks_of(request: Request) -> TaskEngine:
    """The task engine, for its catalogue (runs go through the gateway)."""
    engine = gateway_of(request).tasks
    assert engine is not None, "the app always builds its task engine"
    return engine
