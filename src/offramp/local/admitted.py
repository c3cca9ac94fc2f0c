"""Entries of ``models:`` as route deployments: the pool's provider behind this app's
admission queue, loaded on first use."""

from __future__ import annotations

from collections.abc import AsyncIterator

from offramp.local.admission import Admission
from offramp.local.pool import ModelPool
from offramp.providers.base import Provider
from offramp.types import (
    ChatRequest,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    Kind,
    StreamItem,
)


class AdmittedModel(Provider):
    """A loaded model whose every request holds a place in the admission queue (503 with
    Retry-After when it is full; a stream holds its place until it ends)."""

    def __init__(self, name: str, provider: Provider, admission: Admission):
        self._name = name
        self._provider = provider
        self._admission = admission
        self.capabilities = provider.capabilities

    async def chat(self, request: ChatRequest) -> CompletionResult:
        with self._admission.slot(self._name, self.capabilities.concurrency):
            return await self._provider.chat(request)

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        return self._admission.stream(
            self._name, self.capabilities.concurrency, self._provider.stream_chat(request)
        )

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        with self._admission.slot(self._name, self.capabilities.concurrency):
            return await self._provider.complete(request)

    def stream_complete(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        return self._admission.stream(
            self._name, self.capabilities.concurrency, self._provider.stream_complete(request)
        )

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        with self._admission.slot(self._name, self.capabilities.concurrency):
            return await self._provider.embed(request)


class LocalTarget:
    """Resolves one ``models:`` entry to its admitted provider (loading it if needed)."""

    def __init__(self, pool: ModelPool, admission: Admission, name: str, kind: Kind):
        self._pool = pool
        self._admission = admission
        self._name = name
        self._kind = kind
        self._admitted: AdmittedModel | None = None

    async def __call__(self) -> Provider:
        if self._admitted is None:
            spec, provider = await self._pool.get(self._name, self._kind)
            self._admitted = AdmittedModel(spec.name, provider, self._admission)
        return self._admitted
