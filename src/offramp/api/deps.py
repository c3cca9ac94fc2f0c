"""What routes need from the running app, looked up on the request (no globals)."""

from __future__ import annotations

from fastapi import Request

from offramp.services.pool import ModelPool


def pool_of(request: Request) -> ModelPool:
    pool: ModelPool = request.app.state.pool
    return pool
