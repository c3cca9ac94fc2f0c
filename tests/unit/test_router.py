"""The router's walk over deployments, driven by scripted providers (the real interface)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from offramp.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    NoDeploymentAvailable,
    Overloaded,
    UnknownParameter,
    UpstreamError,
)
from offramp.gateway.calls import check_chat
from offramp.providers.base import Provider
from offramp.routing.breaker import CircuitBreaker
from offramp.routing.config import RouteSpec
from offramp.routing.outcome import Routed
from offramp.routing.pricing import load_price_table
from offramp.routing.route import LocalModel, RouteBuilder
from offramp.routing.router import Router
from offramp.routing.strategies import Hint
from offramp.types import ChatRequest, ChoiceDelta, CompletionResult, Message, StreamEnd
from tests.fakes import FakeProvider

REQUEST = ChatRequest(model="r", messages=(Message("user", "hi"),))
FAST = {"base_delay_s": 0.01, "max_delay_s": 0.05, "jitter": 0.0}


def down(retry_after: float | None = None, status: int = 503) -> UpstreamError:
    return UpstreamError(
        f"upstream answered {status}", status=status, retryable=True, retry_after=retry_after
    )


def state(breaker: CircuitBreaker) -> str:
    return breaker.state


def make_router(fakes: dict[str, FakeProvider], **route: Any) -> Router:
    route.setdefault("name", "r")
    route.setdefault("deployments", [{"model": name} for name in fakes])
    route.setdefault("retry", FAST)

    def local(name: str) -> LocalModel:
        async def target() -> Provider:
            return fakes[name]

        return LocalModel(target, "chat", "fake", name)

    builder = RouteBuilder(
        local=local,
        upstream=lambda spec: fakes[spec.model],
        prices=load_price_table(),
        rng=random.Random(7),
    )
    built, owned = builder.build(RouteSpec.model_validate(route))
    return Router([built], owned)


def ask(router: Router, request: ChatRequest = REQUEST) -> Routed[CompletionResult]:
    route = router.resolve(request.model, "chat")
    return asyncio.run(
        router.call(
            route,
            request.model,
            Hint(prompt_tokens=10, completion_tokens=16),
            lambda caps: check_chat(caps, request),
            lambda p: p.chat(request),
        )
    )


def stream(router: Router, request: ChatRequest = REQUEST) -> tuple[list[str], Routed[Any]]:
    async def go() -> tuple[list[str], Routed[Any]]:
        route = router.resolve(request.model, "chat")
        routed = await router.stream(
            route, request.model, Hint(), lambda caps: None, lambda p: p.stream_chat(request)
        )
        texts = []
        async for item in routed.value:
            if isinstance(item, ChoiceDelta) and item.text:
                texts.append(item.text)
            assert not isinstance(item, StreamEnd) or item.usage.prompt_tokens == 10
        return texts, routed

    return asyncio.run(go())


def test_falls_back_in_priority_order_and_reports_the_attempts() -> None:
    a, b, c = FakeProvider(down()), FakeProvider(down(status=500)), FakeProvider("from c")
    routed = ask(make_router({"a": a, "b": b, "c": c}))
    assert routed.value.choices[0].text == "from c"
    assert routed.outcome.deployment == "local/c"
    assert routed.outcome.attempts == 3
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)


def test_a_bad_request_goes_back_unretried() -> None:
    a, b = FakeProvider(InvalidRequest("no", param="x")), FakeProvider("b")
    with pytest.raises(InvalidRequest):
        ask(make_router({"a": a, "b": b}))
    assert (a.calls, b.calls) == (1, 0)


def test_context_length_falls_back_without_retrying_that_deployment() -> None:
    a, b = FakeProvider(ContextLengthExceeded("too long")), FakeProvider(down(), "b")
    routed = ask(make_router({"a": a, "b": b}))
    assert routed.outcome.deployment == "local/b"
    assert (a.calls, b.calls) == (1, 2)  # b retried after its backoff; a never again


def test_retries_one_deployment_with_backoff() -> None:
    a = FakeProvider(down(), down(), "third time")
    routed = ask(make_router({"a": a}, retry={**FAST, "max_attempts": 3}))
    assert routed.value.choices[0].text == "third time"
    assert routed.outcome.attempts == 3
    assert routed.outcome.waited_s >= 0.01 + 0.02 * 0.99


def test_retry_after_is_honoured() -> None:
    a = FakeProvider(down(retry_after=0.3, status=429), "ok")
    started = time.perf_counter()
    routed = ask(make_router({"a": a}))
    assert time.perf_counter() - started >= 0.3
    assert routed.outcome.waited_s == pytest.approx(0.3, abs=0.02)
    assert routed.outcome.attempts == 2


def test_one_deadline_bounds_every_retry() -> None:
    a, b = FakeProvider(down()), FakeProvider(down())
    router = make_router(
        {"a": a, "b": b},
        deadline_s=0.4,
        retry={**FAST, "max_attempts": 1000},
        breaker={"enabled": False},
    )
    started = time.perf_counter()
    with pytest.raises(NoDeploymentAvailable) as info:
        ask(router)
    elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 0.8
    assert "deadline" in info.value.message and "local/a" in info.value.message
    assert a.calls + b.calls < 100  # the 50 ms backoff cap, not a busy loop


def test_a_slow_deployment_times_out_and_the_next_answers() -> None:
    a, b = FakeProvider(2.0), FakeProvider("b")
    router = make_router(
        {"a": a, "b": b}, deployments=[{"model": "a", "timeout_s": 0.1}, {"model": "b"}]
    )
    started = time.perf_counter()
    routed = ask(router)
    assert time.perf_counter() - started < 1.0
    assert routed.outcome.deployment == "local/b" and routed.outcome.attempts == 2
    assert router.routes[0].deployments[0].stats.failures == 1


def test_breaker_opens_skips_at_no_cost_then_closes_after_a_probe() -> None:
    a, b = FakeProvider(down()), FakeProvider("b")
    router = make_router(
        {"a": a, "b": b},
        breaker={"failure_threshold": 2, "cooldown_s": 0.3},
        retry={**FAST, "max_attempts": 2},
    )
    breaker = router.routes[0].deployments[0].breaker
    ask(router)
    ask(router)
    assert state(breaker) == "open" and a.calls == 2
    routed = ask(router)
    assert a.calls == 2  # skipped while open
    assert routed.outcome.attempts == 1 and routed.outcome.deployment == "local/b"
    time.sleep(0.35)
    assert state(breaker) == "half-open"
    a.script("a is back")
    routed = ask(router)
    assert routed.outcome.deployment == "local/a" and state(breaker) == "closed"


def test_every_deployment_down_is_503_listing_each() -> None:
    a, b = FakeProvider(down()), FakeProvider(UpstreamError("bad key", status=401, retryable=False))
    with pytest.raises(NoDeploymentAvailable) as info:
        ask(make_router({"a": a, "b": b}, retry={**FAST, "max_attempts": 3}))
    assert info.value.status_code == 503
    assert "local/a" in info.value.message and "bad key" in info.value.message
    assert b.calls == 1  # a rejected key is not retried


def test_a_single_deployment_route_raises_its_own_error() -> None:
    a = FakeProvider(Overloaded("queue full", retry_after=3))
    with pytest.raises(Overloaded) as info:
        ask(make_router({"a": a}, retry={"max_attempts": 1}))
    assert info.value.retry_after == 3


def test_extra_fields_go_only_to_deployments_that_pass_them_on() -> None:
    local, upstream = FakeProvider("local"), FakeProvider("upstream", passthrough=True)
    request = ChatRequest(model="r", messages=REQUEST.messages, extra={"reasoning_effort": "low"})
    router = make_router(
        {"local": local, "up": upstream},
        deployments=[{"model": "local"}, {"provider": "fake", "model": "up"}],
    )
    routed = ask(router, request)
    assert routed.outcome.deployment == "fake/up" and routed.outcome.attempts == 1
    assert upstream.requests[0].extra == {"reasoning_effort": "low"} and local.calls == 0
    with pytest.raises(UnknownParameter) as info:
        ask(make_router({"local": FakeProvider()}), request)
    assert info.value.param == "reasoning_effort"


def test_a_stream_that_fails_before_content_falls_back() -> None:
    a = FakeProvider(["", down()])  # a role-only chunk, then an error event
    b = FakeProvider(["from ", "b"])
    texts, routed = stream(make_router({"a": a, "b": b}))
    assert texts == ["from ", "b"]
    assert routed.outcome.deployment == "local/b" and routed.outcome.attempts == 2
    assert routed.outcome.usage is not None and routed.outcome.usage.completion_tokens == 2


def test_after_the_first_content_a_stream_never_switches() -> None:
    a = FakeProvider(["first", down()])
    b = FakeProvider(["b"])
    router = make_router({"a": a, "b": b})
    with pytest.raises(UpstreamError):
        stream(router)
    assert b.calls == 0
    assert router.routes[0].deployments[0].stats.failures == 1


def test_weighted_strategy_spreads_by_weight() -> None:
    fakes = {"a": FakeProvider("a"), "b": FakeProvider("b")}
    router = make_router(
        fakes,
        strategy="weighted",
        deployments=[{"model": "a", "weight": 3}, {"model": "b", "weight": 1}],
    )
    for _ in range(400):
        ask(router)
    assert 250 < fakes["a"].calls < 350 and fakes["a"].calls + fakes["b"].calls == 400


def test_cheapest_strategy_prefers_the_lower_price() -> None:
    fakes = {"dear": FakeProvider("dear"), "cheap": FakeProvider("cheap")}
    router = make_router(
        fakes,
        strategy="cheapest",
        deployments=[
            {"model": "dear", "price": {"input": 2.5, "output": 10}},
            {"model": "cheap", "price": {"input": 0.1, "output": 0.4}},
        ],
    )
    routed = ask(router)
    assert routed.outcome.deployment == "local/cheap"
    assert routed.outcome.cost(routed.value.usage) == pytest.approx((10 * 0.1 + 5 * 0.4) / 1e6)


def test_least_latency_strategy_prefers_the_faster_measured_deployment() -> None:
    fakes = {"slow": FakeProvider(0.05), "fast": FakeProvider("fast")}
    router = make_router(fakes, strategy="least-latency")
    ask(router)  # neither measured: the configured order
    ask(router)  # the unmeasured one goes first to get measured
    ask(router)
    assert fakes["slow"].calls == 1 and fakes["fast"].calls == 2
