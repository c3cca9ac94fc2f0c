"""The provider registry: backend name -> factory. Built-ins register like anyone else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from offramp.errors import InvalidRequest
from offramp.models.registry import ModelSpec
from offramp.providers.base import Provider
from offramp.settings import Settings

ProviderFactory = Callable[[ModelSpec, Path, Settings], Provider]


class ProviderRegistry:
    """Maps a model spec's ``backend`` to the factory that builds its provider."""

    def __init__(self) -> None:
        self._factories: dict[str, ProviderFactory] = {}

    def register(self, backend: str, factory: ProviderFactory) -> None:
        self._factories[backend] = factory

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


def _anthropic(spec: ModelSpec, path: Path, settings: Settings) -> Provider:
    from offramp.providers.anthropic.provider import AnthropicProvider

    return AnthropicProvider.from_spec(spec, settings)


def builtin_registry() -> ProviderRegistry:
    """A registry holding the providers that ship with offramp."""
    registry = ProviderRegistry()
    registry.register("llamacpp", _llamacpp)
    registry.register("sentence-transformers", _sentence_transformers)
    registry.register("anthropic", _anthropic)
    return registry
