"""The model pool: loads each configured model's provider once and hands it out."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from offramp.memory import release_free_heap
from offramp.models.registry import ModelRegistry, ModelSpec
from offramp.models.sources import resolve
from offramp.providers.base import Capabilities, Provider
from offramp.providers.registry import ProviderRegistry
from offramp.settings import Settings

log = logging.getLogger(__name__)


class ModelPool:
    """Resolves public model names to loaded providers; loading runs off the event loop.

    A model is loaded at most once, on first use or by ``preload``; ``aclose`` releases
    every loaded provider.
    """

    def __init__(self, settings: Settings, models: ModelRegistry, providers: ProviderRegistry):
        self.settings = settings
        self.models = models
        self._providers = providers
        self._loaded: dict[str, Provider] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, name: str, kind: Literal["chat", "embedding"]
    ) -> tuple[ModelSpec, Provider]:
        """The spec and loaded provider for ``name``; ModelNotFound if unknown."""
        spec = self.models.resolve(name, kind=kind)
        provider = self._loaded.get(spec.name)
        if provider is None:
            provider = await self._load(spec)
        return spec, provider

    async def preload(self) -> None:
        """Load every configured model now (server start-up), each on its own thread at
        the same time: one model's native loading overlaps the other's imports."""
        await asyncio.gather(*(self._load(spec) for spec in self.models.specs))
        release_free_heap(collect=True)  # loading leaves much freed memory resident

    def replace_models(self, models: ModelRegistry) -> None:
        """Resolve names with ``models`` from now on (a reload). Loaded models stay loaded
        under their names; new ones load on first use or by ``preload_models``."""
        self.models = models

    async def preload_models(self, specs: list[ModelSpec]) -> None:
        """Load ``specs`` now, together (as ``preload`` does for every model)."""
        await asyncio.gather(*(self._load(spec) for spec in specs))

    def loaded(self, name: str) -> bool:
        return name in self._loaded

    def capabilities(self, name: str) -> Capabilities | None:
        """The capabilities of the model called ``name`` if it is loaded, else None."""
        provider = self._loaded.get(name)
        return provider.capabilities if provider is not None else None

    async def _load(self, spec: ModelSpec) -> Provider:
        lock = self._locks.setdefault(spec.name, asyncio.Lock())
        async with lock:
            if spec.name in self._loaded:
                return self._loaded[spec.name]
            path = resolve(spec.source, self.settings.models_dir)
            log.info("loading %s (%s) from %s", spec.name, spec.backend, path)
            provider = await asyncio.to_thread(self._providers.create, spec, path, self.settings)
            self._loaded[spec.name] = provider
            return provider

    async def aclose(self) -> None:
        loaded, self._loaded = self._loaded, {}
        for provider in loaded.values():
            await provider.aclose()
