"""Per-arm statistics of experiments and rollouts, read from the ledger and its feedback.

Each usage record an experiment assigned names its ``experiment`` and ``arm``; feedback
(``offramp_feedback``: a metric's value for a request id) joins it by request id. An arm's
requests count every record; errors are records whose status is not 200; latency
percentiles are over the served (200) ones; cost is the sum over all. Each metric's mean
is over the requests that got a value for it (the latest value when a request got
several), with its 95% interval (see ``confidence``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.sql import Select

from offramp.ledger.confidence import Estimate, estimate
from offramp.ledger.rollouts import ROLLOUT_EXPERIMENT, read_rollouts
from offramp.ledger.schema import feedback, usage
from offramp.ledger.tally import nearest_rank


@dataclass
class ArmStats:
    """One arm of one route's experiment."""

    route: str
    experiment: str
    arm: str
    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    values: dict[str, list[float]] = field(default_factory=dict, repr=False)
    boolean: Mapping[str, bool] = field(default_factory=dict, repr=False)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def latency(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) of served requests' latency in ms; None without any."""
        return nearest_rank(self.latencies_ms, q)

    def metric(self, name: str) -> Estimate | None:
        """The mean of metric ``name`` with its 95% interval; None without feedback."""
        return estimate(self.values.get(name, []), self.boolean.get(name))

    @property
    def metrics(self) -> dict[str, Estimate]:
        found = {name: self.metric(name) for name in sorted(self.values)}
        return {name: e for name, e in found.items() if e is not None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "experiment": self.experiment,
            "arm": self.arm,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency(0.5),
            "latency_p95_ms": self.latency(0.95),
            "cost_usd": self.cost_usd,
            "metrics": {name: e.as_dict() for name, e in self.metrics.items()},
        }


@dataclass(frozen=True)
class ArmFilter:
    """Which records count: a route, an experiment, some arms, a start time (Unix s)."""

    route: str | None = None
    experiment: str | None = None
    arms: Sequence[str] | None = None
    since: float | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        query = query.where(usage.c.experiment.is_not(None), usage.c.arm.is_not(None))
        if self.route is not None:
            query = query.where(usage.c.route == self.route)
        if self.experiment is not None:
            query = query.where(usage.c.experiment == self.experiment)
        if self.arms is not None:
            query = query.where(usage.c.arm.in_(list(self.arms)))
        if self.since is not None:
            query = query.where(usage.c.ts >= self.since)
        return query


def arm_stats(
    engine: Engine, where: ArmFilter = ArmFilter(), boolean: Mapping[str, bool] | None = None
) -> list[ArmStats]:
    """Statistics of every arm matching ``where``, ordered by route, experiment, arm.
    ``boolean`` says which metrics are boolean (Wilson intervals); a metric it does not
    name is boolean when every value is 0 or 1."""
    arms: dict[tuple[str, str, str], ArmStats] = {}

    def arm_of(row: Any) -> ArmStats:
        ident = (row.route or "", row.experiment, row.arm)
        if ident not in arms:
            arms[ident] = ArmStats(*ident, boolean=boolean or {})
        return arms[ident]

    columns = (usage.c.route, usage.c.experiment, usage.c.arm, usage.c.request_id)
    query = where.apply(select(*columns, usage.c.status, usage.c.latency_ms, usage.c.cost_usd))
    by_request: dict[str, ArmStats] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            arm = arm_of(row)
            by_request[row.request_id] = arm
            arm.requests += 1
            arm.cost_usd += row.cost_usd
            if row.status == 200:
                arm.latencies_ms.append(row.latency_ms)
            else:
                arm.errors += 1
        if by_request:
            _add_feedback(conn, by_request, where.since)
    return [arms[k] for k in sorted(arms)]


def _add_feedback(
    conn: Connection, by_request: Mapping[str, ArmStats], since: float | None
) -> None:
    """Each request's latest value of each metric, added to its arm. Joined here, by a
    hash of the request ids: one pass over the feedback, whatever its indexes."""
    query = select(feedback.c.request_id, feedback.c.metric, feedback.c.value)
    query = query.where(feedback.c.metric.is_not(None), feedback.c.value.is_not(None))
    if since is not None:
        query = query.where(feedback.c.ts >= since)  # feedback comes after its request
    latest: dict[tuple[str, str], float] = {}
    for row in conn.execute(query.order_by(feedback.c.ts, feedback.c.id)):
        if row.request_id in by_request:
            latest[(row.request_id, row.metric)] = float(row.value)
    for (request_id, metric), value in latest.items():
        by_request[request_id].values.setdefault(metric, []).append(value)


def experiment_report(
    engine: Engine, route: str | None = None, boolean: Mapping[str, bool] | None = None
) -> list[dict[str, Any]]:
    """Every experiment of ``route`` (every route: None) with its arms' statistics, and
    each route's rollout state beside the rollout's arms (``boolean`` as for
    ``arm_stats``)."""
    rollouts = read_rollouts(engine)
    grouped: dict[tuple[str, str], list[ArmStats]] = {}
    for arm in arm_stats(engine, ArmFilter(route=route), boolean):
        grouped.setdefault((arm.route, arm.experiment), []).append(arm)
    for name in rollouts:
        if route in (None, name):
            grouped.setdefault((name, ROLLOUT_EXPERIMENT), [])
    report = []
    for (name, experiment), arms in sorted(grouped.items()):
        rollout = rollouts.get(name) if experiment == ROLLOUT_EXPERIMENT else None
        report.append(
            {
                "route": name,
                "experiment": experiment,
                "arms": [a.as_dict() for a in arms],
                "rollout": None if rollout is None else rollout.as_dict(),
            }
        )
    return report
