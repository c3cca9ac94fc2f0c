"""The circuit breaker's state machine and its accounting by attempt start, on an
injected clock."""

from __future__ import annotations

import asyncio

from offramp.routing.breaker import CircuitBreaker, Ticket
from offramp.routing.changes import Changes
from offramp.routing.config import BreakerSpec
from tests.virtual_time import VirtualClock


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> str:
    return breaker.state  # read afresh: the state changes behind the checker's back


def make(changes: Changes | None = None, **spec: object) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(BreakerSpec.model_validate(spec), clock, changes), clock


def admitted(breaker: CircuitBreaker) -> Ticket:
    ticket = breaker.admit()
    assert ticket is not None
    return ticket


def timeline(breaker: CircuitBreaker) -> list[tuple[float, str]]:
    return [(t.at, t.state) for t in breaker.timeline]


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker, _ = make(failure_threshold=3, cooldown_s=10)
    for _ in range(2):
        breaker.failure(admitted(breaker))
    breaker.success(admitted(breaker))  # a success in between resets the count
    for _ in range(2):
        breaker.failure(admitted(breaker))
    assert state(breaker) == "closed" and breaker.admit() is not None
    breaker.failure(admitted(breaker))
    assert state(breaker) == "open" and breaker.trips == 1
    assert breaker.admit() is None and breaker.ready_at() == 110


def test_half_open_after_the_cooldown_lets_one_probe_through() -> None:
    breaker, clock = make(failure_threshold=1, cooldown_s=10)
    breaker.failure(admitted(breaker))
    clock.now += 9.9
    assert breaker.admit() is None and breaker.retry_in() > 0
    clock.now += 0.2
    assert state(breaker) == "half-open"
    probe = admitted(breaker)
    assert probe.probe and breaker.probes_in_flight == 1
    assert breaker.admit() is None and breaker.ready_at() is None  # only one at a time
    breaker.success(probe)
    assert state(breaker) == "closed" and breaker.admit() and breaker.admit()
    assert timeline(breaker) == [
        (100, "closed"),
        (100, "open"),
        (clock.now, "half-open"),
        (clock.now, "closed"),
    ]


def test_a_failed_probe_opens_it_again_for_a_full_cooldown() -> None:
    breaker, clock = make(failure_threshold=5, cooldown_s=10)
    for _ in range(5):
        breaker.failure(admitted(breaker))
    clock.now += 10
    breaker.failure(admitted(breaker))
    assert state(breaker) == "open" and breaker.trips == 2
    assert breaker.retry_in() == 10
    clock.now += 10
    assert breaker.admit() is not None


def test_failures_of_attempts_begun_before_it_opened_neither_trip_nor_extend_it() -> None:
    breaker, clock = make(failure_threshold=2, cooldown_s=5)
    late = [admitted(breaker) for _ in range(6)]  # in flight when the fault begins
    breaker.failure(late[0])
    breaker.failure(late[1])
    assert state(breaker) == "open" and breaker.trips == 1
    clock.now += 4
    for ticket in late[2:4]:
        breaker.failure(ticket)  # time out while it is open
    assert breaker.trips == 1 and breaker.retry_in() == 1  # the cooldown is not restarted
    clock.now += 1
    probe = admitted(breaker)
    breaker.failure(late[4])  # began before the probe: does not re-open half-open
    assert state(breaker) == "half-open" and breaker.probes_in_flight == 1
    breaker.success(probe)
    breaker.failure(late[5])  # nor counts in the closed period after the probe
    assert state(breaker) == "closed" and breaker.consecutive_failures == 0
    assert [s for _, s in timeline(breaker)] == ["closed", "open", "half-open", "closed"]


def test_only_the_probe_decides_a_half_open_circuit() -> None:
    breaker, clock = make(failure_threshold=1, cooldown_s=1)
    breaker.failure(admitted(breaker))
    clock.now += 1
    probe = admitted(breaker)
    breaker.failure(probe)
    assert state(breaker) == "open" and breaker.trips == 2
    breaker.success(probe)  # a late report of the same attempt changes nothing
    assert state(breaker) == "open"


def test_a_cancelled_probe_frees_its_place_and_wakes_the_waiting() -> None:
    changes = Changes()
    breaker, clock = make(changes, failure_threshold=1, cooldown_s=1, half_open_probes=1)
    breaker.failure(admitted(breaker))
    clock.now += 1
    probe = admitted(breaker)

    async def scenario() -> bool:
        waiting = asyncio.ensure_future(changes.wait(None))
        await asyncio.sleep(0)
        breaker.release(probe)
        await asyncio.wait_for(waiting, 1)
        return True

    assert VirtualClock().run(scenario())
    assert state(breaker) == "half-open" and breaker.admit() is not None


def test_every_transition_wakes_the_waiting_and_a_quiet_wait_times_out() -> None:
    changes = Changes()
    virtual = VirtualClock()
    breaker = CircuitBreaker(BreakerSpec(failure_threshold=1, cooldown_s=2), virtual, changes)

    async def scenario() -> tuple[float, float]:
        started = virtual()
        await changes.wait(3.0)  # nothing happens: returns after its limit
        quiet = virtual() - started
        waiting = asyncio.ensure_future(changes.wait(10.0))
        await asyncio.sleep(0.5)
        breaker.failure(admitted(breaker))  # closed -> open
        await waiting
        return quiet, virtual() - started

    assert virtual.run(scenario()) == (3.0, 3.5)
    assert changes.waiting == 0


def test_a_disabled_breaker_never_opens() -> None:
    breaker, _ = make(enabled=False, failure_threshold=1)
    for _ in range(10):
        breaker.failure(admitted(breaker))
    assert state(breaker) == "closed" and breaker.admit() is not None
    assert breaker.ready_at() == 0.0
