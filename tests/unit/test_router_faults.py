"""The router under hung, failing, flapping and slow deployments, with concurrent clients,
on a virtual clock: the router, its breakers and the fake upstreams share one clock that
jumps from timer to timer, so a minute of load runs in a fraction of a second."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest

from offramp.errors import NoDeploymentAvailable, OfframpError, UpstreamError
from offramp.providers.base import Capabilities, Provider
from offramp.routing.config import RouteSpec
from offramp.routing.deployment import Deployment
from offramp.routing.pricing import load_price_table
from offramp.routing.route import LocalModel, Route, RouteBuilder
from offramp.routing.router import Router
from offramp.routing.strategies import Hint
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionResult,
    Message,
    StreamEnd,
    StreamItem,
    Usage,
)
from tests.virtual_time import VirtualClock

REQUEST = ChatRequest(model="r", messages=(Message("user", "hi"),))
CAPS = Capabilities(chat=True, concurrency=64)


class Upstream(Provider):
    """A deployment whose health the test switches at any moment: ``ok`` answers after
    ``latency_s``; ``hang`` sends nothing until it is switched back (then answers);
    ``fail`` answers 503 at once; ``slow`` answers after ``slow_s``."""

    def __init__(self, latency_s: float = 0.05, slow_s: float = 3.0):
        self.mode = "ok"
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.calls = 0
        self.capabilities = CAPS
        self._back = asyncio.Event()  # clear while hanging
        self._back.set()

    def switch(self, mode: str) -> None:
        self.mode = mode
        if mode == "hang":
            self._back.clear()
        else:
            self._back.set()

    async def _reply(self) -> None:
        self.calls += 1
        await self._back.wait()
        if self.mode == "fail":
            raise UpstreamError("injected 503", status=503, retryable=True)
        await asyncio.sleep(self.slow_s if self.mode == "slow" else self.latency_s)

    async def chat(self, request: ChatRequest) -> CompletionResult:
        await self._reply()
        return CompletionResult("fake", (Choice(0, "ok", "stop"),), Usage(10, 1))

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        yield ChoiceDelta(0)  # a role-only chunk: the stream is open, nothing committed
        await self._reply()
        yield ChoiceDelta(0, "ok")
        yield ChoiceDelta(0, finish_reason="stop")
        yield StreamEnd(Usage(10, 1))


def make(clock: VirtualClock, upstreams: dict[str, Upstream], **route: Any) -> Router:
    route.setdefault("name", "r")
    route.setdefault("deployments", [{"model": name} for name in upstreams])
    route.setdefault("retry", {"base_delay_s": 0.1, "max_delay_s": 1.0})

    def local(name: str) -> LocalModel:
        async def target() -> Provider:
            return upstreams[name]

        return LocalModel(target, "chat", "fake", name)

    builder = RouteBuilder(
        local=local,
        upstream=lambda spec: upstreams[spec.model],
        prices=load_price_table(),
        rng=random.Random(7),
        clock=clock,
    )
    built, owned = builder.build(RouteSpec.model_validate(route))
    return Router([built], owned, clock=clock)


@dataclass(frozen=True)
class Result:
    started: float
    ended: float
    deployment: str | None
    error: OfframpError | None = None


async def one(router: Router, streaming: bool) -> str:
    route = router.resolve("r", "chat")
    if not streaming:
        routed = await router.call(route, "r", Hint(), lambda caps: None, lambda p: p.chat(REQUEST))
        return routed.outcome.deployment
    streamed = await router.stream(
        route, "r", Hint(), lambda caps: None, lambda p: p.stream_chat(REQUEST)
    )
    texts = [i.text async for i in streamed.value if isinstance(i, ChoiceDelta) and i.text]
    assert texts == ["ok"]
    return streamed.outcome.deployment


async def load(
    router: Router, clock: VirtualClock, clients: int, until: float, pause_s: float = 0.05
) -> list[Result]:
    """``clients`` concurrent clients (every other one streaming) asking until ``until``."""
    results: list[Result] = []

    async def client(index: int) -> None:
        await asyncio.sleep(index * 0.01)
        while clock() < until:
            started = clock()
            try:
                answered = await one(router, streaming=index % 2 == 1)
            except OfframpError as exc:
                results.append(Result(started, clock(), None, exc))
            else:
                results.append(Result(started, clock(), answered))
            await asyncio.sleep(pause_s)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return results


async def at(clock: VirtualClock, when: float, action: Callable[[], None]) -> None:
    await asyncio.sleep(when - clock())
    action()


def switch(mode: str, *upstreams: Upstream) -> Callable[[], None]:
    def act() -> None:
        for upstream in upstreams:
            upstream.switch(mode)

    return act


def run_with(clock: VirtualClock, main: Coroutine[Any, Any, Any], *events: Any) -> Any:
    async def everything() -> Any:
        results, *_ = await asyncio.gather(main, *events)
        return results

    return clock.run(everything())


def states(deployment: Deployment, start: float = 0.0) -> list[tuple[float, str]]:
    return [(t.at - start, t.state) for t in deployment.breaker.timeline]


def route_of(router: Router) -> Route:
    return router.routes[0]


def test_a_hung_deployment_loses_no_request_and_late_timeouts_do_not_trip_it_again() -> None:
    """A route of two (A hangs from 10 s to 25 s; 10 s attempt timeout, 30 s deadline,
    breaker 3 failures / 2 s cooldown) under 8 concurrent clients for 40 s."""
    clock = VirtualClock(0.0)
    a, b = Upstream(), Upstream()
    router = make(
        clock,
        {"a": a, "b": b},
        deployments=[{"model": "a", "timeout_s": 10}, {"model": "b", "timeout_s": 10}],
        deadline_s=30,
        breaker={"failure_threshold": 3, "cooldown_s": 2},
    )
    results = run_with(
        clock,
        load(router, clock, clients=8, until=40),
        at(clock, 10, switch("hang", a)),
        at(clock, 25, switch("ok", a)),
    )
    assert [r for r in results if r.error] == []
    assert len(results) > 1000
    dep_a, dep_b = route_of(router).deployments
    # The attempts in flight at 10 s time out together at 20 s: the circuit opens once,
    # the other timeouts of that moment neither trip it again nor restart its cooldown.
    # Its probe at 22 s hangs until the upstream recovers at 25 s and closes it then.
    timeline = states(dep_a)
    assert [s for _, s in timeline] == ["closed", "open", "half-open", "closed"]
    assert timeline[1][0] == pytest.approx(20, abs=0.1)
    assert timeline[2][0] == pytest.approx(22, abs=0.1)
    assert timeline[3][0] == pytest.approx(25, abs=0.2)
    assert dep_a.breaker.trips == 1 and [s for _, s in states(dep_b)] == ["closed"]
    after = [r for r in results if r.started > 26]
    assert after and all(r.deployment == "local/a" for r in after)  # A is preferred again


def test_a_request_waits_for_the_soonest_half_open_circuit_within_its_deadline() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(), Upstream()
    router = make(
        clock,
        {"a": a, "b": b},
        deadline_s=10,
        breaker={"failure_threshold": 1, "cooldown_s": 3},
    )
    a.switch("fail")
    b.switch("fail")

    async def scenario() -> tuple[Any, float]:
        route = route_of(router)
        asked = router.call(route, "r", Hint(), lambda caps: None, lambda p: p.chat(REQUEST))
        answered, _ = await asyncio.gather(asked, at(clock, 1.0, switch("ok", a)))
        return answered, clock()

    answered, took = clock.run(scenario())
    # Both failed at once and opened; the request kept its deadline, waited for A's
    # circuit to half-open at 3 s and was answered by the probe.
    assert answered.outcome.deployment == "local/a" and answered.outcome.attempts == 3
    assert took == pytest.approx(3.05, abs=0.01) and answered.outcome.waited_s >= 2.9
    assert [s for _, s in states(route_of(router).deployments[0])] == [
        "closed",
        "open",
        "half-open",
        "closed",
    ]


def test_no_deployment_available_only_when_the_deadline_cannot_be_met() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(), Upstream()
    router = make(
        clock,
        {"a": a, "b": b},
        deadline_s=2,
        breaker={"failure_threshold": 1, "cooldown_s": 5},
    )
    a.switch("fail")
    b.switch("fail")

    async def scenario() -> tuple[NoDeploymentAvailable, float]:
        started = clock()
        with pytest.raises(NoDeploymentAvailable) as info:
            await one(router, streaming=False)
        return info.value, clock() - started

    error, took = clock.run(scenario())
    assert took < 0.01  # both opened; the soonest half-open (5 s) is past the 2 s deadline
    assert error.retry_after == pytest.approx(5.0, abs=0.01)
    assert "circuit open" in error.message and "deadline" in error.message


def test_requests_wait_for_the_one_probe_in_flight_rather_than_failing() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(latency_s=1.0), Upstream()
    router = make(
        clock,
        {"a": a, "b": b},
        deadline_s=10,
        breaker={"failure_threshold": 1, "cooldown_s": 2},
    )
    a.switch("fail")
    b.switch("fail")

    async def timed() -> tuple[str, float]:
        started = clock()
        return await one(router, streaming=False), clock() - started

    async def scenario() -> list[tuple[str, float]]:
        with pytest.raises(NoDeploymentAvailable):
            await one(router, streaming=False)  # both fail, both open; attempts spent
        a.switch("ok")  # back, but its circuit is open for a whole cooldown
        await asyncio.sleep(2.0)
        calls = a.calls
        answers = await asyncio.gather(*(timed() for _ in range(20)))
        assert a.calls - calls == 20  # one probe, then the 19 that waited for its result
        return answers

    answers = clock.run(scenario())
    # The probe takes 1 s; the others wait for its result, then take 1 s each.
    assert {deployment for deployment, _ in answers} == {"local/a"}
    assert max(took for _, took in answers) == pytest.approx(2.0, abs=0.05)
    dep_a = route_of(router).deployments[0]
    assert [s for _, s in states(dep_a)][-2:] == ["half-open", "closed"]
    assert dep_a.breaker.probes_in_flight == 0 and route_of(router).changes.waiting == 0


def test_both_down_is_503_with_retry_after_and_recovers_within_one_cooldown() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(), Upstream()
    router = make(
        clock,
        {"a": a, "b": b},
        deadline_s=3,
        breaker={"failure_threshold": 3, "cooldown_s": 2},
    )
    results = run_with(
        clock,
        load(router, clock, clients=8, until=30, pause_s=0.2),
        at(clock, 5, switch("fail", a, b)),
        at(clock, 15, switch("ok", a, b)),
    )
    failed = [r for r in results if r.error is not None]
    assert failed and all(isinstance(r.error, NoDeploymentAvailable) for r in failed)
    assert all(r.error is not None and r.error.retry_after for r in failed)
    assert all(5 <= r.ended <= 15 + 2 for r in failed)
    for deployment in route_of(router).deployments:
        timeline = states(deployment)
        pairs = list(pairwise(timeline))
        opened = [t for _, (t, s) in pairs if s == "open"]
        trips = [t for (_, before), (t, _) in pairs if before == "closed"]
        assert len(trips) == 1 and 5 <= trips[0] < 6  # opened once for the outage...
        assert all(5 <= t < 15 for t in opened)  # ...and again only on failed probes
        assert timeline[-1][1] == "closed" and 15 <= timeline[-1][0] <= 15 + 2 + 0.1
    recovered = [r for r in results if r.started > 15 + 2.1]
    assert recovered and all(r.error is None for r in recovered)


def test_a_long_deadline_outlives_an_outage_of_both() -> None:
    """With a deadline longer than the outage, requests wait it out: none fails."""
    clock = VirtualClock(0.0)
    a, b = Upstream(), Upstream()
    router = make(
        clock,
        {"a": a, "b": b},
        deadline_s=30,
        breaker={"failure_threshold": 2, "cooldown_s": 2},
        retry={"max_attempts": 20, "base_delay_s": 0.1, "max_delay_s": 1},
    )
    results = run_with(
        clock,
        load(router, clock, clients=8, until=20),
        at(clock, 5, switch("fail", a, b)),
        at(clock, 12, switch("ok", a, b)),
    )
    assert [r for r in results if r.error] == []
    waited = [r for r in results if r.ended - r.started > 2]
    assert waited and all(r.ended >= 12 for r in waited)


def test_a_slow_deployment_is_ejected_and_traffic_moves_to_the_others() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(latency_s=0.1, slow_s=2.0), Upstream(latency_s=0.1)
    router = make(
        clock,
        {"a": a, "b": b},
        strategy="weighted",
        outlier_detection={"min_samples": 3, "window": 10, "base_ejection_s": 5},
    )
    results = run_with(
        clock,
        load(router, clock, clients=6, until=35),
        at(clock, 5, switch("slow", a)),
        at(clock, 20, switch("ok", a)),
    )
    outliers = route_of(router).outliers
    dep_a, dep_b = route_of(router).deployments
    assert [r for r in results if r.error] == []
    # Ejected after its first 3 slow answers (for 5 s), again after 3 more (for 10 s).
    assert outliers.ejections(dep_a) == 2 and outliers.ejections(dep_b) == 0
    last = outliers.last_ejected(dep_a)
    assert last is not None and 12 < last < 20

    def share_of_a(start: float, end: float) -> float:
        window: list[Result] = [r for r in results if start <= r.started < end]
        return sum(r.deployment == "local/a" for r in window) / len(window)

    assert 0.35 < share_of_a(0, 5) < 0.65 and share_of_a(5, 20) < 0.1
    assert dep_a.breaker.trips == 0  # slow is not failing
    late = [r for r in results if r.started > last + 10]
    assert {r.deployment for r in late} == {"local/a", "local/b"}  # back in rotation


def test_ejections_in_a_row_last_longer_and_the_last_healthy_one_stays() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(latency_s=2.0), Upstream(latency_s=0.1)
    router = make(
        clock,
        {"a": a, "b": b},
        strategy="weighted",
        outlier_detection={"min_samples": 2, "window": 4, "base_ejection_s": 1},
    )
    route = route_of(router)
    dep_a, dep_b = route.deployments
    for _ in range(3):
        route.outliers.answered(dep_b, 0.1)
    route.outliers.answered(dep_a, 2.0)
    assert not route.outliers.ejected(dep_a)  # one answer is not a median yet
    route.outliers.answered(dep_a, 2.0)
    assert route.outliers.ejected(dep_a) and route.outliers.ejected_for(dep_a) == 1.0
    clock.now += 1.0
    route.outliers.answered(dep_a, 2.0)
    route.outliers.answered(dep_a, 2.0)
    assert route.outliers.ejected_for(dep_a) == 2.0  # the second in a row lasts twice as long
    clock.now += 2.0 + 2.0  # it behaves for as long as its last ejection lasted
    route.outliers.answered(dep_a, 2.0)
    route.outliers.answered(dep_a, 2.0)
    assert route.outliers.ejected_for(dep_a) == 1.0  # the count starts over
    clock.now += 1.0
    b_ticket = [dep_b.breaker.admit() for _ in range(5)]
    for ticket in b_ticket:
        assert ticket is not None
        dep_b.breaker.failure(ticket)
    assert dep_b.breaker.state == "open"
    route.outliers.answered(dep_a, 2.0)
    route.outliers.answered(dep_a, 2.0)
    assert not route.outliers.ejected(dep_a)  # the last healthy deployment is never ejected


def test_an_ejected_deployment_still_answers_when_no_other_can() -> None:
    clock = VirtualClock(0.0)
    a, b = Upstream(latency_s=2.0), Upstream(latency_s=0.1)
    router = make(
        clock,
        {"a": a, "b": b},
        outlier_detection={"min_samples": 1, "window": 4, "base_ejection_s": 60},
        breaker={"failure_threshold": 1, "cooldown_s": 30},
    )
    route = route_of(router)
    dep_a, dep_b = route.deployments
    route.outliers.answered(dep_b, 0.1)
    route.outliers.answered(dep_a, 2.0)
    assert route.outliers.ejected(dep_a)

    async def scenario() -> tuple[str, str]:
        first = await one(router, streaming=False)
        b.switch("fail")
        second = await one(router, streaming=False)
        return first, second

    assert clock.run(scenario()) == ("local/b", "local/a")
