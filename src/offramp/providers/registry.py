"""The provider registry: backend name -> factory. Built-ins register like anyone else.

Two kinds of backend: a *model* backend (``llamacpp``, ``sentence-transformers``) loads a
model file named in the ``models:`` list; an *upstream* backend (``openai-compatible``,
``openai``, ``anthropic``) talks to an HTTP API named by a route's deployment (an
``UpstreamSpec``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from offramp.errors import InvalidRequest
from offramp.models.registry import ModelSpec
from offramp.providers.base import Provider
from offramp.providers.upstream import UpstreamSpec
from offramp.settings import Settings

ProviderFactory = Callable[[ModelSpec, Path, Settings], Provider]
UpstreamFactory = Callable[[UpstreamSpec, Settings], Provider]


class ProviderRegistry:
    """Maps a model spec's ``backend`` (or a deployment's ``provider``) to the factory
    that builds its provider."""

    def __init__(self) -> None:
        self._factories: dict[str, ProviderFactory] = {}
        self._upstreams: dict[str, UpstreamFactory] = {}

    def register(self, backend: str, factory: ProviderFactory) -> None:
        self._factories[backend] = factory

    def register_upstream(self, backend: str, factory: UpstreamFactory) -> None:
        self._upstreams[backend] = factory

    def upstream_backends(self) -> list[str]:
        """Names a route's deployment may give as its ``provider``."""
        return sorted(self._upstreams)

    def create_upstream(self, spec: UpstreamSpec, settings: Settings) -> Provider:
        """The provider for one upstream deployment; InvalidRequest (``config``) if the
        backend is unknown or its configuration is incomplete."""
        factory = self._upstreams.get(spec.backend)
        if factory is None:
            known = ", ".join(self.upstream_backends())
            raise InvalidRequest(
                f"deployment provider {spec.backend!r} is not registered (known: {known})",
                param="config",
            )
        return factory(spec, settings)

    def create(self, spec: ModelSpec, path: Path, settings: Settings) -> Provider:
        factory = self._factories.get(spec.backend)
        if factory is None:
            raise InvalidRequest(
                f"model {spec.name!r} names backend {spec.backend!r}, which is not registered",
                param="config",
            )
        return factory(spec, path, settings)


def _llamacpp(spec: ModelSpec, path: Path, settings: Settings) -> Provider:
    from offramp.providers.llamacpp.provider import LlamaCppProvider

    return LlamaCppProvider(spec, path, settings)


def _sentence_transformers(spec: ModelSpec, path: Path, settings: Settings) -> Provider:
    from offramp.providers.sentence_transformers import SentenceTransformersProvider

    return SentenceTransformersProvider(spec, path, settings)


def _openai_compatible(spec: UpstreamSpec, settings: Settings) -> Provider:
    from offramp.providers.openai_compat.provider import build_openai_compatible

    return build_openai_compatible(spec, settings)


def _openai(spec: UpstreamSpec, settings: Settings) -> Provider:
    from offramp.providers.openai_compat.provider import build_openai

    return build_openai(spec, settings)


def _anthropic(spec: ModelSpec, path: Path, settings: Settings) -> Provider:
    from offramp.providers.anthropic.provider import AnthropicProvider

    return AnthropicProvider.from_spec(spec, settings)


def _anthropic_upstream(spec: UpstreamSpec, settings: Settings) -> Provider:
    from offramp.providers.anthropic.provider import AnthropicProvider

    return AnthropicProvider.from_upstream(spec, settings)


def builtin_registry() -> ProviderRegistry:
    """A registry holding the providers that ship with offramp."""
    registry = ProviderRegistry()
    registry.register("llamacpp", _llamacpp)
    registry.register("sentence-transformers", _sentence_transformers)
    registry.register_upstream("openai-compatible", _openai_compatible)
    registry.register_upstream("openai", _openai)
    registry.register("anthropic", _anthropic)
    registry.register_upstream("anthropic", _anthropic_upstream)
    return registry
