"""Embeddings: the routed provider call behind ``/v1/embeddings`` and ``offramp embed``."""

from __future__ import annotations

from offramp.errors import UnsupportedParameter
from offramp.providers.base import Capabilities
from offramp.routing.outcome import Routed
from offramp.routing.strategies import Hint
from offramp.services.generation import check_extra
from offramp.services.runtime import Runtime
from offramp.types import EmbedRequest, EmbedResult


async def embed(runtime: Runtime, request: EmbedRequest) -> Routed[EmbedResult]:
    """Embed every text, one vector per text, in order (local models L2-normalise)."""
    route = runtime.router.resolve(request.model, "embedding")
    hint = Hint(sum(len(t) for t in request.texts) // 4, 0)
    return await runtime.router.call(
        route,
        request.model,
        hint,
        lambda caps: _check(caps, request),
        lambda provider: provider.embed(request),
    )


def _check(caps: Capabilities, request: EmbedRequest) -> None:
    if not caps.embeddings:
        raise UnsupportedParameter("this model does not serve embeddings", param="model")
    check_extra(caps, request.extra)
