"""The router: resolves a public name to its route and runs a request along it.

Every request, local or upstream, goes through here; a plain local model is a route of
one deployment with no retries, so its behaviour is the model's own. The loop is the
same for whole answers and streams (a stream's attempt ends at its first content), and
there is exactly one retry loop per request: providers never retry on their own. When
``walk`` finds no deployment free, the loop waits on the route's ``Changes`` (a circuit's
transition) or the time the walk names, whichever comes first, and walks again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from offramp.errors import InvalidRequest, ModelNotFound, OfframpError, UpstreamError
from offramp.providers.base import Capabilities, Provider
from offramp.routing.breaker import Ticket
from offramp.routing.deployment import Deployment
from offramp.routing.outcome import Routed
from offramp.routing.retry import Deadline
from offramp.routing.route import Route
from offramp.routing.strategies import Hint
from offramp.routing.streams import Held, hold, tail
from offramp.routing.walk import Pause, Walk
from offramp.timeouts import cancel_after
from offramp.types import Kind, StreamItem

T = TypeVar("T")
Check = Callable[[Capabilities], None]  # raises the ClientError a deployment would give


class Router:
    """Routes by public name. ``clock`` (the one the routes' breakers use) is injectable
    for tests of backoff, breakers and ejection; it times attempts and waits too."""

    def __init__(
        self,
        routes: Sequence[Route],
        owned: Sequence[Provider] = (),
        clock: Callable[[], float] = time.monotonic,
    ):
        self._owned = list(owned)
        self._clock = clock
        self.routes = list(routes)
        self._names = _names_of(self.routes)

    def replace_routes(self, routes: Sequence[Route]) -> None:
        """Serve ``routes`` from now on (a reload of the models); InvalidRequest, with
        nothing changed, when a name is taken twice. Requests already running finish on
        the route they resolved."""
        names = _names_of(routes)
        self.routes, self._names = list(routes), names

    def resolve(self, name: str, kind: Kind) -> Route:
        """The route for ``name``; ModelNotFound (404) if unknown or of the wrong kind."""
        route = self._names.get(name)
        if route is None:
            known = ", ".join(sorted(self._names))
            raise ModelNotFound(
                f"The model `{name}` does not exist. Configured models: {known}", param="model"
            )
        if route.kind != kind:
            raise ModelNotFound(
                f"The model `{name}` is a {route.kind} model and cannot serve {kind} requests",
                param="model",
            )
        return route

    def named(self, name: str) -> Route:
        """The route ``name`` names, of any kind; InvalidRequest if none does."""
        route = self._names.get(name)
        if route is None:
            raise InvalidRequest(f"no route or model is named {name!r}", param="route")
        return route

    def names(self) -> list[tuple[str, Route]]:
        return list(self._names.items())

    async def call(
        self,
        route: Route,
        asked: str,
        hint: Hint,
        check: Check,
        run: Callable[[Provider], Awaitable[T]],
    ) -> Routed[T]:
        """``run`` on the route's deployments until one answers (see ``walk``)."""
        answer = await self._attempts(route, asked, hint, check, run)
        return Routed(answer.value, answer.walk.outcome(answer.deployment))

    async def stream(
        self,
        route: Route,
        asked: str,
        hint: Hint,
        check: Check,
        start: Callable[[Provider], AsyncIterator[StreamItem]],
    ) -> Routed[AsyncIterator[StreamItem]]:
        """Open a stream on the first deployment that produces content (see ``streams``)."""

        def opened(provider: Provider) -> Awaitable[Held]:
            return hold(start(provider))

        answer = await self._attempts(route, asked, hint, check, opened)
        outcome = answer.walk.outcome(answer.deployment)
        return Routed(tail(answer.value, answer.deployment, answer.ticket, outcome), outcome)

    async def aclose(self) -> None:
        """Close the upstream providers the routes created."""
        owned, self._owned = self._owned, []
        for provider in owned:
            await provider.aclose()

    async def _attempts(
        self,
        route: Route,
        asked: str,
        hint: Hint,
        check: Check,
        run: Callable[[Provider], Awaitable[T]],
    ) -> _Answer[T]:
        walk = Walk(
            route, route.ordered(hint), Deadline.after(route.spec.deadline_s, self._clock), asked
        )
        while (step := walk.next()) is not None:
            if isinstance(step, Pause):
                started = self._clock()
                await route.changes.wait(step.seconds)
                walk.waited_s += self._clock() - started
                continue
            provider = await step.provider()
            try:
                check(provider.capabilities)
            except OfframpError as exc:
                walk.refuse(step, exc)
                continue
            ticket = step.breaker.admit()
            if ticket is None:
                continue  # its probe was taken while the provider loaded: walk again
            walk.attempts += 1
            answer = await self._attempt(walk, step, ticket, provider, run)
            if answer is not None:
                return answer
        raise walk.exhausted()

    async def _attempt(
        self,
        walk: Walk,
        deployment: Deployment,
        ticket: Ticket,
        provider: Provider,
        run: Callable[[Provider], Awaitable[T]],
    ) -> _Answer[T] | None:
        """One attempt; None after recording a failure that allows fallback."""
        limit = walk.deadline.limit(deployment.spec.timeout_s)
        started = self._clock()
        try:
            with cancel_after(limit):
                value = await run(provider)
        except TimeoutError as exc:
            error: OfframpError = UpstreamError(
                f"{deployment.id} timed out after {self._clock() - started:.2f}s",
                status=None,
                retryable=True,
                code="upstream_timeout",
            )
            error.__cause__ = exc
        except OfframpError as exc:
            error = exc
        except BaseException as exc:
            deployment.ended(ticket, exc, self._clock() - started)
            raise
        else:
            elapsed = self._clock() - started
            walk.upstream_s += elapsed
            deployment.succeeded(ticket, elapsed)
            walk.route.outliers.answered(deployment, elapsed)
            return _Answer(value, deployment, ticket, walk)
        elapsed = self._clock() - started
        walk.upstream_s += elapsed
        deployment.ended(ticket, error, elapsed)
        walk.failed(deployment, error)
        return None


@dataclass(frozen=True)
class _Answer(Generic[T]):
    value: T
    deployment: Deployment
    ticket: Ticket
    walk: Walk


def _names_of(routes: Sequence[Route]) -> dict[str, Route]:
    names: dict[str, Route] = {}
    for route in routes:
        for name in route.names():
            if name in names:
                raise InvalidRequest(
                    f"model or route name {name!r} is configured twice", param="config"
                )
            names[name] = route
    return names
