"""The ledger over a time window, whole and in equal buckets: requests, errors, spend,
OpenAI-equivalent cost, savings, cache hits, latency and time-to-first-token quantiles.

Rows are counted as ``tally.Tally`` counts them (as ``queries.summary`` does); quantiles
are over the window's rows, which are read once (one indexed range scan on ``ts``), so a window is as cheap as
the number of requests in it; the console caps windows at 30 days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from offramp.ledger.schema import usage
from offramp.ledger.tally import COLUMNS, Tally


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
    columns = [usage.c.ts, *COLUMNS]
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
