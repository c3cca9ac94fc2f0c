"""``GET /health`` (the process answers) and ``GET /ready`` (its models are loaded and it is
not draining toward a stop)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from offramp.api.deps import pool_of
from offramp.api.responses import JSONResponse

router = APIRouter()


@router.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    pool = pool_of(request)
    models = {spec.name: pool.loaded(spec.name) for spec in pool.models.specs}
    draining = request.app.state.drain.draining
    is_ready = bool(request.app.state.ready) and all(models.values()) and not draining
    status = "draining" if draining else "ready" if is_ready else "loading"
    return JSONResponse({"status": status, "models": models}, status_code=200 if is_ready else 503)
