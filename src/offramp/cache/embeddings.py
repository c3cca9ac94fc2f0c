"""The embedding cache: one entry per text, so repeated texts are embedded once, within
a batch and across batches.

A batch's token count is shared among its texts in proportion to their length when they
are stored (the provider counts a batch, not each text), so usage reported for cached
texts is close to, not exactly, what embedding them again would report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from offramp.cache import keys
from offramp.cache.backends import CacheBackend
from offramp.cache.codec import dump_vector, load_vector
from offramp.types import EmbedRequest, EmbedResult

Embed = Callable[[EmbedRequest], Awaitable[EmbedResult]]


class EmbeddingCache:
    """Vectors by (partition, model, dimensions, text)."""

    def __init__(self, backend: CacheBackend, ttl_s: float):
        self._backend = backend
        self._ttl_s = ttl_s

    async def embed(
        self, partition: str, request: EmbedRequest, compute: Embed
    ) -> tuple[EmbedResult, int, int]:
        """Embed ``request`` through the cache; return the result, how many of its texts
        came from the cache and how many of its tokens those texts hold."""
        unique = list(dict.fromkeys(request.texts))
        names = {
            t: keys.embedding_key(partition, request.model, request.dimensions, t) for t in unique
        }
        found: dict[str, tuple[np.ndarray, int, int | None]] = {}
        for text, data in zip(
            unique, await self._backend.get_many(list(names.values())), strict=True
        ):
            if data is not None:
                found[text] = load_vector(data)
        hits = [t for t in request.texts if t in found]
        hit_tokens = sum(found[t][1] for t in hits)
        missing = [t for t in unique if t not in found]
        model = request.model
        if missing:
            computed = await compute(
                EmbedRequest(request.model, tuple(missing), request.dimensions, request.user)
            )
            model = computed.model
            shares = _shares(missing, computed.prompt_tokens)
            windows = computed.windows or (None,) * len(missing)
            fresh = {t: (computed.vectors[i], shares[i], windows[i]) for i, t in enumerate(missing)}
            await self._backend.set_many(
                {names[t]: dump_vector(v, n, w) for t, (v, n, w) in fresh.items()},
                self._ttl_s,
            )
            found.update(fresh)
        vectors = np.stack([found[t][0] for t in request.texts]).astype(np.float32, copy=False)
        tokens = sum(found[t][1] for t in request.texts)
        counts = [found[t][2] for t in request.texts]
        known = tuple(c for c in counts if c is not None)
        windows = known if len(known) == len(counts) else ()
        return EmbedResult(model, vectors, tokens, windows), len(hits), hit_tokens


def _shares(texts: list[str], total: int) -> list[int]:
    """``total`` split among ``texts`` by length, summing exactly to ``total``."""
    weights = [max(len(t), 1) for t in texts]
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    for i in range(total - sum(shares)):
        shares[i % len(shares)] += 1
    return shares
