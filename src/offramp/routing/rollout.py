"""Rollouts: a candidate's share of a route's traffic raised step by step while guards
hold, rolled back by itself when one fails.

A rollout's state lives in the ledger database (``ledger.rollouts``), which every server
reads every few seconds, so whoever drives it (``offramp rollout``, or ``run_rollout``
from Python) needs only the database, and a driver that stops can be started again and
goes on from the step it was on. Each step sets the candidate's weight and waits until
both arms have ``min_requests`` requests since the step began (and every metric guard
``min_feedback`` values per arm), then checks every guard on those requests:

=====================  =========================================================
guard                  holds when the candidate's ...
=====================  =========================================================
``error_rate<=0.05``   error rate (status not 200) is at most 5%
``latency_p95<=1.5x``  p95 latency is at most 1.5 times the baseline's
``thumbs>=baseline-0.05``  mean of feedback metric ``thumbs`` is at most 0.05 below
                       the baseline's (``<=baseline+M`` for a metric to minimise)
``cost<=0.002``        cost per request is at most $0.002
=====================  =========================================================

Quantities: ``error_rate``, ``latency_p50``, ``latency_p95``, ``cost`` (USD per request)
or any feedback metric; a bound is a number, ``Nx`` (times the baseline's value) or
``baseline``, ``baseline+M``, ``baseline-M``. Every guard holding moves to the next step
(after the last, the rollout is ``done`` with the candidate at its last weight); one
failing sets the candidate's weight to 0 and the status ``rolled_back`` with the reason. A
step that does not see enough traffic within ``step_timeout_s`` rolls back too. At a step
that gives the candidate all traffic, the baseline is judged on the whole rollout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import Engine

from offramp.errors import InvalidRequest
from offramp.ledger.experiments import ArmFilter, ArmStats, arm_stats
from offramp.ledger.rollouts import (
    ROLLOUT_EXPERIMENT,
    RolloutState,
    delete_rollout,
    read_rollout,
    save_rollout,
)

_GUARD = re.compile(r"^\s*([A-Za-z_][\w.:-]*)\s*(<=|>=)\s*(.+?)\s*$")
_RELATIVE = re.compile(r"^baseline\s*(?:([+-])\s*(\d+(?:\.\d+)?(?:e-?\d+)?))?$")
_FACTOR = re.compile(r"^(\d+(?:\.\d+)?)\s*x$")
_LATENCY = {"latency_p50": 0.5, "p50": 0.5, "latency_p95": 0.95, "p95": 0.95}


@dataclass(frozen=True)
class Guard:
    """``quantity op bound`` on the candidate; bound = ``absolute`` if set, else
    ``factor`` times the baseline's value plus ``offset``."""

    text: str
    quantity: str
    op: Literal["<=", ">="]
    absolute: float | None = None
    factor: float = 1.0
    offset: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Guard:
        """A guard from its text (see the module docstring); InvalidRequest if malformed."""
        match = _GUARD.match(text)
        if match is None:
            raise InvalidRequest(
                f"guard {text!r}: write QUANTITY<=BOUND or QUANTITY>=BOUND, e.g. "
                "error_rate<=0.05, latency_p95<=1.5x, thumbs>=baseline-0.05",
                param="guard",
            )
        quantity, op, bound = match.groups()
        sign: Literal["<=", ">="] = "<=" if op == "<=" else ">="
        if (relative := _RELATIVE.match(bound)) is not None:
            offset = float(relative.group(2) or 0) * (-1 if relative.group(1) == "-" else 1)
            return cls(text, quantity, sign, offset=offset)
        if (factor := _FACTOR.match(bound)) is not None:
            return cls(text, quantity, sign, factor=float(factor.group(1)))
        try:
            return cls(text, quantity, sign, absolute=float(bound))
        except ValueError:
            raise InvalidRequest(
                f"guard {text!r}: the bound must be a number, Nx or baseline[+-M]",
                param="guard",
            ) from None

    @property
    def metric(self) -> str | None:
        """The feedback metric it reads, if it reads one."""
        builtin = ("error_rate", "cost", *_LATENCY)
        return None if self.quantity in builtin else self.quantity

    def value(self, arm: ArmStats | None) -> float | None:
        """The guarded quantity of ``arm``; None without data for it."""
        if arm is None:
            return None
        if self.quantity == "error_rate":
            return arm.error_rate if arm.requests else None
        if self.quantity == "cost":
            return arm.cost_usd / arm.requests if arm.requests else None
        if self.quantity in _LATENCY:
            return arm.latency(_LATENCY[self.quantity])
        found = arm.metric(self.quantity)
        return None if found is None else found.mean

    def check(self, candidate: ArmStats | None, baseline: ArmStats | None) -> str | None:
        """None when it holds, else why not."""
        mine = self.value(candidate)
        if mine is None:
            return f"{self.text}: the candidate has no data for {self.quantity}"
        if self.absolute is not None:
            bound = self.absolute
        else:
            theirs = self.value(baseline)
            if theirs is None:
                return f"{self.text}: the baseline has no data for {self.quantity}"
            bound = self.factor * theirs + self.offset
        held = mine <= bound if self.op == "<=" else mine >= bound
        return None if held else f"{self.text}: candidate {mine:.4g}, bound {bound:.4g}"


@dataclass(frozen=True)
class RolloutPlan:
    """How a rollout proceeds. ``steps`` are the candidate's shares in percent."""

    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    guards: tuple[str, ...] = ()
    min_requests: int = 50
    min_feedback: int = 1
    interval_s: float = 10.0
    step_timeout_s: float | None = 3600.0
    sticky: str = "user"

    def __post_init__(self) -> None:
        if not self.steps or any(not 0 < s <= 100 for s in self.steps):
            raise InvalidRequest("rollout steps are percentages in (0, 100]", param="steps")
        if list(self.steps) != sorted(set(self.steps)):
            raise InvalidRequest("rollout steps must rise, e.g. 5,25,50,100", param="steps")
        if self.min_requests < 1 or self.min_feedback < 0:
            raise InvalidRequest("min_requests must be at least 1", param="min_requests")
        if self.sticky not in ("key", "user", "session"):
            raise InvalidRequest("sticky is one of key, user, session", param="sticky")
        for guard in self.guards:
            Guard.parse(guard)

    @classmethod
    def of(cls, state: RolloutState) -> RolloutPlan:
        fields = dict(state.plan)
        fields.update(steps=tuple(fields["steps"]), guards=tuple(fields["guards"]))
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps": list(self.steps), "guards": list(self.guards)}


def start_rollout(
    engine: Engine,
    route: str,
    candidate: str,
    baseline: str | None = None,
    plan: RolloutPlan = RolloutPlan(),
    *,
    restart: bool = False,
    now: float | None = None,
) -> RolloutState:
    """Begin rolling ``candidate`` out on ``route`` (its first step's share at once), or
    go on with the same rollout if it is still running (unless ``restart``)."""
    existing = read_rollout(engine, route)
    if (
        not restart
        and existing is not None
        and existing.live
        and (existing.candidate, existing.baseline) == (candidate, baseline)
    ):
        return existing
    if candidate == baseline:
        raise InvalidRequest("the candidate and the baseline are the same", param="candidate")
    at = time.time() if now is None else now
    state = RolloutState(
        route=route,
        candidate=candidate,
        baseline=baseline,
        steps=tuple(s / 100 for s in plan.steps),
        step=0,
        weight=plan.steps[0] / 100,
        status="running",
        sticky=plan.sticky,
        plan=plan.as_dict(),
        started_at=at,
        step_started_at=at,
        updated_at=at,
    )
    save_rollout(engine, state)
    return state


def check_rollout(engine: Engine, route: str, now: float | None = None) -> RolloutState:
    """One look at ``route``'s rollout: advance it, finish it, roll it back, or leave it
    waiting for traffic. InvalidRequest if the route has no rollout."""
    state = _existing(engine, route)
    if not state.live:
        return state
    at = time.time() if now is None else now
    plan = RolloutPlan.of(state)
    guards = [Guard.parse(g) for g in plan.guards]
    candidate, baseline = _arms(engine, state)
    wanting = _wanting(state, plan, guards, candidate, baseline)
    if wanting is not None:
        timeout = plan.step_timeout_s
        if timeout is not None and at - state.step_started_at > timeout:
            return _roll_back(engine, state, f"{_step(state)}: {wanting} within {timeout:g}s")
        return state
    failed = [why for g in guards if (why := g.check(candidate, baseline)) is not None]
    if failed:
        return _roll_back(engine, state, f"{_step(state)}: " + "; ".join(failed))
    if state.step + 1 >= len(state.steps):
        done = state.moved(status="done", reason=f"{_step(state)}: every guard held")
        save_rollout(engine, done)
        return done
    step = state.step + 1
    moved = state.moved(step=step, weight=state.steps[step], step_started_at=at, reason=None)
    save_rollout(engine, moved)
    return moved


def run_rollout(
    engine: Engine,
    route: str,
    on_change: Callable[[RolloutState], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutState:
    """Check ``route``'s rollout every ``interval_s`` until it is done or rolled back;
    ``on_change`` hears every state it moves to. Returns the final state."""
    state = _existing(engine, route)
    on_change(state)
    while state.live:
        sleep(RolloutPlan.of(state).interval_s)
        moved = check_rollout(engine, route)
        if (moved.status, moved.step) != (state.status, state.step):
            on_change(moved)
        state = moved
    return state


def abort_rollout(engine: Engine, route: str, reason: str = "aborted by hand") -> RolloutState:
    """Stop ``route``'s rollout now: the candidate gets no more traffic."""
    state = _existing(engine, route)
    aborted = state.moved(status="aborted", weight=0.0, reason=reason)
    save_rollout(engine, aborted)
    return aborted


def clear_rollout(engine: Engine, route: str) -> None:
    """Forget ``route``'s finished rollout, so the route serves as configured again (a
    running one must be aborted first). InvalidRequest if there is none or it runs."""
    if _existing(engine, route).live:
        raise InvalidRequest(f"the rollout on {route!r} is running; abort it first", param="route")
    delete_rollout(engine, route)


def rollout_status(engine: Engine, route: str) -> RolloutState:
    """``route``'s rollout as it stands (changes nothing); InvalidRequest if none."""
    return _existing(engine, route)


def rollout_arms(engine: Engine, route: str) -> tuple[ArmStats | None, ArmStats | None]:
    """The candidate's and the baseline's statistics in the current step."""
    return _arms(engine, _existing(engine, route))


def _existing(engine: Engine, route: str) -> RolloutState:
    state = read_rollout(engine, route)
    if state is None:
        raise InvalidRequest(f"route {route!r} has no rollout", param="route")
    return state


def _arms(engine: Engine, state: RolloutState) -> tuple[ArmStats | None, ArmStats | None]:
    def one(arm: str, since: float) -> ArmStats | None:
        where = ArmFilter(state.route, ROLLOUT_EXPERIMENT, [arm], since)
        return next(iter(arm_stats(engine, where)), None)

    candidate = one(state.candidate, state.step_started_at)
    baseline = one(state.baseline_arm, state.step_started_at)
    if state.weight >= 1.0:  # no baseline traffic in this step: judge it on the whole run
        baseline = one(state.baseline_arm, state.started_at)
    return candidate, baseline


def _wanting(
    state: RolloutState,
    plan: RolloutPlan,
    guards: Sequence[Guard],
    candidate: ArmStats | None,
    baseline: ArmStats | None,
) -> str | None:
    """What the step still waits for; None once there is enough to judge it."""
    needs = [(state.candidate, candidate)]
    if state.weight < 1.0:
        needs.append((state.baseline_arm, baseline))
    for name, arm in needs:
        count = arm.requests if arm is not None else 0
        if count < plan.min_requests:
            return f"{name} had {count} of {plan.min_requests} requests"
        for metric in {g.metric for g in guards if g.metric is not None}:
            rated = len(arm.values.get(metric, [])) if arm is not None else 0
            if rated < plan.min_feedback:
                return f"{name} had {rated} of {plan.min_feedback} {metric} values"
    return None


def _roll_back(engine: Engine, state: RolloutState, reason: str) -> RolloutState:
    rolled = state.moved(status="rolled_back", weight=0.0, reason=reason)
    save_rollout(engine, rolled)
    return rolled


def _step(state: RolloutState) -> str:
    return f"step {state.step + 1} of {len(state.steps)} ({state.weight:.0%})"
