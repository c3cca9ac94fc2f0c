"""The ledger over a time window, whole and in equal buckets: requests, errors, spend,
OpenAI-equivalent cost, savings, cache hits, latency and time-to-first-token quantiles.

Counts follow ``queries.summary``: every record is a request; a status outside 2xx is an
error; tokens, costs, cache hits and latencies count served (2xx) requests only, and the
cache hit rate is hits over served requests. Quantiles are nearest-rank over the window's
rows, which are read once (one indexed range scan on ``ts``), so a window is as cheap as
the number of requests in it; the console caps windows at 30 days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from offramp.ledger.queries import nearest_rank
from offramp.ledger.schema import usage


@dataclass
class Tally:
    """What the requests of one bucket (or a whole window) add up to."""

    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    openai_cost_usd: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    ttfts_ms: list[float] = field(default_factory=list, repr=False)

    def add(self, row: Any) -> None:
        """Count one ledger row (with the columns ``window`` selects)."""
        self.requests += 1
        if not 200 <= row.status < 300:
            self.errors += 1
            return
        self.cache_hits += int(bool(row.cache_hit))
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.cost_usd += row.cost_usd
        self.openai_cost_usd += row.openai_cost_usd
        self.latencies_ms.append(row.latency_ms)
        if row.ttft_ms is not None:
            self.ttfts_ms.append(row.ttft_ms)

    @property
    def served(self) -> int:
        return self.requests - self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.served if self.served else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "cache_hits": self.cache_hits,
            "cache_hit_rate": self.cache_hit_rate,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "openai_cost_usd": self.openai_cost_usd,
            "savings_usd": self.openai_cost_usd - self.cost_usd,
            "p50_latency_ms": nearest_rank(self.latencies_ms, 0.5),
            "p95_latency_ms": nearest_rank(self.latencies_ms, 0.95),
            "p50_ttft_ms": nearest_rank(self.ttfts_ms, 0.5),
            "p95_ttft_ms": nearest_rank(self.ttfts_ms, 0.95),
        }


@dataclass
class Series:
    """One window: its total and its buckets (``step_s`` wide, the first at ``since``)."""

    since: float
    step_s: float
    total: Tally
    buckets: list[Tally]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "step_s": self.step_s,
            "total": self.total.as_dict(),
            "buckets": [
                {"t": self.since + i * self.step_s, **b.as_dict()}
                for i, b in enumerate(self.buckets)
            ],
        }


_GROUPS = {"route": usage.c.route, "model": usage.c.model, "deployment": usage.c.deployment}


def window(
    engine: Engine, since: float, until: float, buckets: int, group_by: str | None = None
) -> dict[str | None, Series]:
    """The requests with ``since <= ts < until`` in ``buckets`` equal buckets, as one
    Series (key None) or one per value of ``group_by`` (``route``, ``model`` or
    ``deployment``; rows without one are left out). ValueError for another group."""
    if group_by is not None and group_by not in _GROUPS:
        raise ValueError(f"cannot group the ledger by {group_by!r}")
    step = max((until - since) / max(buckets, 1), 1e-9)
    columns = [
        usage.c.ts,
        usage.c.status,
        usage.c.cache_hit,
        usage.c.prompt_tokens,
        usage.c.completion_tokens,
        usage.c.cost_usd,
        usage.c.openai_cost_usd,
        usage.c.latency_ms,
        usage.c.ttft_ms,
    ]
    group = _GROUPS[group_by] if group_by is not None else None
    query = select(*columns, *([group.label("grp")] if group is not None else []))
    query = query.where(usage.c.ts >= since, usage.c.ts < until)
    if group is not None:
        query = query.where(group.is_not(None))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return _bucketed(rows, since, step, buckets, grouped=group is not None)


def _bucketed(
    rows: Iterable[Any], since: float, step: float, buckets: int, *, grouped: bool
) -> dict[str | None, Series]:
    out: dict[str | None, Series] = {}
    if not grouped:
        out[None] = _empty(since, step, buckets)
    for row in rows:
        name = row.grp if grouped else None
        series = out.get(name)
        if series is None:
            series = out[name] = _empty(since, step, buckets)
        index = min(buckets - 1, max(0, math.floor((row.ts - since) / step)))
        series.total.add(row)
        series.buckets[index].add(row)
    return out


def _empty(since: float, step: float, buckets: int) -> Series:
    return Series(since, step, Tally(), [Tally() for _ in range(buckets)])
