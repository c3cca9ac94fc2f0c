"""Reading the ledger back: spend, savings, latency and cache hit rate per model."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from offramp.ledger.schema import usage


def nearest_rank(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered) - 1e-9) - 1))
    return ordered[rank]


@dataclass
class ModelUsage:
    """One model's requests in the period; latencies of served (2xx) requests only."""

    model: str
    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    openai_cost_usd: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def savings_usd(self) -> float:
        return self.openai_cost_usd - self.cost_usd

    @property
    def cache_hit_rate(self) -> float:
        served = self.requests - self.errors
        return self.cache_hits / served if served else 0.0

    def percentile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) of latency, nearest rank; None without data."""
        return nearest_rank(self.latencies_ms, q)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        out.update(
            savings_usd=self.savings_usd,
            cache_hit_rate=self.cache_hit_rate,
            p50_latency_ms=self.percentile(0.5),
            p95_latency_ms=self.percentile(0.95),
        )
        return out


@dataclass
class Summary:
    since: float | None
    models: list[ModelUsage]

    def total(self) -> ModelUsage:
        whole = ModelUsage("(all)")
        for m in self.models:
            whole.requests += m.requests
            whole.errors += m.errors
            whole.cache_hits += m.cache_hits
            whole.prompt_tokens += m.prompt_tokens
            whole.completion_tokens += m.completion_tokens
            whole.cost_usd += m.cost_usd
            whole.openai_cost_usd += m.openai_cost_usd
            whole.latencies_ms.extend(m.latencies_ms)
        return whole

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "models": [m.as_dict() for m in self.models],
            "total": self.total().as_dict(),
        }


def summary(engine: Engine, since_s: float | None = None) -> Summary:
    """Usage per model over the last ``since_s`` seconds (everything when None)."""
    since = time.time() - since_s if since_s is not None else None
    query = select(
        usage.c.model,
        usage.c.status,
        usage.c.cache_hit,
        usage.c.prompt_tokens,
        usage.c.completion_tokens,
        usage.c.cost_usd,
        usage.c.openai_cost_usd,
        usage.c.latency_ms,
    )
    if since is not None:
        query = query.where(usage.c.ts >= since)
    per_model: dict[str, ModelUsage] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            m = per_model.setdefault(row.model, ModelUsage(row.model))
            m.requests += 1
            if not 200 <= row.status < 300:
                m.errors += 1
                continue
            m.cache_hits += int(bool(row.cache_hit))
            m.prompt_tokens += row.prompt_tokens
            m.completion_tokens += row.completion_tokens
            m.cost_usd += row.cost_usd
            m.openai_cost_usd += row.openai_cost_usd
            m.latencies_ms.append(row.latency_ms)
    return Summary(since, sorted(per_model.values(), key=lambda m: m.model))
