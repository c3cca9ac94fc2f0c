"""``GET /v1/models``: every configured model and alias, with its context length and
tokenizer once loaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from offramp.api.deps import pool_of, runtime_of
from offramp.api.responses import JSONResponse
from offramp.errors import ModelNotFound
from offramp.models.registry import ModelSpec
from offramp.providers.base import Capabilities
from offramp.routing.route import Route

router = APIRouter()

OPENAI_ESTIMATE = (
    "this model's tokenizer counts differently from OpenAI's; context errors also give an "
    "estimate in OpenAI's tokens (4 characters a token, 3 more per chat message)"
)


def _card(name: str, spec: ModelSpec, caps: Capabilities | None, created: int) -> dict[str, Any]:
    """A local model's card; with the model loaded, what it reports about itself:
    ``context_length`` (tokens per request, or per input for embeddings), ``tokenizer``
    (what counts those tokens) and, for embeddings, ``window`` (tokens read at once)."""
    card = {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "offramp",
        "root": spec.name,
        "kind": spec.kind,
        "backend": spec.backend,
        "context_length": spec.context_length,
    }
    if caps is not None:
        card["context_length"] = caps.context_length
        card["tokenizer"] = {"name": caps.tokenizer, "openai_estimate": OPENAI_ESTIMATE}
        if caps.embedding_window:
            card["window"] = caps.embedding_window
    return card


def _route_card(name: str, route: Route, created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "offramp",
        "root": route.name,
        "kind": route.kind,
        "backend": "route",
        "deployments": [d.id for d in route.deployments],
    }


def _cards(request: Request) -> list[dict[str, Any]]:
    created = request.app.state.started
    pool = pool_of(request)
    cards = [
        _card(name, spec, pool.capabilities(spec.name), created)
        for name, spec in pool.models.names()
    ]
    for name, route in runtime_of(request).router.names():
        if not route.implicit:
            cards.append(_route_card(name, route, created))
    return cards


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": _cards(request)})


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> JSONResponse:
    for card in _cards(request):
        if card["id"] == model_id:
            return JSONResponse(card)
    raise ModelNotFound(f"The model `{model_id}` does not exist", param="model")
