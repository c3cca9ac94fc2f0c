"""``GET /health`` (the process answers) and ``GET /ready`` (its models are loaded and it is
not draining toward a stop)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from offramp.api.deps import pool_of
from offramp.api.responses import JSONResponse

router = APIRouter()


@router.get("/health")
async def health() -> JSONResponse:
    """200 as soon as the server listens, models loaded or not."""
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """200 once every configured model is loaded; 503 while they load (``loading``) or
    after one failed to (``failed``, with the error)."""
    pool = pool_of(request)
    models = {spec.name: pool.loaded(spec.name) for spec in pool.models.specs}
    draining = request.app.state.drain.draining
    is_ready = bool(request.app.state.ready) and all(models.values()) and not draining
    error = request.app.state.load_error
    body: dict[str, object] = {"status": "ready", "models": models}
    if draining:
        body["status"] = "draining"
    elif not is_ready:
        body["status"] = "failed" if error else "loading"
        if error:
            body["error"] = error
    return JSONResponse(body, status_code=200 if is_ready else 503)
