"""A circuit breaker per deployment, so a dead upstream costs nothing once it has tripped.

    closed ──(failure_threshold consecutive failures)──> open
    open ──(cooldown_s passed; the next request is let through as a probe)──> half-open
    half-open ──(a probe succeeds)──> closed
    half-open ──(a probe fails)──> open (the cooldown starts again)

While open, ``allow`` refuses at once; while half-open it lets ``half_open_probes``
requests through at a time. The clock is injected so the state machine tests in
microseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from offramp.routing.config import BreakerSpec

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """The state of one deployment's circuit. Not thread-safe: one event loop owns it."""

    def __init__(self, spec: BreakerSpec, clock: Callable[[], float] = time.monotonic):
        self._spec = spec
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self.trips = 0  # times the circuit has opened

    @property
    def state(self) -> State:
        """The state now (an open circuit whose cooldown is over reads half-open)."""
        if self._state == "open" and self._cooled():
            return "half-open"
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._opened_at + self._spec.cooldown_s - self._clock())

    def allow(self) -> bool:
        """Whether a request may go to the deployment now. A True in half-open reserves a
        probe; the caller must report its end with ``success``, ``failure`` or ``release``."""
        if not self._spec.enabled:
            return True
        if self._state == "open":
            if not self._cooled():
                return False
            self._state, self._probes = "half-open", 0
        if self._state == "half-open":
            if self._probes >= self._spec.half_open_probes:
                return False
            self._probes += 1
        return True

    def success(self) -> None:
        """The deployment answered (an answer the client caused to fail counts too)."""
        self._failures = 0
        if self._state == "half-open":
            self._state, self._probes = "closed", 0

    def failure(self) -> None:
        """The deployment failed (unreachable, timed out, 429, 5xx, broken stream)."""
        self._failures += 1
        if not self._spec.enabled:
            return
        if self._state == "half-open" or self._failures >= self._spec.failure_threshold:
            self._open()

    def release(self) -> None:
        """The request ended without telling anything about the deployment (cancelled)."""
        if self._state == "half-open" and self._probes > 0:
            self._probes -= 1

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probes = 0
        self.trips += 1

    def _cooled(self) -> bool:
        return self._clock() >= self._opened_at + self._spec.cooldown_s
