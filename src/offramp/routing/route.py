"""A route at run time, and how routes are built from their config."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from offramp.errors import InvalidRequest
from offramp.providers.base import Provider
from offramp.providers.upstream import UpstreamSpec
from offramp.routing.breaker import CircuitBreaker
from offramp.routing.changes import Changes
from offramp.routing.config import (
    BreakerSpec,
    DeploymentSpec,
    OutlierSpec,
    RetrySpec,
    RouteSpec,
)
from offramp.routing.deployment import Deployment, Target
from offramp.routing.outcome import ArmChoice
from offramp.routing.outliers import Outliers
from offramp.routing.pricing import FREE, Price, PriceTable
from offramp.routing.retry import Backoff
from offramp.routing.strategies import STRATEGIES, Hint, Order
from offramp.types import ChatRequest, Kind, Message


@dataclass(frozen=True)
class LocalModel:
    """What building a route needs to know about an entry of ``models:``."""

    target: Target
    kind: Kind
    backend: str
    priced_as: str  # the model name a price table would list it under


@dataclass
class Route:
    """A public name (and aliases), its deployments, and how a request walks them."""

    spec: RouteSpec
    deployments: tuple[Deployment, ...]
    order: Order
    backoff: Backoff
    equivalents: Mapping[str, Price]  # OpenAI list price to compare with, per public name
    changes: Changes  # wakes requests waiting on its circuits
    outliers: Outliers  # which of its deployments are ejected as too slow
    implicit: bool = False  # built for a plain entry of `models:`
    arm: ArmChoice | None = None  # set on the view of the route an experiment assigned

    def prompted(self, request: ChatRequest) -> ChatRequest:
        """``request`` as this route's experiment arm sends it: with the arm's system
        prompt in place of the request's leading system messages, if it has one."""
        if self.arm is None or self.arm.system is None:
            return request
        rest = list(request.messages)
        while rest and rest[0].role == "system":
            rest.pop(0)
        return replace(request, messages=(Message("system", self.arm.system), *rest))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    def names(self) -> tuple[str, ...]:
        return (self.spec.name, *self.spec.aliases)

    def ordered(self, hint: Hint) -> list[Deployment]:
        return self.order(self.deployments, hint, self.backoff.rng)


def implicit_spec(name: str, aliases: tuple[str, ...], kind: Kind) -> RouteSpec:
    """The route every plain model gets: itself, one attempt, no deadline, no breaker, so
    its behaviour (errors, 503 with Retry-After) is exactly the model's own."""
    return RouteSpec(
        name=name,
        aliases=aliases,
        kind=kind,
        deployments=(DeploymentSpec(model=name, timeout_s=None),),
        deadline_s=None,
        retry=RetrySpec(max_attempts=1),
        breaker=BreakerSpec(enabled=False),
        outlier_detection=OutlierSpec(enabled=False),
    )


@dataclass(frozen=True)
class RouteBuilder:
    """Builds routes; ``local`` resolves a ``models:`` entry, ``upstream`` builds the
    provider of an upstream deployment (both raise InvalidRequest on bad config)."""

    local: Callable[[str], LocalModel]
    upstream: Callable[[UpstreamSpec], Provider]
    prices: PriceTable
    rng: random.Random
    clock: Callable[[], float] = time.monotonic

    def build(self, spec: RouteSpec, *, implicit: bool = False) -> tuple[Route, list[Provider]]:
        """The route, and the upstream providers it created (the caller closes them)."""
        owned: list[Provider] = []
        changes = Changes()
        deployments = tuple(self._deployment(spec, d, changes, owned) for d in spec.deployments)
        equivalents = {
            name: self.prices.openai_equivalent(spec.kind, name, spec.openai_equivalent)
            for name in (spec.name, *spec.aliases)
        }
        route = Route(
            spec,
            deployments,
            STRATEGIES[spec.strategy],
            Backoff(spec.retry, self.rng),
            equivalents,
            changes,
            Outliers(spec.outlier_detection, deployments, self.clock),
            implicit,
        )
        return route, owned

    def _deployment(
        self, route: RouteSpec, spec: DeploymentSpec, changes: Changes, owned: list[Provider]
    ) -> Deployment:
        breaker = CircuitBreaker(route.breaker, self.clock, changes)
        if spec.provider is None:
            local = self.local(spec.model)
            if local.kind != route.kind:
                raise InvalidRequest(
                    f"route {route.name!r} is a {route.kind} route but its deployment "
                    f"{spec.model!r} is a {local.kind} model",
                    param="config",
                )
            price = self._price(spec, local.backend, local.priced_as)
            return Deployment(spec, local.target, price, breaker)
        provider = self.upstream(spec.upstream())
        owned.append(provider)
        price = self._price(spec, spec.provider, spec.model)

        async def target() -> Provider:
            return provider

        return Deployment(spec, target, price, breaker)

    def _price(self, spec: DeploymentSpec, provider: str, model: str) -> Price:
        if spec.price is not None:
            return Price(**spec.price.model_dump())
        if self.prices.prices(provider):
            return self.prices.require(provider, model, what=f"deployment {spec.id}")
        return FREE
