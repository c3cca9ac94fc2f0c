"""The alert rules of ``deploy/prometheus/alerts.yml``, evaluated from offramp's own numbers.

Prometheus evaluates them over ``/metrics``; the console evaluates the same thresholds
over the ledger (shared by every replica) and the router's breakers (this replica's), so
the console shows which alert would fire without a Prometheus server:

    rule                  reading                                       fires when
    OfframpHighLatency    p95 latency of served requests, last 5 min    > 5 s
    OfframpHighErrorRate  share of requests not answered 2xx, 5 min     > 5 %
    OfframpBreakerOpen    deployments whose circuit is open now         any
    OfframpLowCacheHitRate share of served requests answered from cache,
                          last 15 min, with traffic                     < 70 %
    OfframpCostSpike      spend in the last hour against the hourly
                          average of the 24 hours before it             > +20 %
    OfframpInstanceDown   Prometheus' ``up``; a console that answers is up  never here

A rule without data (no requests in its window, no baseline) reads ``no data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine

from offramp.ledger import explorer, series
from offramp.ledger.tally import Tally
from offramp.routing.router import Router

LATENCY_P95_S = 5.0
ERROR_RATE = 0.05
CACHE_HIT_RATE = 0.70
COST_SPIKE = 1.20
RATE_WINDOW_S = 300.0
CACHE_WINDOW_S = 900.0
COST_WINDOW_S = 3600.0
BASELINE_S = 24 * 3600.0

State = Literal["firing", "ok", "no data"]


@dataclass(frozen=True)
class Readings:
    """The numbers the rules read, taken once per evaluation."""

    recent: Tally  # the last RATE_WINDOW_S
    cache_window: Tally  # the last CACHE_WINDOW_S
    cost_last_hour: float
    cost_baseline_hourly: float  # average hourly spend over the BASELINE_S before
    open_breakers: list[str]


@dataclass(frozen=True)
class Rule:
    name: str
    summary: str
    threshold: str
    check: Callable[[Readings], tuple[State, str]]


def _latency(r: Readings) -> tuple[State, str]:
    p95 = r.recent.as_dict()["p95_latency_ms"]
    if p95 is None:
        return "no data", "no served requests"
    return ("firing" if p95 / 1000 > LATENCY_P95_S else "ok"), f"{p95 / 1000:.2f} s"


def _errors(r: Readings) -> tuple[State, str]:
    if not r.recent.requests:
        return "no data", "no requests"
    rate = r.recent.error_rate
    return ("firing" if rate > ERROR_RATE else "ok"), f"{rate:.1%}"


def _breakers(r: Readings) -> tuple[State, str]:
    if r.open_breakers:
        return "firing", ", ".join(r.open_breakers)
    return "ok", "every circuit closed"


def _cache(r: Readings) -> tuple[State, str]:
    if not r.cache_window.served:
        return "no data", "no traffic"
    rate = r.cache_window.cache_hit_rate
    return ("firing" if rate < CACHE_HIT_RATE else "ok"), f"{rate:.1%}"


def _cost(r: Readings) -> tuple[State, str]:
    if r.cost_baseline_hourly <= 0:
        return "no data", "no baseline spend"
    ratio = r.cost_last_hour / r.cost_baseline_hourly
    return ("firing" if ratio > COST_SPIKE else "ok"), f"{ratio:.2f}x baseline"


def _up(_: Readings) -> tuple[State, str]:
    return "ok", "this instance is answering"


RULES = (
    Rule("OfframpHighLatency", "p95 latency over 5 s (5 min)", "> 5 s", _latency),
    Rule("OfframpHighErrorRate", "error rate over 5% (5 min)", "> 5%", _errors),
    Rule("OfframpBreakerOpen", "a deployment's circuit breaker is open", "open", _breakers),
    Rule(
        "OfframpLowCacheHitRate", "cache hit rate under 70% with traffic (15 min)", "< 70%", _cache
    ),
    Rule("OfframpCostSpike", "hourly spend 20% over its 24 h baseline", "> 1.2x", _cost),
    Rule("OfframpInstanceDown", "an instance stopped answering scrapes", "up == 0", _up),
)


def readings(engine: Engine, router: Router, now: float) -> Readings:
    """Read what the rules need from the ledger and the router."""
    recent = series.window(engine, now - RATE_WINDOW_S, now, 1)[None].total
    cache_window = series.window(engine, now - CACHE_WINDOW_S, now, 1)[None].total
    hour = explorer.totals(engine, explorer.UsageFilter(since=now - COST_WINDOW_S, until=now))
    before = explorer.totals(
        engine,
        explorer.UsageFilter(since=now - COST_WINDOW_S - BASELINE_S, until=now - COST_WINDOW_S),
    )
    open_breakers = [
        d.id for route in router.routes for d in route.deployments if d.breaker.state == "open"
    ]
    return Readings(
        recent,
        cache_window,
        hour["cost_usd"],
        before["cost_usd"] * COST_WINDOW_S / BASELINE_S,
        sorted(set(open_breakers)),
    )


def evaluate(found: Readings) -> list[dict[str, Any]]:
    """Every rule's state, value and threshold, in the order of ``RULES``."""
    out = []
    for rule in RULES:
        state, value = rule.check(found)
        out.append(
            {
                "name": rule.name,
                "summary": rule.summary,
                "threshold": rule.threshold,
                "state": state,
                "value": value,
            }
        )
    return out
