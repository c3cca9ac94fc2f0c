"""A circuit breaker per deployment, so a dead upstream costs nothing once it has tripped.

    closed ──(failure_threshold consecutive failures)──> open
    open ──(cooldown_s passed; the next attempt is let through as the probe)──> half-open
    half-open ──(the probe succeeds)──> closed
    half-open ──(the probe fails)──> open (the cooldown starts again)

Accounting is by attempt start. ``admit`` gives each attempt a ``Ticket`` naming the
breaker's generation (every transition starts a new one) and whether it is the probe,
and an outcome counts only in the generation its attempt started in:

- a failure counts toward the threshold only while the closed period it started in
  lasts: a timeout that began before the circuit opened neither trips it again nor
  extends its cooldown, and one that began before a probe neither re-opens the half-open
  circuit nor counts in the closed period that follows the probe;
- while half-open only the probe's outcome counts; while open nothing is admitted.

While the probe is in flight ``admit`` refuses and ``ready_at`` is None: requests wait on
the route's ``Changes`` for its result rather than failing at once. Every transition is
kept, with its time, in ``timeline``. The clock is injected so the state machine tests in
microseconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from offramp.routing.changes import Changes
from offramp.routing.config import BreakerSpec

State = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class Ticket:
    """An attempt's admission: the generation it started in, and whether it is the probe."""

    generation: int
    probe: bool = False


@dataclass(frozen=True)
class Transition:
    """The circuit entered ``state`` at ``at`` (on the breaker's clock)."""

    at: float
    state: State


class CircuitBreaker:
    """The state of one deployment's circuit. Not thread-safe: one event loop owns it.

    ``changes`` is told of every transition (and of a probe handed back unused); the
    last ``history`` transitions are kept in ``timeline``."""

    def __init__(
        self,
        spec: BreakerSpec,
        clock: Callable[[], float] = time.monotonic,
        changes: Changes | None = None,
        history: int = 64,
    ):
        self._spec = spec
        self.clock = clock
        self._changes = changes or Changes()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self.generation = 0
        self.trips = 0  # times the circuit has opened
        self.timeline: deque[Transition] = deque([Transition(clock(), "closed")], maxlen=history)

    @property
    def state(self) -> State:
        """The state now (an open circuit whose cooldown is over reads half-open)."""
        if self._state == "open" and self._cooled():
            return "half-open"
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def probes_in_flight(self) -> int:
        return self._probes

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._opened_at + self._spec.cooldown_s - self.clock())

    def ready_at(self) -> float | None:
        """The clock time from which ``admit`` lets an attempt through (0.0: now); None
        while every probe place is taken, until a probe's result (a ``changes`` notice)."""
        if not self._spec.enabled:
            return 0.0
        if self._state == "open":
            return self._opened_at + self._spec.cooldown_s
        if self._state == "half-open" and self._probes >= self._spec.half_open_probes:
            return None
        return 0.0

    def admit(self) -> Ticket | None:
        """A ticket for an attempt that may go to the deployment now, or None. A ticket in
        half-open is a probe's; its end must be reported with ``success``, ``failure`` or
        ``release``."""
        if not self._spec.enabled:
            return Ticket(self.generation)
        if self._state == "open":
            if not self._cooled():
                return None
            self._move("half-open")
        if self._state == "half-open":
            if self._probes >= self._spec.half_open_probes:
                return None
            self._probes += 1
            return Ticket(self.generation, probe=True)
        return Ticket(self.generation)

    def success(self, ticket: Ticket) -> None:
        """The deployment answered (an answer the client caused to fail counts too)."""
        if ticket.generation != self.generation:
            return  # it started in a state that is over
        if self._state == "half-open":
            self._move("closed")
        else:
            self._failures = 0

    def failure(self, ticket: Ticket) -> None:
        """The deployment failed (unreachable, timed out, 429, 5xx, broken stream)."""
        if ticket.generation != self.generation:
            return  # began before a transition: it says nothing about the state now
        if self._state == "half-open":
            self._move("open")
            return
        self._failures += 1
        if self._spec.enabled and self._failures >= self._spec.failure_threshold:
            self._move("open")

    def release(self, ticket: Ticket) -> None:
        """The attempt ended without telling anything about the deployment (cancelled)."""
        if ticket.probe and ticket.generation == self.generation and self._probes > 0:
            self._probes -= 1
            self._changes.notify()  # a waiting request may take the probe

    def _move(self, state: State) -> None:
        now = self.clock()
        self._state = state
        self.generation += 1
        self._probes = 0
        if state == "open":
            self._opened_at = now
            self.trips += 1
        elif state == "closed":
            self._failures = 0
        self.timeline.append(Transition(now, state))
        self._changes.notify()

    def _cooled(self) -> bool:
        return self.clock() >= self._opened_at + self._spec.cooldown_s
