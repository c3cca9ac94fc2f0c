"""What the gateway routes over, built once per app and passed down."""

from __future__ import annotations

import random
from dataclasses import dataclass

from offramp.errors import InvalidRequest, ModelNotFound
from offramp.local.admission import Admission
from offramp.local.admitted import LocalTarget
from offramp.local.pool import ModelPool
from offramp.models.registry import ModelSpec
from offramp.providers.registry import ProviderRegistry
from offramp.routing.config import RouteSpec, load_routes
from offramp.routing.pricing import PriceTable, load_price_table
from offramp.routing.route import LocalModel, RouteBuilder, implicit_spec
from offramp.routing.router import Router
from offramp.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """The loaded models (possibly shared between apps), this app's admission control and
    its router (every public name, local or routed, resolves there)."""

    pool: ModelPool
    admission: Admission
    router: Router


def build_runtime(
    settings: Settings,
    pool: ModelPool,
    providers: ProviderRegistry,
    prices: PriceTable | None = None,
) -> Runtime:
    """A runtime over ``pool`` with the routes of ``settings.config``: every entry of
    ``models:`` is a one-deployment route of its own name and aliases, and each entry of
    ``routes:`` adds a public name over its deployments. InvalidRequest (``config``) for a
    name configured twice, an unknown model or provider, or an unpriced model."""
    admission = Admission(settings.max_queue)
    models = pool.models

    def local(name: str) -> LocalModel:
        try:
            spec: ModelSpec = models.resolve(name)
        except ModelNotFound as exc:
            raise InvalidRequest(
                f"a route deployment names model {name!r}, which is not in `models:` "
                "(give it a `provider` if it lives behind an upstream API)",
                param="config",
            ) from exc
        target = LocalTarget(pool, admission, spec.name, spec.kind)
        priced_as = str(spec.options.get("model", spec.name))
        return LocalModel(target, spec.kind, spec.backend, priced_as)

    builder = RouteBuilder(
        local=local,
        upstream=lambda spec: providers.create_upstream(spec, settings),
        prices=prices or load_price_table(),
        rng=random.Random(),
    )
    routes, owned = [], []
    for spec in models.specs:
        route, _ = builder.build(implicit_spec(spec.name, spec.aliases, spec.kind), implicit=True)
        routes.append(route)
    for route_spec in load_routes(settings.config):
        route, created = builder.build(route_spec)
        routes.append(route)
        owned.extend(created)
    router = Router(routes, owned)
    for route in routes:
        _check_teacher(router, route.spec)
    return Runtime(pool, admission, router)


def _check_teacher(router: Router, spec: RouteSpec) -> None:
    """A shadow's teacher must be a chat route or model of this config."""
    if spec.shadow is None:
        return
    try:
        router.resolve(spec.shadow.route, "chat")
    except ModelNotFound as exc:
        raise InvalidRequest(
            f"route {spec.name!r}: shadow route {spec.shadow.route!r} is not a configured "
            "chat route or model",
            param="config",
        ) from exc
