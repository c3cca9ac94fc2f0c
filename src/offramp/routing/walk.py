"""One request's walk over a route's deployments: which to try next and when, and what
to tell the client when none answered.

The walk tries deployments in the strategy's order. A deployment that fails with a
retryable error may be tried again after its backoff (never earlier than its
Retry-After); while it waits, the next deployment is tried at once. A failure that is
not retryable but allows fallback (a context-length error, a rejected key) retires the
deployment for this request. Everything stops at the route's attempt budget or the
request's one deadline, whichever comes first; an open circuit is skipped at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from offramp.errors import ClientError, NoDeploymentAvailable, OfframpError
from offramp.routing.deployment import Deployment
from offramp.routing.outcome import Outcome
from offramp.routing.retry import Deadline
from offramp.routing.route import Route


@dataclass
class _Tries:
    retries: int = 0
    not_before: float = 0.0
    done: bool = False


class Walk:
    """The state of one request on one route."""

    def __init__(self, route: Route, order: list[Deployment], deadline: Deadline, asked: str):
        self.route = route
        self.deadline = deadline
        self.attempts = 0
        self.upstream_s = 0.0
        self.waited_s = 0.0
        self._asked = asked
        self._order = order
        self._tries = {d.id: _Tries() for d in order}
        self._log: list[str] = []
        self._last: OfframpError | None = None
        self._refusal: OfframpError | None = None
        self._out_of_time = False

    def next(self) -> tuple[Deployment, float] | None:
        """The deployment to try next and the seconds to wait first; None when done."""
        if self.attempts >= self.route.spec.attempts:
            return None
        if self.deadline.expired():
            self._out_of_time = True
            return None
        now = self.deadline.clock()
        later: tuple[Deployment, float] | None = None
        for deployment in self._order:
            tries = self._tries[deployment.id]
            if tries.done:
                continue
            if deployment.breaker.state == "open":
                self.skip(deployment, f"circuit open ({deployment.breaker.retry_in():.1f}s left)")
                continue
            if tries.not_before <= now:
                return deployment, 0.0
            if later is None or tries.not_before < later[1]:
                later = (deployment, tries.not_before)
        if later is None:
            return None
        if not self.deadline.allows(later[1]):
            self._out_of_time = True
            return None
        return later[0], later[1] - now

    def skip(self, deployment: Deployment, why: str) -> None:
        """Leave ``deployment`` out of this request (circuit open, no probe free)."""
        self._tries[deployment.id].done = True
        self._log.append(f"{deployment.id}: {why}")

    def refuse(self, deployment: Deployment, error: OfframpError) -> None:
        """``deployment`` cannot take this request (a capability it lacks)."""
        self._tries[deployment.id].done = True
        self._refusal = self._refusal or error

    def failed(self, deployment: Deployment, error: OfframpError) -> None:
        """Record a failed attempt; raises ``error`` itself when no fallback may help."""
        self._last = error
        self._log.append(f"{deployment.id}: {error.message}")
        if not error.fallback:
            raise error
        tries = self._tries[deployment.id]
        if not error.retryable:
            tries.done = True
            return
        delay = self.route.backoff.delay(tries.retries, error.retry_after)
        tries.retries += 1
        tries.not_before = self.deadline.clock() + delay

    def outcome(self, deployment: Deployment) -> Outcome:
        equivalent = self.route.equivalents[self._asked]
        return Outcome(
            deployment.id,
            self.attempts,
            self.upstream_s,
            self.waited_s,
            deployment.price,
            equivalent,
        )

    def exhausted(self) -> OfframpError:
        """The error for a request no deployment answered."""
        last = self._last
        if last is not None and (isinstance(last, ClientError) or len(self.route.deployments) == 1):
            return last
        if self.attempts == 0 and self._refusal is not None:
            return self._refusal
        why = "; ".join(self._log) or "no deployment could take the request"
        if self._out_of_time:
            why += f"; the request's deadline ({self.route.spec.deadline_s}s) left no time to retry"
        return NoDeploymentAvailable(
            f"no deployment of {self.route.name!r} answered after {self.attempts} "
            f"attempt(s): {why}",
            retry_after=self._retry_after(),
        )

    def _retry_after(self) -> float | None:
        now = self.deadline.clock()
        waits = [d.breaker.retry_in() for d in self._order if d.breaker.state == "open"]
        waits += [t.not_before - now for t in self._tries.values() if t.not_before > now]
        return min(waits) if waits else None
