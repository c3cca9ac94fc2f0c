"""``GET /v1/models``: every configured model and alias."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from offramp.api.deps import pool_of
from offramp.api.responses import JSONResponse
from offramp.errors import ModelNotFound
from offramp.models.registry import ModelSpec

router = APIRouter()


def _card(name: str, spec: ModelSpec, created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "offramp",
        "root": spec.name,
        "kind": spec.kind,
        "backend": spec.backend,
        "context_length": spec.context_length,
    }


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    pool = pool_of(request)
    created = request.app.state.started
    data = [_card(name, spec, created) for name, spec in pool.models.names()]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> JSONResponse:
    pool = pool_of(request)
    for name, spec in pool.models.names():
        if name == model_id:
            return JSONResponse(_card(name, spec, request.app.state.started))
    raise ModelNotFound(f"The model `{model_id}` does not exist", param="model")
