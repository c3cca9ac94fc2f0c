"""``GET /admin/routes``: every route, and each deployment's circuit state and its recent
transitions, ejection, recent latency and error rate (read from the router; nothing is
computed here beyond formatting). ``GET /admin/experiments``: every experiment's arms with
their statistics from the ledger, each route's rollout, and the weights this server
assigns arms by now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request

from offramp.api.admin_keys import require_admin
from offramp.api.deps import runtime_of
from offramp.api.responses import JSONResponse
from offramp.errors import OfframpError
from offramp.gateway.backing import Backing
from offramp.ledger.experiments import experiment_report
from offramp.ledger.feedback import MetricSpec
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


@router.get("/admin/experiments")
async def list_experiments(request: Request, route: str | None = None) -> JSONResponse:
    """Per route and experiment: each arm's requests, errors, latency, cost and metric
    means with 95% intervals; ``live`` is what this server assigns by now."""
    backing: Backing = request.app.state.backing
    if backing.engine is None:
        raise OfframpError("the ledger database is not open yet")
    declared: dict[str, MetricSpec] = request.app.state.feedback_metrics
    boolean = {m.name: m.type == "boolean" for m in declared.values()}
    report = await asyncio.to_thread(experiment_report, backing.engine, route, boolean)
    plans = runtime_of(request).experiments.plans()
    return JSONResponse({"object": "list", "data": _with_live(report, plans, route)})


def _with_live(
    report: list[dict[str, Any]], plans: list[dict[str, Any]], route: str | None
) -> list[dict[str, Any]]:
    """The report, each experiment beside the plan this server runs it by (an experiment
    with no records yet gets an entry of its own)."""
    by_name = {(p["route"], p["experiment"]): p for p in plans if route in (None, p["route"])}
    for item in report:
        item["live"] = by_name.pop((item["route"], item["experiment"]), None)
    for (name, experiment), plan in by_name.items():
        report.append(
            {"route": name, "experiment": experiment, "arms": [], "rollout": None, "live": plan}
        )
    return report


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
        "deployments": [_deployment(route, d) for d in route.deployments],
    }


def _deployment(route: Route, d: Deployment) -> dict[str, Any]:
    stats = d.stats
    unix = _to_unix(d.breaker.clock)
    last_ejected = route.outliers.last_ejected(d)
    return {
        "id": d.id,
        "provider": d.spec.provider or "local",
        "model": d.spec.model,
        "breaker": {
            "state": d.breaker.state,
            "consecutive_failures": d.breaker.consecutive_failures,
            "trips": d.breaker.trips,
            "retry_in_s": round(d.breaker.retry_in(), 3),
            "probes_in_flight": d.breaker.probes_in_flight,
            "timeline": [{"at": unix(t.at), "state": t.state} for t in d.breaker.timeline],
        },
        "outlier": {
            "ejected": route.outliers.ejected(d),
            "ejected_for_s": round(route.outliers.ejected_for(d), 3),
            "ejections": route.outliers.ejections(d),
            "last_ejected_at": None if last_ejected is None else unix(last_ejected),
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


def _to_unix(clock: Callable[[], float]) -> Callable[[float], float]:
    """Turns a time on ``clock`` (monotonic) into Unix seconds."""
    offset = time.time() - clock()
    return lambda at: round(at + offset, 3)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
