"""Backoff between attempts (exponential, with jitter, honouring Retry-After) and the one
deadline that bounds every attempt and wait of a request."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from offramp.routing.config import RetrySpec


@dataclass(frozen=True)
class Backoff:
    """``delay(n)`` is the wait before the (n+1)-th retry of the same deployment:
    ``min(max_delay, base * 2**n)``, cut by a random share of up to ``jitter`` so
    clients that failed together do not come back together; never shorter than the
    upstream's ``Retry-After``."""

    spec: RetrySpec
    rng: random.Random

    def delay(self, retries_before: int, retry_after: float | None = None) -> float:
        step = min(self.spec.max_delay_s, self.spec.base_delay_s * (2.0 ** min(retries_before, 30)))
        step *= 1.0 - self.spec.jitter * self.rng.random()
        if retry_after is not None:
            step = max(step, retry_after)
        return step


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock after which no attempt starts and none runs on;
    ``at`` None means no deadline."""

    at: float | None
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(None if seconds is None else clock() + seconds, clock)

    def remaining(self) -> float | None:
        """Seconds left (never negative); None without a deadline."""
        if self.at is None:
            return None
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def allows(self, moment: float) -> bool:
        """Whether an attempt could still start at ``moment``."""
        return self.at is None or moment < self.at

    def limit(self, timeout: float | None) -> float | None:
        """The time one attempt may take: its own timeout, cut to what is left."""
        left = self.remaining()
        if left is None:
            return timeout
        return left if timeout is None else min(timeout, left)
