"""Experiment arms: sticky assignment, weights within binomial bounds, arm views of a
route, prompt versions, confidence intervals and the adaptive mode's arithmetic, over
scripted providers (the real interface) and no database."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from typing import Any

import pytest

from offramp.errors import InvalidRequest
from offramp.gateway import calls
from offramp.ledger.confidence import estimate, wilson
from offramp.providers.base import Provider
from offramp.routing.bandit import significant_winner, thompson_shares
from offramp.routing.config import RouteSpec
from offramp.routing.experiment import Experiments, Subject, pick, stable_point
from offramp.routing.pricing import load_price_table
from offramp.routing.rollout import Guard, RolloutPlan
from offramp.routing.route import LocalModel, RouteBuilder
from offramp.routing.router import Router
from offramp.types import ChatRequest, Message
from tests.fakes import FakeProvider


def make_router(fakes: dict[str, FakeProvider], *routes: dict[str, Any]) -> Router:
    def local(name: str) -> LocalModel:
        async def target() -> Provider:
            return fakes[name]

        return LocalModel(target, "chat", "fake", name)

    builder = RouteBuilder(
        local=local,
        upstream=lambda spec: fakes[spec.model],
        prices=load_price_table(),
        rng=random.Random(0),
    )
    built = [builder.build(RouteSpec.model_validate(r))[0] for r in routes]
    return Router(built)


def ab_route(weights: tuple[float, float] = (1, 1), sticky: str = "user") -> dict[str, Any]:
    return {
        "name": "r",
        "deployments": [{"model": "a"}, {"model": "b"}],
        "experiment": {
            "name": "ab",
            "sticky": sticky,
            "arms": [
                {"name": "A", "model": "a", "weight": weights[0]},
                {"name": "B", "model": "local/b", "weight": weights[1]},
            ],
        },
    }


def arm_of(experiments: Experiments, router: Router, subject: Subject) -> str:
    view = experiments.assign(router.resolve("r", "chat"), subject)
    assert view.arm is not None
    return view.arm.arm


def test_the_same_user_always_gets_the_same_arm_and_users_spread() -> None:
    router = make_router({"a": FakeProvider("A"), "b": FakeProvider("B")}, ab_route())
    experiments = Experiments(router)
    for user in ("ann", "bob", "cy"):
        arms = {arm_of(experiments, router, Subject(f"req{i}", user=user)) for i in range(50)}
        assert len(arms) == 1  # 50 requests, each its own request id, one arm
    spread = Counter(arm_of(experiments, router, Subject("r", user=f"u{i}")) for i in range(200))
    assert spread["A"] > 60 and spread["B"] > 60


def test_weights_80_20_hold_within_binomial_bounds() -> None:
    router = make_router({"a": FakeProvider(), "b": FakeProvider()}, ab_route((80, 20)))
    experiments = Experiments(router)
    n = 1000
    got = Counter(arm_of(experiments, router, Subject("r", user=f"user-{i}")) for i in range(n))
    sd = math.sqrt(n * 0.8 * 0.2)  # 12.6
    assert abs(got["A"] - 800) < 4 * sd, got


@pytest.mark.parametrize(
    ("sticky", "subject", "expected"),
    [
        ("key", Subject("q", key="k1", user="u1", session="s1"), "key:k1"),
        ("user", Subject("q", key="k1", user="u1", session="s1"), "user:u1"),
        ("user", Subject("q", key="k1"), "key:k1"),
        ("session", Subject("q", key="k1", user="u1", session="s1"), "session:s1"),
        ("session", Subject("q", key="k1", user="u1"), "user:u1"),
        ("session", Subject("q"), "request:q"),
    ],
)
def test_the_sticky_subject_falls_back_to_the_key_then_the_request(
    sticky: str, subject: Subject, expected: str
) -> None:
    assert subject.of(sticky) == expected


def test_raising_a_share_only_moves_subjects_onto_the_first_arm() -> None:
    points = [stable_point("rollout", f"user:{i}") for i in range(500)]
    before = {
        i for i, p in enumerate(points) if pick([("cand", 0.05), ("base", 0.95)], p) == "cand"
    }
    after = {i for i, p in enumerate(points) if pick([("cand", 0.25), ("base", 0.75)], p) == "cand"}
    assert before < after and 5 <= len(before) <= 45 and 80 <= len(after) <= 170


def test_an_arm_with_weight_zero_gets_nothing() -> None:
    assert {pick([("a", 0.0), ("b", 1.0)], p / 100) for p in range(100)} == {"b"}
    assert {pick([("a", 1.0), ("b", 0.0)], p / 100) for p in range(100)} == {"a"}


def test_an_arm_walks_only_its_deployment_and_names_itself_in_the_outcome() -> None:
    fakes = {"a": FakeProvider("from a"), "b": FakeProvider("from b")}
    router = make_router(fakes, ab_route())
    experiments = Experiments(router)
    request = ChatRequest(model="r", messages=(Message("user", "hi"),))
    for user in (f"u{i}" for i in range(20)):
        view = experiments.assign(router.resolve("r", "chat"), Subject("q", user=user))
        routed = asyncio.run(calls.chat(router, view, request))
        assert view.arm is not None and routed.outcome.arm == view.arm
        assert routed.value.choices[0].text == ("from a" if view.arm.arm == "A" else "from b")
    assert fakes["a"].calls > 0 and fakes["b"].calls > 0


def test_a_prompt_version_replaces_the_system_prompt() -> None:
    fake = FakeProvider("ok")
    route = {
        "name": "r",
        "deployments": [{"model": "a"}],
        "experiment": {"arms": [{"name": "terse", "system": "Be terse."}]},
    }
    router = make_router({"a": fake}, route)
    view = Experiments(router).assign(router.resolve("r", "chat"), Subject("q"))
    request = ChatRequest(
        model="r", messages=(Message("system", "Be verbose."), Message("user", "hi"))
    )
    asyncio.run(calls.chat(router, view, request))
    sent = fake.requests[0].messages
    assert [(m.role, m.content) for m in sent] == [("system", "Be terse."), ("user", "hi")]
    assert view.arm is not None and view.arm.experiment == "r"  # named after the route


def test_an_arm_may_name_another_route() -> None:
    fakes = {"a": FakeProvider(), "c": FakeProvider()}
    route = {
        "name": "r",
        "deployments": [{"model": "a"}],
        "experiment": {"arms": [{"name": "other", "model": "c"}]},
    }
    router = make_router(fakes, route, {"name": "c", "deployments": [{"model": "c"}]})
    view = Experiments(router).assign(router.resolve("r", "chat"), Subject("q"))
    assert [d.id for d in view.deployments] == ["local/c"]
    assert "r" in view.equivalents  # priced as the name asked for
    assert view.name == "r" and view.spec.experiment is not None  # still route r's policy


def test_an_arm_naming_nothing_configured_fails_start_up() -> None:
    route = {
        "name": "r",
        "deployments": [{"model": "a"}],
        "experiment": {"arms": [{"model": "nowhere"}]},
    }
    with pytest.raises(InvalidRequest, match="nowhere"):
        Experiments(make_router({"a": FakeProvider()}, route))


@pytest.mark.parametrize(
    ("experiment", "words"),
    [
        ({"arms": []}, "at least 1"),
        ({"arms": [{"weight": 1}]}, "`name` or a `model`"),
        ({"arms": [{"name": "x"}, {"name": "x"}]}, "same name"),
        ({"arms": [{"name": "x", "weight": 0}]}, "add up to 0"),
        ({"arms": [{"name": "x"}], "sticky": "ip"}, "sticky"),
        ({"arms": [{"name": "x"}], "adaptive": {"metric": "m", "min_share": 0.9}}, "min_share"),
    ],
)
def test_bad_experiments_are_refused_naming_the_field(
    experiment: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        RouteSpec.model_validate(
            {"name": "r", "deployments": [{"model": "a"}], "experiment": experiment}
        )


def test_wilson_and_t_intervals_match_their_formulas() -> None:
    low, high = wilson(8, 10)  # known values: 0.4902, 0.9433
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    e = estimate([1.0, 2.0, 3.0, 4.0])
    assert e is not None and not e.boolean and e.mean == 2.5
    half = 3.182 * math.sqrt(sum((v - 2.5) ** 2 for v in (1, 2, 3, 4)) / 3) / 2
    assert math.isclose(e.high - e.mean, half) and math.isclose(e.mean - e.low, half)
    flags = estimate([1.0, 0.0, 1.0])
    assert flags is not None and flags.boolean and (flags.low, flags.high) == wilson(2, 3)
    assert estimate([]) is None


def test_thompson_shares_favour_the_better_arm_and_keep_the_floor() -> None:
    good, bad = estimate([1.0] * 40 + [0.0] * 10), estimate([1.0] * 15 + [0.0] * 35)
    shares = thompson_shares({"good": good, "bad": bad}, True, 0.1, random.Random(1))
    assert math.isclose(sum(shares.values()), 1.0)
    assert shares["good"] > 0.85 and math.isclose(shares["bad"], 0.1, abs_tol=0.01)
    unknown = thompson_shares({"x": None, "y": None}, True, 0.1, random.Random(1))
    assert abs(unknown["x"] - 0.5) < 0.05
    minimise = thompson_shares({"good": good, "bad": bad}, False, 0.1, random.Random(1))
    assert minimise["bad"] > 0.85


def test_the_winner_is_declared_only_when_significant_with_enough_samples() -> None:
    good, bad = estimate([1.0] * 40 + [0.0] * 10), estimate([1.0] * 15 + [0.0] * 35)
    verdict = significant_winner({"good": good, "bad": bad}, True, 30)
    assert verdict is not None and verdict.winner == "good" and "95% CI" in verdict.reason
    assert significant_winner({"good": good, "bad": bad}, True, 60) is None  # too few
    close = estimate([1.0] * 26 + [0.0] * 24)
    assert (
        significant_winner({"good": close, "bad": estimate([1.0] * 24 + [0.0] * 26)}, True, 30)
        is None
    )
    assert significant_winner({"good": good, "none": None}, True, 2) is None


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("error_rate<=0.05", (0.05, 1.0, 0.0)),
        ("latency_p95<=1.5x", (None, 1.5, 0.0)),
        ("thumbs>=baseline-0.05", (None, 1.0, -0.05)),
        ("score <= baseline + 2", (None, 1.0, 2.0)),
        ("cost<=0.002", (0.002, 1.0, 0.0)),
    ],
)
def test_guards_parse(text: str, bound: tuple[float | None, float, float]) -> None:
    guard = Guard.parse(text)
    assert (guard.absolute, guard.factor, guard.offset) == bound


@pytest.mark.parametrize("text", ["error_rate<0.05", "p95<=fast", "<=1", "thumbs>=baseline*2"])
def test_bad_guards_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Guard.parse(text)
    assert caught.value.param == "guard"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"steps": (50.0, 25.0)}, "steps"),
        ({"steps": (0.0, 100.0)}, "steps"),
        ({"steps": (5.0, 120.0)}, "steps"),
        ({"min_requests": 0}, "min_requests"),
        ({"sticky": "ip"}, "sticky"),
        ({"guards": ("nonsense",)}, "guard"),
    ],
)
def test_bad_rollout_plans_are_refused(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        RolloutPlan(**fields)
    assert caught.value.param == param


def test_thompson_shares_over_a_float_metric_and_an_arm_without_values() -> None:
    high = estimate([4.0, 4.5, 5.0, 4.2] * 10)
    low = estimate([2.0, 2.5, 3.0, 2.2] * 10)
    shares = thompson_shares({"high": high, "low": low, "new": None}, True, 0.05, random.Random(2))
    assert math.isclose(sum(shares.values()), 1.0)
    assert shares["high"] > shares["low"] and math.isclose(shares["low"], 0.05, abs_tol=0.01)
    assert shares["new"] > 0.06  # an arm with no values yet is still explored
    verdict = significant_winner({"high": high, "low": low}, True, 30)
    assert verdict is not None and verdict.winner == "high"
    assert significant_winner({"high": high, "low": low}, False, 30) is not None
