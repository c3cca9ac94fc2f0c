"""What a set of ledger rows adds up to: the counting every ledger reader shares.

Every record is a request; a status outside 2xx is an error; tokens, costs, cache hits and
latencies count served (2xx) requests only, and the cache hit rate is hits over served
requests. Quantiles are nearest-rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from offramp.ledger.schema import usage

COLUMNS = (
    usage.c.status,
    usage.c.cache_hit,
    usage.c.prompt_tokens,
    usage.c.completion_tokens,
    usage.c.cost_usd,
    usage.c.openai_cost_usd,
    usage.c.latency_ms,
    usage.c.ttft_ms,
)  # the columns ``Tally.add`` reads


def nearest_rank(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered) - 1e-9) - 1))
    return ordered[rank]


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

    def merge(self, other: Tally) -> None:
        """Add another tally's requests to this one."""
        self.requests += other.requests
        self.errors += other.errors
        self.cache_hits += other.cache_hits
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.openai_cost_usd += other.openai_cost_usd
        self.latencies_ms.extend(other.latencies_ms)
        self.ttfts_ms.extend(other.ttfts_ms)

    def add(self, row: Any) -> None:
        """Count one ledger row (``COLUMNS`` selected)."""
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
