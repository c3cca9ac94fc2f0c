"""The router: resolves a public name to its route and runs a request along it.

Every request, local or upstream, goes through here; a plain local model is a route of
one deployment with no retries, so its behaviour is the model's own. The loop is the
same for whole answers and streams (a stream's attempt ends at its first content), and
there is exactly one retry loop per request: providers never retry on their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from offramp.errors import InvalidRequest, ModelNotFound, OfframpError, UpstreamError
from offramp.providers.base import Capabilities, Provider
from offramp.routing.deployment import Deployment
from offramp.routing.outcome import Routed
from offramp.routing.retry import Deadline
from offramp.routing.route import Route
from offramp.routing.strategies import Hint
from offramp.routing.streams import Held, hold, tail
from offramp.routing.walk import Walk
from offramp.types import Kind, StreamItem

T = TypeVar("T")
Check = Callable[[Capabilities], None]  # raises the ClientError a deployment would give


class Router:
    """Routes by public name. ``clock`` is injectable for tests of backoff and breakers."""

    def __init__(
        self,
        routes: Sequence[Route],
        owned: Sequence[Provider] = (),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.routes = list(routes)
        self._owned = list(owned)
        self._clock = clock
        self._names: dict[str, Route] = {}
        for route in self.routes:
            for name in route.names():
                if name in self._names:
                    raise InvalidRequest(
                        f"model or route name {name!r} is configured twice", param="config"
                    )
                self._names[name] = route

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
        value, deployment, walk = await self._attempts(route, asked, hint, check, run)
        return Routed(value, walk.outcome(deployment))

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

        held, deployment, walk = await self._attempts(route, asked, hint, check, opened)
        outcome = walk.outcome(deployment)
        return Routed(tail(held, deployment, outcome), outcome)

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
    ) -> tuple[T, Deployment, Walk]:
        walk = Walk(
            route, route.ordered(hint), Deadline.after(route.spec.deadline_s, self._clock), asked
        )
        while (step := walk.next()) is not None:
            deployment, wait = step
            if wait > 0:
                await asyncio.sleep(wait)
                walk.waited_s += wait
            provider = await deployment.provider()
            try:
                check(provider.capabilities)
            except OfframpError as exc:
                walk.refuse(deployment, exc)
                continue
            if not deployment.breaker.allow():
                walk.skip(deployment, "circuit half-open, its probe is in flight")
                continue
            walk.attempts += 1
            answer = await self._attempt(walk, deployment, provider, run)
            if answer is not None:
                return answer.value, deployment, walk
        raise walk.exhausted()

    async def _attempt(
        self,
        walk: Walk,
        deployment: Deployment,
        provider: Provider,
        run: Callable[[Provider], Awaitable[T]],
    ) -> _Answer[T] | None:
        """One attempt; None after recording a failure that allows fallback."""
        limit = walk.deadline.limit(deployment.spec.timeout_s)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                value = await run(provider)
        except TimeoutError as exc:
            error: OfframpError = UpstreamError(
                f"{deployment.id} timed out after {time.perf_counter() - started:.2f}s",
                status=None,
                retryable=True,
                code="upstream_timeout",
            )
            error.__cause__ = exc
        except OfframpError as exc:
            error = exc
        except BaseException as exc:
            deployment.ended(exc, time.perf_counter() - started)
            raise
        else:
            elapsed = time.perf_counter() - started
            walk.upstream_s += elapsed
            deployment.succeeded(elapsed)
            return _Answer(value)
        elapsed = time.perf_counter() - started
        walk.upstream_s += elapsed
        deployment.ended(error, elapsed)
        walk.failed(deployment, error)
        return None


@dataclass(frozen=True)
class _Answer(Generic[T]):
    value: T
