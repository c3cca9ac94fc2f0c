"""One request's walk over a route's deployments: which to try next and when, and what
to tell the client when none answered.

The walk takes, in the strategy's order, the first deployment that can take the request
now: its circuit admits an attempt and its backoff is over. A deployment ejected as too
slow (``outliers``) is taken only when no other one can be. A deployment that fails with
a retryable error may be tried again after its backoff (never earlier than its
Retry-After); while it waits, the next deployment is tried at once. A failure that is not
retryable but allows fallback (a context-length error, a rejected key) retires the
deployment for this request.

When no deployment can be tried now, the request keeps its deadline and waits: for the
soonest backoff to end or circuit to half-open, or for a probe in flight to report (a
circuit's transition wakes it early), then walks the route again. It gives up, with 503
``no_deployment_available`` and a Retry-After, only when the route's attempt budget is
spent, every deployment is retired, or the soonest chance comes after its deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from offramp.errors import ClientError, NoDeploymentAvailable, OfframpError
from offramp.routing.deployment import Deployment
from offramp.routing.outcome import Outcome
from offramp.routing.retry import Deadline
from offramp.routing.route import Route

# Retry-After for a request that gave up while a probe was in flight: its result is near.
_PROBE_RETRY_AFTER_S = 1.0


@dataclass
class _Tries:
    retries: int = 0
    not_before: float = 0.0
    done: bool = False


@dataclass(frozen=True)
class Pause:
    """No deployment can be tried now: wait up to ``seconds`` (None: until a circuit of
    the route changes) and walk again."""

    seconds: float | None


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

    def next(self) -> Deployment | Pause | None:
        """The deployment to try now, a pause before walking again, or None when done."""
        if self.attempts >= self.route.spec.attempts:
            return None
        if self.deadline.expired():
            self._out_of_time = True
            return None
        now = self.deadline.clock()
        spare: Deployment | None = None
        soonest: float | None = None
        probing = False
        for deployment in self._order:
            tries = self._tries[deployment.id]
            if tries.done:
                continue
            ready = deployment.breaker.ready_at()
            if ready is None:
                probing = True
                continue
            at = max(ready, tries.not_before)
            if at > now:
                soonest = at if soonest is None else min(soonest, at)
            elif not self.route.outliers.ejected(deployment):
                return deployment
            elif spare is None:
                spare = deployment
        if spare is not None:
            return spare
        return self._pause(now, soonest, probing)

    def _pause(self, now: float, soonest: float | None, probing: bool) -> Pause | None:
        if soonest is None and not probing:
            return None  # every deployment is retired for this request
        if not probing and soonest is not None and not self.deadline.allows(soonest):
            self._out_of_time = True
            return None
        wait = None if soonest is None else soonest - now
        left = self.deadline.remaining()
        if left is not None:
            wait = left if wait is None else min(wait, left)
        return Pause(wait)

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
            arm=self.route.arm,
        )

    def exhausted(self) -> OfframpError:
        """The error for a request no deployment answered."""
        last = self._last
        if last is not None and (isinstance(last, ClientError) or len(self.route.deployments) == 1):
            return last
        if self.attempts == 0 and self._refusal is not None:
            return self._refusal
        notes = self._log + [
            f"{d.id}: {why}" for d in self._order if (why := self._blocked(d)) is not None
        ]
        why = "; ".join(notes) or "no deployment could take the request"
        if self._out_of_time:
            why += f"; the request's deadline ({self.route.spec.deadline_s}s) left no time to retry"
        return NoDeploymentAvailable(
            f"no deployment of {self.route.name!r} answered after {self.attempts} "
            f"attempt(s): {why}",
            retry_after=self._retry_after(),
        )

    def _blocked(self, deployment: Deployment) -> str | None:
        """Why a deployment not retired for this request cannot be tried now, if it cannot."""
        if self._tries[deployment.id].done:
            return None
        breaker = deployment.breaker
        if breaker.ready_at() is None:
            return "circuit half-open, its probe in flight"
        if breaker.retry_in() > 0:
            return f"circuit open ({breaker.retry_in():.1f}s left)"
        return None

    def _retry_after(self) -> float | None:
        now = self.deadline.clock()
        waits: list[float] = []
        for deployment in self._order:
            tries = self._tries[deployment.id]
            ready = deployment.breaker.ready_at()
            if ready is None:
                waits.append(_PROBE_RETRY_AFTER_S)
                continue
            at = ready if tries.done else max(ready, tries.not_before)
            if at > now:
                waits.append(at - now)
        return min(waits) if waits else None
