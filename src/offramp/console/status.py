"""The console's read-only pages' data: overview, routes, models and alert states.

Windows are named (``15m`` .. ``30d``) and drawn in ``BUCKETS`` equal buckets. Ledger
reads run in a worker thread; nothing here runs until a page asks.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Engine

from offramp.api.deps import runtime_of
from offramp.api.responses import JSONResponse
from offramp.console import alerts
from offramp.console.access import signed_in
from offramp.errors import InvalidRequest
from offramp.ledger import series
from offramp.routing.deployment import Deployment
from offramp.routing.route import Route

WINDOWS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
BUCKETS = 30

router = APIRouter(prefix="/console/api", dependencies=[Depends(signed_in)])


def window_s(name: str) -> float:
    """Seconds of the named window; InvalidRequest (``window``) for an unknown name."""
    if name not in WINDOWS:
        raise InvalidRequest(
            f"window must be one of {', '.join(WINDOWS)}; got {name!r}", param="window"
        )
    return float(WINDOWS[name])


def engine_of(request: Request) -> Engine:
    engine: Engine | None = request.app.state.backing.engine
    if engine is None:
        raise InvalidRequest("the usage ledger is not open yet", code="not_ready")
    return engine


@router.get("/overview")
async def overview(request: Request, window: str = "1h") -> JSONResponse:
    span = window_s(window)
    engine, now = engine_of(request), time.time()
    found = await asyncio.to_thread(series.window, engine, now - span, now, BUCKETS)
    readings = await asyncio.to_thread(alerts.readings, engine, runtime_of(request).router, now)
    return JSONResponse(
        {
            "window": window,
            "until": now,
            **found[None].as_dict(),
            "alerts": alerts.evaluate(readings),
        }
    )


@router.get("/alerts")
async def alert_states(request: Request) -> JSONResponse:
    engine, now = engine_of(request), time.time()
    readings = await asyncio.to_thread(alerts.readings, engine, runtime_of(request).router, now)
    return JSONResponse({"data": alerts.evaluate(readings)})


@router.get("/routes")
async def routes(request: Request, window: str = "1h") -> JSONResponse:
    span = window_s(window)
    engine, now = engine_of(request), time.time()
    per_route = await asyncio.to_thread(series.window, engine, now - span, now, BUCKETS, "route")
    data = []
    for route in runtime_of(request).router.routes:
        found = per_route.get(route.name)
        data.append({**_route(route), "history": found.as_dict() if found else None})
    return JSONResponse({"window": window, "until": now, "data": data})


@router.get("/models")
async def models(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    depths = runtime.admission.depths()
    data = []
    for spec in runtime.pool.models.specs:
        slots = None
        if runtime.pool.loaded(spec.name):
            _, provider = await runtime.pool.get(spec.name, spec.kind)
            slots = provider.capabilities.concurrency
        depth = depths.get(spec.name, 0)
        data.append(
            {
                "name": spec.name,
                "aliases": list(spec.aliases),
                "backend": spec.backend,
                "kind": spec.kind,
                "source": spec.source.describe(),
                "context_length": spec.context_length,
                "loaded": slots is not None,
                "slots": slots,
                "busy": min(depth, slots) if slots else 0,
                "queued": max(0, depth - slots) if slots else depth,
            }
        )
    backing = request.app.state.backing
    process = {
        "rss_bytes": resident_bytes(),
        "pid": os.getpid(),
        "uptime_s": time.time() - request.app.state.started,
        "ledger_queue": backing.writer.depth(),
        "ledger_dropped": backing.writer.dropped,
        "max_queue": request.app.state.settings.max_queue,
    }
    return JSONResponse({"data": data, "process": process})


def resident_bytes() -> int:
    """This process's resident memory now (its peak where /proc is absent)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _route(route: Route) -> dict[str, Any]:
    return {
        "name": route.name,
        "aliases": list(route.spec.aliases),
        "kind": route.kind,
        "strategy": route.spec.strategy,
        "deployments": [_deployment(d) for d in route.deployments],
    }


def _deployment(d: Deployment) -> dict[str, Any]:
    stats = d.stats
    return {
        "id": d.id,
        "provider": d.spec.provider or "local",
        "model": d.spec.model,
        "breaker": d.breaker.state,
        "trips": d.breaker.trips,
        "retry_in_s": round(d.breaker.retry_in(), 1),
        "ewma_ms": stats.ewma_ms,
        "p50_ms": stats.p50_ms(),
        "error_rate": stats.error_rate(),
        "requests": stats.requests,
        "failures": stats.failures,
    }
