"""``GET /admin/routes``: every route, and each deployment's circuit state, recent latency
and error rate (read from the router; nothing is computed here beyond formatting)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from offramp.api.admin_keys import require_admin
from offramp.api.deps import runtime_of
from offramp.api.responses import JSONResponse
from offramp.routing.deployment import Deployment
from offramp.routing.route import Route


def admin_when_auth(request: Request) -> None:
    """With auth on, route health is for the admin key's bearer; off, for anyone local."""
    if request.app.state.settings.auth:
        require_admin(request)


router = APIRouter(dependencies=[Depends(admin_when_auth)])


@router.get("/admin/routes")
async def list_routes(request: Request) -> JSONResponse:
    routes = runtime_of(request).router.routes
    return JSONResponse({"object": "list", "data": [_route(r) for r in routes]})


def _route(route: Route) -> dict[str, Any]:
    spec = route.spec
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "kind": spec.kind,
        "strategy": spec.strategy,
        "implicit": route.implicit,
        "deadline_s": spec.deadline_s,
        "max_attempts": spec.attempts,
        "deployments": [_deployment(d) for d in route.deployments],
    }


def _deployment(d: Deployment) -> dict[str, Any]:
    stats = d.stats
    return {
        "id": d.id,
        "provider": d.spec.provider or "local",
        "model": d.spec.model,
        "breaker": {
            "state": d.breaker.state,
            "consecutive_failures": d.breaker.consecutive_failures,
            "trips": d.breaker.trips,
            "retry_in_s": round(d.breaker.retry_in(), 3),
        },
        "latency_ms": {
            "ewma": _rounded(stats.ewma_ms),
            "p50": _rounded(stats.p50_ms()),
        },
        "error_rate": round(stats.error_rate(), 4),
        "requests": stats.requests,
        "failures": stats.failures,
        "price_per_million": {
            "input": d.price.input,
            "output": d.price.output,
            "cached_input": d.price.cached_input,
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
