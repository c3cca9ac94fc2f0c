"""Reading the ledger back: spend, savings, latency and cache hit rate per model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from offramp.ledger.schema import usage
from offramp.ledger.tally import COLUMNS, Tally, nearest_rank


@dataclass
class ModelUsage(Tally):
    """One model's requests in the period, counted as ``Tally`` counts them."""

    model: str = ""

    @property
    def savings_usd(self) -> float:
        return self.openai_cost_usd - self.cost_usd

    def percentile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) of latency, nearest rank; None without data."""
        return nearest_rank(self.latencies_ms, q)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, **super().as_dict()}


@dataclass
class Summary:
    since: float | None
    models: list[ModelUsage]

    def total(self) -> ModelUsage:
        whole = ModelUsage(model="(all)")
        for m in self.models:
            whole.merge(m)
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
    query = select(usage.c.model, *COLUMNS)
    if since is not None:
        query = query.where(usage.c.ts >= since)
    per_model: dict[str, ModelUsage] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            per_model.setdefault(row.model, ModelUsage(model=row.model)).add(row)
    return Summary(since, sorted(per_model.values(), key=lambda m: m.model))
