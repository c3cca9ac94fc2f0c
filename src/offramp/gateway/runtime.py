"""What the gateway routes over, built once per app and passed down."""

from __future__ import annotations

import random
from dataclasses import dataclass

from offramp.errors import InvalidRequest, ModelNotFound
from offramp.local.admission import Admission
from offramp.local.admitted import LocalTarget
from offramp.local.pool import ModelPool
from offramp.models.registry import ModelRegistry, ModelSpec
from offramp.providers.registry import ProviderRegistry
from offramp.routing.config import RouteSpec, load_routes
from offramp.routing.experiment import Experiments
from offramp.routing.pricing import PriceTable, load_price_table
from offramp.routing.route import LocalModel, RouteBuilder, implicit_spec
from offramp.routing.router import Router
from offramp.settings import Settings


@dataclass(frozen=True)
class ModelChanges:
    """What a reload of the models changed, by model name."""

    added: list[str]
    removed: list[str]  # gone from the config and the models dir: now 404
    realiased: list[str]  # e.g. a tuned model's plain name moved to its newest version
    restart_required: list[str]  # loaded with settings the config no longer has

    def as_json(self) -> dict[str, list[str]]:
        return {
            "added": self.added,
            "removed": self.removed,
            "realiased": self.realiased,
            "restart_required": self.restart_required,
        }


@dataclass(frozen=True)
class Runtime:
    """The loaded models (possibly shared between apps), this app's admission control,
    its router (every public name, local or routed, resolves there) and the routes'
    experiments and rollouts."""

    pool: ModelPool
    admission: Admission
    router: Router
    experiments: Experiments
    builder: RouteBuilder

    def reload_models(self, models: ModelRegistry) -> ModelChanges:
        """Serve ``models`` from now on: every model gets its plain route (new ones load
        on first use), configured routes stay as they are. InvalidRequest, with nothing
        changed, when a new name clashes with a route's."""
        previous = self.pool.models
        old = {s.name: s for s in previous.specs}
        new = {s.name: s for s in models.specs}
        implicit = {r.name: r for r in self.router.routes if r.implicit}
        self.pool.replace_models(models)  # new routes resolve their model against it
        try:
            routes = []
            for spec in models.specs:
                kept = implicit.get(spec.name)
                if kept is None or kept.spec.aliases != spec.aliases:
                    kept, _ = self.builder.build(
                        implicit_spec(spec.name, spec.aliases, spec.kind), implicit=True
                    )
                routes.append(kept)
            routes += [r for r in self.router.routes if not r.implicit]
            self.router.replace_routes(routes)
        except InvalidRequest:
            self.pool.replace_models(previous)
            raise

        def same_but_aliases(a: ModelSpec, b: ModelSpec) -> bool:
            return a.model_copy(update={"aliases": ()}) == b.model_copy(update={"aliases": ()})

        both = [name for name in new if name in old]
        return ModelChanges(
            added=[name for name in new if name not in old],
            removed=[name for name in old if name not in new],
            realiased=[n for n in both if old[n].aliases != new[n].aliases],
            restart_required=[
                n for n in both if self.pool.loaded(n) and not same_but_aliases(old[n], new[n])
            ],
        )


def build_runtime(
    settings: Settings,
    pool: ModelPool,
    providers: ProviderRegistry,
    prices: PriceTable | None = None,
) -> Runtime:
    """A runtime over ``pool`` with the routes of ``settings.config``: every entry of
    ``models:`` is a one-deployment route of its own name and aliases, and each entry of
    ``routes:`` adds a public name over its deployments. InvalidRequest (``config``) for a
    name configured twice, an unknown model or provider, an unpriced model, or an
    experiment arm that names nothing configured."""
    admission = Admission(settings.max_queue)

    def local(name: str) -> LocalModel:
        try:
            spec: ModelSpec = pool.models.resolve(name)
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
    for spec in pool.models.specs:
        route, _ = builder.build(implicit_spec(spec.name, spec.aliases, spec.kind), implicit=True)
        routes.append(route)
    for route_spec in load_routes(settings.config):
        route, created = builder.build(route_spec)
        routes.append(route)
        owned.extend(created)
    router = Router(routes, owned)
    for route in routes:
        _check_teacher(router, route.spec)
    # refuses an experiment arm that names neither a deployment nor a configured route
    return Runtime(pool, admission, router, Experiments(router), builder)


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
