"""One deployment of a route at run time: how to reach its provider, its price, its
circuit breaker and its recent health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from offramp.errors import ClientError, OfframpError, ProviderError
from offramp.providers.base import Provider
from offramp.routing.breaker import CircuitBreaker, Ticket
from offramp.routing.config import DeploymentSpec
from offramp.routing.pricing import Price
from offramp.routing.stats import DeploymentStats

# Returns the (possibly lazily loaded) provider of a deployment.
Target = Callable[[], Awaitable[Provider]]


class Deployment:
    """A deployment's provider, price, breaker and stats; outcomes are reported here, each
    with the ``Ticket`` its attempt was admitted with."""

    def __init__(self, spec: DeploymentSpec, target: Target, price: Price, breaker: CircuitBreaker):
        self.spec = spec
        self.id = spec.id
        self.price = price
        self.breaker = breaker
        self.stats = DeploymentStats()
        self._target = target

    async def provider(self) -> Provider:
        return await self._target()

    def succeeded(self, ticket: Ticket, seconds: float) -> None:
        """It answered (or, streaming, sent its first content) after ``seconds``."""
        self.breaker.success(ticket)
        self.stats.record(True, seconds)

    def ended(self, ticket: Ticket, error: BaseException, seconds: float) -> None:
        """It did not answer. Provider failures count against the breaker; an answer the
        client caused (a 4xx) shows the deployment alive; anything else (cancellation,
        a full local queue) says nothing about its health."""
        if isinstance(error, ProviderError):
            self.breaker.failure(ticket)
            self.stats.record(False, seconds)
        elif isinstance(error, ClientError):
            self.breaker.success(ticket)
        else:
            self.breaker.release(ticket)

    def failed_midway(self, ticket: Ticket, error: OfframpError) -> None:
        """A stream that had started failed later (the client got an SSE error event)."""
        if isinstance(error, ProviderError):
            self.breaker.failure(ticket)
            self.stats.record(False, 0.0)
