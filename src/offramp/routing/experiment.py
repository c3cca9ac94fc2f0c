"""Experiments: which arm of a route's experiment (or rollout) serves a request.

The gateway asks ``Experiments.assign`` once per request, right after resolving the
route, and walks the view of the route it gets back: an arm keeps only its deployments
(one of the route's, or another configured route's), and may set its own system prompt.
A request's arm is sticky: a stable hash of the experiment's name and the subject (the
API key, end user or session, as the experiment's ``sticky`` says, falling back to the
key, then to the request itself) picks a point in [0, 1), and the arms' weights, laid
end to end in their order, decide which arm holds it. The same subject therefore gets
the same arm while the weights hold still, and a rollout that raises its candidate's
share (the candidate comes first) only ever moves subjects onto the candidate.

Weights come from, in order: the route's rollout in the ledger database (it overrides
the configured experiment while its row exists: running, done, or rolled back to 0), an
adaptive experiment's Thompson shares or decided winner, then the configured weights.
``refresh`` reads the database (every replica does, every few seconds), so a rollout
driven from the CLI reaches every running server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from offramp.errors import InvalidRequest, ModelNotFound
from offramp.ledger.experiments import ArmFilter, arm_stats
from offramp.ledger.rollouts import (
    ROLLOUT_EXPERIMENT,
    Decision,
    RolloutState,
    decide,
    read_decisions,
    read_rollouts,
)
from offramp.routing.bandit import significant_winner, thompson_shares
from offramp.routing.config import AdaptiveSpec
from offramp.routing.outcome import ArmChoice
from offramp.routing.route import Route
from offramp.routing.router import Router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """Who a request is for, as far as stickiness goes."""

    request_id: str
    key: str | None = None
    user: str | None = None
    session: str | None = None

    def of(self, sticky: str) -> str:
        """The identity an experiment sticky by ``sticky`` keeps an arm for."""
        chain = {
            "key": ("key",),
            "user": ("user", "key"),
            "session": ("session", "user", "key"),
        }[sticky]
        for kind in chain:
            value = getattr(self, kind)
            if value:
                return f"{kind}:{value}"
        return f"request:{self.request_id}"


def stable_point(experiment: str, subject: str) -> float:
    """A point in [0, 1) that depends only on the experiment's name and the subject."""
    digest = hashlib.sha256(f"{experiment}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def pick(weights: Sequence[tuple[str, float]], point: float) -> str:
    """The arm whose stretch of [0, 1) holds ``point``, each arm's stretch proportional to
    its weight, in the order given. At least one weight must be positive."""
    total = sum(w for _, w in weights)
    edge = 0.0
    chosen = next(name for name, w in weights if w > 0)
    for name, weight in weights:
        if weight <= 0:
            continue
        chosen = name
        edge += weight / total
        if point < edge:
            break
    return chosen


@dataclass
class _Plan:
    """One route's experiment as it stands: its arms' route views and their weights."""

    route: str
    experiment: str
    sticky: str
    views: dict[str, Route]  # in the arms' order
    weights: dict[str, float]
    adaptive: AdaptiveSpec | None = None
    decision: Decision | None = None
    next_refresh: float = 0.0
    source: str = "config"  # config | adaptive | decided | rollout

    def assign(self, subject: Subject) -> Route:
        point = stable_point(self.experiment, subject.of(self.sticky))
        return self.views[pick(list(self.weights.items()), point)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "experiment": self.experiment,
            "sticky": self.sticky,
            "source": self.source,
            "weights": dict(self.weights),
            "adaptive": None if self.adaptive is None else self.adaptive.model_dump(),
            "winner": None if self.decision is None else self.decision.winner,
            "decision": None if self.decision is None else self.decision.reason,
        }


@dataclass
class Experiments:
    """Every route's experiment and rollout; ``assign`` is called per request (memory
    only), ``refresh`` (a thread's job: it reads the database) every few seconds."""

    router: Router
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time
    _plans: dict[str, _Plan] = field(default_factory=dict, init=False)
    _rollouts: dict[str, _Plan] = field(default_factory=dict, init=False)
    _rollout_states: dict[str, RolloutState] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for route in self.router.routes:
            spec = route.spec.experiment
            if spec is None:
                continue
            name = spec.name or route.name
            views = {
                arm.id: self._view(route, arm.model, ArmChoice(name, arm.id, arm.system))
                for arm in spec.arms
            }
            weights = {arm.id: arm.weight for arm in spec.arms}
            plan = _Plan(route.name, name, spec.sticky, views, weights, spec.adaptive)
            if spec.adaptive is not None:
                plan.weights = dict.fromkeys(weights, 1.0 / len(weights))
                plan.source = "adaptive"
            self._plans[route.name] = plan

    def assign(self, route: Route, subject: Subject) -> Route:
        """The view of ``route`` that serves ``subject``'s request: ``route`` itself when it
        runs no experiment, else its assigned arm's (``Route.arm`` names it)."""
        plan = self._rollouts.get(route.name) or self._plans.get(route.name)
        return route if plan is None else plan.assign(subject)

    def plans(self) -> list[dict[str, Any]]:
        """Every route's experiment as it stands now (rollouts first take their route)."""
        plans = {**self._plans, **self._rollouts}
        return [plans[name].as_dict() for name in sorted(plans)]

    # -- reading the shared state ------------------------------------------------------

    async def refresh_now(self, engine: Engine) -> None:
        """One ``refresh`` off the event loop; failures are logged, never raised."""
        try:
            await asyncio.to_thread(self.refresh, engine)
        except Exception:
            log.exception("reading experiments and rollouts from the ledger failed")

    def refresh(self, engine: Engine) -> None:
        """Read the rollouts and decisions, and recompute adaptive shares that are due."""
        self._refresh_rollouts(read_rollouts(engine))
        decisions = read_decisions(engine)
        now = self.clock()
        for plan in self._plans.values():
            if plan.adaptive is None:
                continue
            decided = decisions.get((plan.route, plan.experiment))
            if decided is None and now >= plan.next_refresh:
                plan.next_refresh = now + plan.adaptive.refresh_s
                decided = self._adapt(engine, plan, plan.adaptive)
            if decided is not None and decided.winner in plan.views:
                plan.decision = decided
                plan.weights = {arm: float(arm == decided.winner) for arm in plan.views}
                plan.source = "decided"

    def _adapt(self, engine: Engine, plan: _Plan, spec: AdaptiveSpec) -> Decision | None:
        """New Thompson shares for ``plan``, or the decision once one arm is significantly
        better (recorded for every replica)."""
        where = ArmFilter(plan.route, plan.experiment, list(plan.views))
        stats = {s.arm: s for s in arm_stats(engine, where)}
        estimates = {
            arm: stats[arm].metric(spec.metric) if arm in stats else None for arm in plan.views
        }
        maximise = spec.optimize == "max"
        verdict = significant_winner(estimates, maximise, spec.min_samples)
        if verdict is not None:
            decision = Decision(
                plan.route, plan.experiment, verdict.winner, verdict.reason, self.clock()
            )
            log.info("experiment %s on %s stopped: %s", plan.experiment, plan.route, verdict)
            return decide(engine, decision)
        plan.weights = thompson_shares(estimates, maximise, spec.min_share, self.rng)
        return None

    def _refresh_rollouts(self, states: Mapping[str, RolloutState]) -> None:
        plans: dict[str, _Plan] = {}
        for name, state in states.items():
            if self._rollout_states.get(name) == state:
                plan = self._rollouts.get(name)  # None: could not be applied (warned once)
            else:
                plan = self._rollout_plan(state)
            if plan is not None:
                plans[name] = plan
        self._rollouts, self._rollout_states = plans, dict(states)

    def _rollout_plan(self, state: RolloutState) -> _Plan | None:
        try:
            route = self.router.named(state.route)
            candidate = ArmChoice(ROLLOUT_EXPERIMENT, state.candidate)
            baseline = ArmChoice(ROLLOUT_EXPERIMENT, state.baseline_arm)
            views = {
                state.candidate: self._view(route, state.candidate, candidate),
                state.baseline_arm: self._view(route, state.baseline, baseline),
            }
        except InvalidRequest as exc:
            log.warning("rollout on %s is not applied here: %s", state.route, exc.message)
            return None
        weights = {state.candidate: state.weight, state.baseline_arm: 1.0 - state.weight}
        return _Plan(route.name, ROLLOUT_EXPERIMENT, state.sticky, views, weights, source="rollout")

    # -- arms ------------------------------------------------------------------------

    def _view(self, route: Route, model: str | None, choice: ArmChoice) -> Route:
        """``route`` narrowed to ``model`` (one of its deployments, by id, name or model;
        else another configured route or model), labelled with ``choice``."""
        if model is None:
            return replace(route, arm=choice)
        own = [d for d in route.deployments if model in (d.id, d.spec.name, d.spec.model)]
        if own:
            return replace(route, deployments=(own[0],), arm=choice)
        try:
            other = self.router.resolve(model, route.kind)
        except ModelNotFound as exc:
            raise InvalidRequest(
                f"experiment arm {choice.arm!r} of route {route.name!r} names {model!r}, "
                "which is neither a deployment of the route nor a configured "
                f"{route.kind} route or model",
                param="config",
            ) from exc
        # the other route's deployments, order and health; this route's name and policy,
        # so capture, in-context examples, records and deadlines stay this route's
        return replace(other, spec=route.spec, equivalents=route.equivalents, arm=choice)


async def poll(current: Callable[[], Experiments], engine: Engine, every_s: float) -> None:
    """Refresh ``current()`` (the experiments of the runtime serving now, which a reload
    may replace) every ``every_s`` seconds until cancelled; a failed read is logged and
    the weights stay as they were until the next one."""
    while True:
        await asyncio.sleep(every_s)
        await current().refresh_now(engine)
