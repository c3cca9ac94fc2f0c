"""Experiments against the ledger on real SQLite and PostgreSQL: per-arm statistics equal
what the rows hold, the adaptive mode converges on the arm with the better feedback rate
and stops, and rollouts advance, finish, resume and roll back by their guards."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from offramp.errors import InvalidRequest
from offramp.ledger.confidence import wilson
from offramp.ledger.experiments import ArmFilter, arm_stats, experiment_report
from offramp.ledger.records import UsageRecord
from offramp.ledger.rollouts import read_decisions, read_rollout
from offramp.ledger.schema import feedback
from offramp.ledger.store import insert_usage
from offramp.routing.experiment import Experiments, Subject
from offramp.routing.rollout import (
    RolloutPlan,
    abort_rollout,
    check_rollout,
    run_rollout,
    start_rollout,
)
from tests.backing import ledger_engine
from tests.fakes import FakeProvider
from tests.unit.test_experiments import make_router


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with ledger_engine(request.param, tmp_path) as the_engine:
        yield the_engine


def served(
    arm: str,
    *,
    route: str = "r",
    experiment: str = "ab",
    status: int = 200,
    latency_ms: float = 100.0,
    cost: float = 0.001,
    ts: float | None = None,
) -> UsageRecord:
    return UsageRecord(
        request_id=uuid.uuid4().hex,
        ts=time.time() if ts is None else ts,
        endpoint="chat",
        model=route,
        route=route,
        deployment=arm,
        status=status,
        latency_ms=latency_ms,
        cost_usd=cost,
        experiment=experiment,
        arm=arm,
    )


def rate(
    engine: Engine, records: Sequence[UsageRecord], metric: str, values: Sequence[float]
) -> None:
    rows = [
        {
            "id": uuid.uuid4().hex,
            "ts": time.time(),
            "request_id": r.request_id,
            "metric": metric,
            "value": v,
            "source": "api",
        }
        for r, v in zip(records, values, strict=True)
    ]
    with engine.begin() as conn:
        conn.execute(insert(feedback), rows)


def nearest(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-int(q * 1000) * len(ordered) // 1000) - 1)]


def test_arm_statistics_equal_what_the_ledger_holds(engine: Engine) -> None:
    rng = random.Random(7)
    records = [
        served(
            arm,
            status=rng.choice([200, 200, 200, 500]),
            latency_ms=rng.uniform(10, 900),
            cost=rng.uniform(0, 0.01),
        )
        for arm in ["A"] * 60 + ["B"] * 40
    ]
    records.append(served("A", experiment="other"))  # another experiment: not counted
    records.append(served("A", route="elsewhere"))
    insert_usage(engine, records)
    ab = [r for r in records if r.route == "r" and r.experiment == "ab"]
    thumbs = [float(rng.random() < 0.6) for _ in ab]
    rate(engine, ab, "thumbs", thumbs)
    rate(engine, ab[:3], "thumbs", [1.0, 1.0, 1.0])  # a later rating replaces the first
    thumbs[:3] = [1.0, 1.0, 1.0]
    scores = [rng.uniform(0, 5) for _ in ab[::3]]
    rate(engine, ab[::3], "score", scores)

    stats = {s.arm: s for s in arm_stats(engine, ArmFilter(route="r", experiment="ab"))}
    assert sorted(stats) == ["A", "B"]
    for name, arm in stats.items():
        mine = [r for r in ab if r.arm == name]
        ok = [r.latency_ms for r in mine if r.status == 200]
        assert arm.requests == len(mine)
        assert arm.errors == sum(r.status != 200 for r in mine)
        assert arm.error_rate == pytest.approx(arm.errors / len(mine))
        assert arm.cost_usd == pytest.approx(sum(r.cost_usd for r in mine))
        assert arm.latency(0.5) == pytest.approx(nearest(ok, 0.5))
        assert arm.latency(0.95) == pytest.approx(nearest(ok, 0.95))
        flags = [v for r, v in zip(ab, thumbs, strict=True) if r.arm == name]
        thumb = arm.metric("thumbs")
        assert thumb is not None and thumb.boolean and thumb.n == len(flags)
        assert thumb.mean == pytest.approx(sum(flags) / len(flags))
        assert (thumb.low, thumb.high) == pytest.approx(wilson(sum(flags), len(flags)))
        own = [v for r, v in zip(ab[::3], scores, strict=True) if r.arm == name]
        score = arm.metric("score")
        assert score is not None and not score.boolean and score.n == len(own)
        assert score.mean == pytest.approx(sum(own) / len(own))
        assert score.low < score.mean < score.high
    report = experiment_report(engine, "r")
    assert [(i["experiment"], [a["arm"] for a in i["arms"]]) for i in report] == [
        ("ab", ["A", "B"]),
        ("other", ["A"]),
    ]


def adaptive_router() -> Experiments:
    route = {
        "name": "r",
        "deployments": [{"model": "a"}, {"model": "b"}],
        "experiment": {
            "name": "ab",
            "arms": [{"name": "A", "model": "a"}, {"name": "B", "model": "b"}],
            "adaptive": {"metric": "thumbs", "min_share": 0.1, "min_samples": 60, "refresh_s": 1},
        },
    }
    router = make_router({"a": FakeProvider(), "b": FakeProvider()}, route)
    ticks = itertools.count(1000, 5)  # every look at the clock is 5 s on: shares are due
    return Experiments(router, rng=random.Random(3), clock=lambda: float(next(ticks)))


def test_the_adaptive_mode_converges_on_the_better_arm_and_stops(engine: Engine) -> None:
    experiments = adaptive_router()
    route = experiments.router.resolve("r", "chat")
    rng = random.Random(11)
    good = {"A": 0.3, "B": 0.75}  # B's answers are liked far more often
    shares_of_b: list[float] = []
    for round_ in range(30):
        experiments.refresh(engine)
        plan = experiments.plans()[0]
        if plan["winner"] is not None:
            break
        shares_of_b.append(plan["weights"]["B"])
        records = []
        for i in range(40):
            view = experiments.assign(route, Subject("q", user=f"user-{round_}-{i}"))
            assert view.arm is not None
            records.append(served(view.arm.arm))
        insert_usage(engine, records)
        rate(engine, records, "thumbs", [float(rng.random() < good[r.arm or ""]) for r in records])
    plan = experiments.plans()[0]
    assert plan["winner"] == "B" and plan["source"] == "decided", shares_of_b
    assert plan["weights"] == {"A": 0.0, "B": 1.0} and "95% CI" in plan["decision"]
    assert abs(shares_of_b[0] - 0.5) < 0.1 and shares_of_b[1] > 0.8  # moved after one round
    assert read_decisions(engine)[("r", "ab")].winner == "B"  # shared with every replica
    view = experiments.assign(route, Subject("q", user="anyone"))
    assert view.arm is not None and view.arm.arm == "B"
    again = adaptive_router()  # a replica starting later takes the decision as it stands
    again.refresh(engine)
    assert again.plans()[0]["weights"] == {"A": 0.0, "B": 1.0}


def test_a_rollout_whose_guards_hold_steps_through_to_done(engine: Engine) -> None:
    plan = RolloutPlan(
        steps=(10, 50, 100),
        guards=("error_rate<=0.1", "latency_p95<=1.5x", "thumbs>=baseline-0.1"),
        min_requests=20,
    )
    state = start_rollout(engine, "r", "cand", "base", plan, now=1000.0)
    assert (state.status, state.weight) == ("running", 0.1)
    assert check_rollout(engine, "r", now=1001.0).step == 0  # no traffic yet: waits
    for step, weight in enumerate((0.1, 0.5, 1.0)):
        assert state.weight == weight
        now = read_rollout(engine, "r").step_started_at  # type: ignore[union-attr]
        cand = [served("cand", experiment="rollout", ts=now + 1) for _ in range(20)]
        base = [served("base", experiment="rollout", ts=now + 1) for _ in range(20)]
        insert_usage(engine, cand + base)
        rate(engine, cand + base, "thumbs", [1.0] * 40)
        state = check_rollout(engine, "r", now=now + 2)
        assert state.step == min(step + 1, 2) or state.status == "done"
    assert (
        state.status == "done"
        and state.weight == 1.0
        and "every guard held" in (state.reason or "")
    )


def test_a_rollout_rolls_back_when_a_guard_fails(engine: Engine) -> None:
    plan = RolloutPlan(steps=(25, 100), guards=("thumbs>=baseline-0.1",), min_requests=10)
    start_rollout(engine, "r", "cand", None, plan, now=1000.0)
    cand = [served("cand", experiment="rollout", ts=1001.0) for _ in range(10)]
    base = [served("baseline", experiment="rollout", ts=1001.0) for _ in range(10)]
    insert_usage(engine, cand + base)
    rate(engine, cand, "thumbs", [1.0] * 3 + [0.0] * 7)
    rate(engine, base, "thumbs", [1.0] * 9 + [0.0])
    state = check_rollout(engine, "r", now=1002.0)
    assert state.status == "rolled_back" and state.weight == 0.0
    assert "thumbs>=baseline-0.1" in (state.reason or "") and "candidate 0.3" in (
        state.reason or ""
    )
    assert check_rollout(engine, "r", now=1003.0) == state  # nothing moves any more


def test_a_step_without_enough_traffic_rolls_back_at_its_timeout(engine: Engine) -> None:
    plan = RolloutPlan(steps=(50, 100), min_requests=5, step_timeout_s=60)
    start_rollout(engine, "r", "cand", None, plan, now=1000.0)
    insert_usage(engine, [served("cand", experiment="rollout", ts=1001.0) for _ in range(5)])
    assert check_rollout(engine, "r", now=1030.0).status == "running"
    state = check_rollout(engine, "r", now=1061.0)
    assert state.status == "rolled_back" and "baseline had 0 of 5 requests" in (state.reason or "")


def test_a_rollout_resumes_where_it_stopped_and_can_be_aborted(engine: Engine) -> None:
    plan = RolloutPlan(steps=(10, 100), min_requests=1, interval_s=0.0)
    start_rollout(engine, "r", "cand", "base", plan, now=1000.0)
    insert_usage(engine, [served(a, experiment="rollout", ts=1001.0) for a in ("cand", "base")])
    assert check_rollout(engine, "r", now=1002.0).step == 1
    resumed = start_rollout(engine, "r", "cand", "base", plan)
    assert (resumed.step, resumed.weight) == (1, 1.0)  # went on, not back to 10%
    fresh = start_rollout(engine, "r", "cand", "base", plan, restart=True)
    assert (fresh.step, fresh.weight) == (0, 0.1)
    aborted = abort_rollout(engine, "r")
    assert (aborted.status, aborted.weight) == ("aborted", 0.0)
    assert run_rollout(engine, "r", sleep=lambda _: None).status == "aborted"
    with pytest.raises(InvalidRequest, match="no rollout"):
        check_rollout(engine, "nowhere")


def test_servers_read_the_rollout_weight_from_the_database(engine: Engine) -> None:
    router = make_router(
        {"a": FakeProvider(), "b": FakeProvider()},
        {"name": "r", "deployments": [{"model": "a"}, {"model": "b"}]},
    )
    experiments = Experiments(router)
    route = router.resolve("r", "chat")
    assert experiments.assign(route, Subject("q", user="u")) is route  # no experiment
    start_rollout(engine, "r", "b", "a", RolloutPlan(steps=(30, 100)))
    experiments.refresh(engine)
    arms = [experiments.assign(route, Subject("q", user=f"u{i}")).arm for i in range(1000)]
    share = sum(1 for a in arms if a is not None and a.arm == "b") / 1000
    assert abs(share - 0.3) < 0.06 and all(
        a is not None and a.experiment == "rollout" for a in arms
    )
    view = experiments.assign(route, Subject("q", user="u1"))
    assert [d.id for d in view.deployments] in (["local/a"], ["local/b"])
    start_rollout(engine, "nowhere", "x")  # a route this server lacks: logged, not applied
    abort_rollout(engine, "r")
    experiments.refresh(engine)
    assert [p["route"] for p in experiments.plans()] == ["r"]
    assert {experiments.assign(route, Subject("q", user=f"u{i}")).arm.arm for i in range(200)} == {
        "a"
    }  # type: ignore[union-attr]
