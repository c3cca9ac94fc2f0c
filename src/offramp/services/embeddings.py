"""Embeddings: the provider call behind ``/v1/embeddings`` and ``offramp embed``."""

from __future__ import annotations

from offramp.services.pool import ModelPool
from offramp.types import EmbedRequest, EmbedResult


async def embed(pool: ModelPool, request: EmbedRequest) -> EmbedResult:
    """Embed every text; vectors come back L2-normalised, one per text, in order."""
    _spec, provider = await pool.get(request.model, "embedding")
    return await provider.embed(request)
