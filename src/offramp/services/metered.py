"""Model calls as the API makes them: through the caches and the accounting.

Each function admits the request (``Accounting.begin``), answers from the response
cache when it may, otherwise calls ``services.generation`` / ``services.embeddings``,
stores deterministic answers, and finishes the meter: one usage record per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Literal

from offramp.cache.responses import StreamAssembler, replay
from offramp.errors import OfframpError
from offramp.providers.base import StreamItem
from offramp.services import embeddings, generation
from offramp.services.accounting import Caller, Meter
from offramp.services.runtime import Runtime
from offramp.types import (
    ChatRequest,
    ChoiceDelta,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    Usage,
)


async def chat(runtime: Runtime, caller: Caller, request: ChatRequest) -> CompletionResult:
    """A whole chat answer, from the cache or the model."""
    meter = await runtime.accounting.begin(caller, "chat", request.model, request.user, False)
    served = _served(runtime, request.model, "chat")
    with _metered(meter):
        cached = await _lookup(runtime, caller, request)
        if cached is not None:
            await meter.finish(
                cached.usage, served, cache_hit=True, cached_tokens=cached.usage.prompt_tokens
            )
            return cached
        result = await generation.chat(runtime, request)
    await _store(runtime, caller, request, result)
    await meter.finish(result.usage, served)
    return result


async def stream_chat(
    runtime: Runtime, caller: Caller, request: ChatRequest
) -> AsyncIterator[StreamItem]:
    """A streamed chat answer; a cached one is replayed as a stream."""
    meter = await runtime.accounting.begin(caller, "chat", request.model, request.user, True)
    served = _served(runtime, request.model, "chat")
    with _metered(meter):
        cached = await _lookup(runtime, caller, request)
        if cached is not None:
            return _replayed(meter, cached, served)
        items = await generation.stream_chat(runtime, request)
    return _recorded(runtime, caller, request, meter, items, served)


async def complete(
    runtime: Runtime, caller: Caller, requests: list[CompletionRequest]
) -> list[CompletionResult]:
    """Whole text completions of one or more prompts (one request, one record)."""
    first = requests[0]
    meter = await runtime.accounting.begin(caller, "completions", first.model, first.user, False)
    served = _served(runtime, first.model, "chat")
    with _metered(meter):
        cached = [await _lookup(runtime, caller, r) for r in requests]
        fresh = await asyncio.gather(
            *(
                generation.complete(runtime, r)
                for r, c in zip(requests, cached, strict=True)
                if c is None
            )
        )
    results, computed = [], iter(fresh)
    for request, hit in zip(requests, cached, strict=True):
        if hit is None:
            hit = next(computed)
            await _store(runtime, caller, request, hit)
        results.append(hit)
    usage = Usage(
        sum(r.usage.prompt_tokens for r in results), sum(r.usage.completion_tokens for r in results)
    )
    from_cache = sum(hit.usage.prompt_tokens for hit in cached if hit is not None)
    await meter.finish(usage, served, cache_hit=not fresh, cached_tokens=from_cache)
    return results


async def stream_complete(
    runtime: Runtime, caller: Caller, request: CompletionRequest
) -> AsyncIterator[StreamItem]:
    """A streamed text completion; a cached one is replayed as a stream."""
    meter = await runtime.accounting.begin(caller, "completions", request.model, request.user, True)
    served = _served(runtime, request.model, "chat")
    with _metered(meter):
        cached = await _lookup(runtime, caller, request)
        if cached is not None:
            return _replayed(meter, cached, served)
        items = await generation.stream_complete(runtime, request)
    return _recorded(runtime, caller, request, meter, items, served)


async def embed(runtime: Runtime, caller: Caller, request: EmbedRequest) -> EmbedResult:
    """Vectors for every text; texts already embedded come from the embedding cache."""
    acc = runtime.accounting
    meter = await acc.begin(caller, "embeddings", request.model, request.user, False)
    served = _served(runtime, request.model, "embedding")
    with _metered(meter):
        if acc.embeddings is None or not caller.use_cache:
            result = await embeddings.embed(runtime, request)
            hits = hit_tokens = 0
        else:
            result, hits, hit_tokens = await acc.embeddings.embed(
                caller.partition, request, lambda r: embeddings.embed(runtime, r)
            )
            acc.metrics.cache_lookups.labels("embedding").inc(len(request.texts))
            acc.metrics.cache_hits.labels("embedding").inc(hits)
    await meter.finish(
        Usage(result.prompt_tokens, 0),
        served,
        cache_hit=hits == len(request.texts),
        cached_tokens=hit_tokens,
    )
    return result


@contextmanager
def _metered(meter: Meter) -> Iterator[None]:
    """Record a failure or a cancellation (the client left) of the block on ``meter``."""
    try:
        yield
    except OfframpError as exc:
        meter.fail(exc)
        raise
    except asyncio.CancelledError:
        meter.abandon()
        raise


async def _lookup(
    runtime: Runtime, caller: Caller, request: ChatRequest | CompletionRequest
) -> CompletionResult | None:
    acc = runtime.accounting
    if acc.responses is None or not caller.use_cache:
        return None
    result = await acc.responses.lookup(caller.partition, request)
    acc.metrics.cache_lookups.labels("response").inc()
    if result is not None:
        acc.metrics.cache_hits.labels("response").inc()
    return result


async def _store(
    runtime: Runtime,
    caller: Caller,
    request: ChatRequest | CompletionRequest,
    result: CompletionResult,
) -> None:
    if runtime.accounting.responses is not None:
        await runtime.accounting.responses.store(caller.partition, request, result)


async def _replayed(
    meter: Meter, cached: CompletionResult, served: str | None
) -> AsyncIterator[StreamItem]:
    try:
        async for item in replay(cached):
            meter.first_token()
            yield item
    except GeneratorExit:
        meter.abandon()  # the client left during the replay
        raise
    usage = cached.usage
    await meter.finish(usage, served, cache_hit=True, cached_tokens=usage.prompt_tokens)


async def _recorded(
    runtime: Runtime,
    caller: Caller,
    request: ChatRequest | CompletionRequest,
    meter: Meter,
    items: AsyncIterator[StreamItem],
    served: str | None,
) -> AsyncIterator[StreamItem]:
    """Pass ``items`` through, timing the first token and assembling the whole answer;
    at the end, cache it and finish the meter (a stream closed early records 499)."""
    whole = StreamAssembler(request.model)
    try:
        async for item in items:
            if isinstance(item, ChoiceDelta):
                meter.first_token()
            whole.add(item)
            yield item
    except OfframpError as exc:
        meter.fail(exc)
        raise
    finally:
        await items.aclose()  # type: ignore[attr-defined]
        if whole.usage is None:
            meter.abandon()
    result = whole.result()
    if result is not None:
        await _store(runtime, caller, request, result)
    usage = whole.usage if whole.usage is not None else Usage()
    await meter.finish(usage, served)


def _served(runtime: Runtime, name: str, kind: Literal["chat", "embedding"]) -> str | None:
    """The configured model that serves ``name`` (None if there is none)."""
    try:
        return runtime.pool.models.resolve(name, kind=kind).name
    except OfframpError:
        return None
