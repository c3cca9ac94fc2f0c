"""The circuit breaker's state machine, on an injected clock."""

from __future__ import annotations

from offramp.routing.breaker import CircuitBreaker
from offramp.routing.config import BreakerSpec


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> str:
    return breaker.state  # read afresh: the state changes behind the checker's back


def make(**spec: object) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(BreakerSpec.model_validate(spec), clock), clock


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker, _ = make(failure_threshold=3, cooldown_s=10)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success in between resets the count
    for _ in range(2):
        breaker.failure()
    assert state(breaker) == "closed" and breaker.allow()
    breaker.failure()
    assert state(breaker) == "open" and breaker.trips == 1
    assert not breaker.allow()


def test_half_open_after_the_cooldown_lets_one_probe_through() -> None:
    breaker, clock = make(failure_threshold=1, cooldown_s=10)
    breaker.failure()
    clock.now += 9.9
    assert not breaker.allow() and breaker.retry_in() > 0
    clock.now += 0.2
    assert state(breaker) == "half-open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.success()
    assert state(breaker) == "closed" and breaker.allow() and breaker.allow()


def test_a_failed_probe_opens_it_again_for_a_full_cooldown() -> None:
    breaker, clock = make(failure_threshold=5, cooldown_s=10)
    for _ in range(5):
        breaker.failure()
    clock.now += 10
    assert breaker.allow()
    breaker.failure()
    assert state(breaker) == "open" and breaker.trips == 2
    assert breaker.retry_in() == 10
    clock.now += 10
    assert breaker.allow()


def test_a_cancelled_probe_frees_its_place() -> None:
    breaker, clock = make(failure_threshold=1, cooldown_s=1, half_open_probes=1)
    breaker.failure()
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert state(breaker) == "half-open" and breaker.allow()


def test_a_disabled_breaker_never_opens() -> None:
    breaker, _ = make(enabled=False, failure_threshold=1)
    for _ in range(10):
        breaker.failure()
    assert state(breaker) == "closed" and breaker.allow()
