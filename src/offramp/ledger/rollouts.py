"""Shared experiment state in the ledger database: each route's rollout (the candidate's
share now, the step it is on, whether it finished or was rolled back) and each adaptive
experiment's decided winner. Every replica reads them, so a rollout driven from the CLI
changes the traffic of every running server."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from offramp.ledger.schema import experiment_decisions, rollouts

RolloutStatus = Literal["running", "done", "rolled_back", "aborted"]
ROLLOUT_EXPERIMENT = "rollout"  # the experiment name a rollout's usage records carry
BASELINE_ARM = "baseline"  # a rollout's other arm when it names no baseline


@dataclass(frozen=True)
class RolloutState:
    """A rollout of ``candidate`` on ``route`` against ``baseline`` (None: the route's own
    deployments). ``weight`` is the candidate's share of the route's traffic now."""

    route: str
    candidate: str
    baseline: str | None
    steps: tuple[float, ...]
    step: int
    weight: float
    status: RolloutStatus
    sticky: str = "user"
    reason: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    step_started_at: float = 0.0
    updated_at: float = 0.0

    @property
    def baseline_arm(self) -> str:
        return self.baseline or BASELINE_ARM

    @property
    def live(self) -> bool:
        return self.status == "running"

    def moved(self, **changes: Any) -> RolloutState:
        """This state with ``changes``, stamped now."""
        return replace(self, updated_at=time.time(), **changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "steps": list(self.steps),
            "step": self.step,
            "weight": self.weight,
            "status": self.status,
            "reason": self.reason,
            "sticky": self.sticky,
            "plan": self.plan,
            "started_at": self.started_at,
            "step_started_at": self.step_started_at,
            "updated_at": self.updated_at,
        }


def read_rollouts(engine: Engine) -> dict[str, RolloutState]:
    """Every route's rollout, by route."""
    with engine.connect() as conn:
        return {row.route: _state(row) for row in conn.execute(select(rollouts))}


def read_rollout(engine: Engine, route: str) -> RolloutState | None:
    with engine.connect() as conn:
        row = conn.execute(select(rollouts).where(rollouts.c.route == route)).first()
    return None if row is None else _state(row)


def save_rollout(engine: Engine, state: RolloutState) -> None:
    """Write ``state`` as its route's rollout (replacing the one there)."""
    values = state.as_dict()
    values.update(steps=json.dumps(values["steps"]), plan=json.dumps(values["plan"]))
    with engine.begin() as conn:
        conn.execute(delete(rollouts).where(rollouts.c.route == state.route))
        conn.execute(insert(rollouts).values(**values))


def delete_rollout(engine: Engine, route: str) -> bool:
    """Forget ``route``'s rollout (its configured experiment, if any, applies again);
    whether there was one."""
    with engine.begin() as conn:
        return conn.execute(delete(rollouts).where(rollouts.c.route == route)).rowcount > 0


def _state(row: Any) -> RolloutState:
    return RolloutState(
        route=row.route,
        candidate=row.candidate,
        baseline=row.baseline,
        steps=tuple(json.loads(row.steps)),
        step=row.step,
        weight=row.weight,
        status=row.status,
        sticky=row.sticky,
        reason=row.reason,
        plan=json.loads(row.plan),
        started_at=row.started_at,
        step_started_at=row.step_started_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class Decision:
    """An adaptive experiment that stopped: ``winner`` takes all its traffic."""

    route: str
    experiment: str
    winner: str
    reason: str
    decided_at: float


def read_decisions(engine: Engine) -> dict[tuple[str, str], Decision]:
    """Every decided experiment, by (route, experiment)."""
    with engine.connect() as conn:
        rows = conn.execute(select(experiment_decisions))
        return {(r.route, r.experiment): Decision(*r) for r in rows}


def decide(engine: Engine, decision: Decision) -> Decision:
    """Record ``decision`` unless the experiment was already decided (by another replica);
    the decision that stands is returned."""
    where = (experiment_decisions.c.route == decision.route) & (
        experiment_decisions.c.experiment == decision.experiment
    )
    try:
        with engine.begin() as conn:
            row = conn.execute(select(experiment_decisions).where(where)).first()
            if row is not None:
                return Decision(*row)
            conn.execute(insert(experiment_decisions).values(**decision.__dict__))
    except IntegrityError:  # another replica decided between our read and write
        with engine.connect() as conn:
            return Decision(*conn.execute(select(experiment_decisions).where(where)).one())
    return decision
