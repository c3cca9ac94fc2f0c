"""Embeddings: the provider call behind ``/v1/embeddings`` and ``offramp embed``."""

from __future__ import annotations

from offramp.services.runtime import Runtime
from offramp.types import EmbedRequest, EmbedResult


async def embed(runtime: Runtime, request: EmbedRequest) -> EmbedResult:
    """Embed every text; vectors come back L2-normalised, one per text, in order."""
    spec, provider = await runtime.pool.get(request.model, "embedding")
    with runtime.admission.slot(spec.name, provider.capabilities.concurrency):
        return await provider.embed(request)
