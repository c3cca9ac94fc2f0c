"""Model calls as the API makes them: through the caches and the accounting.

Each function admits the request (``Accounting.begin``), answers from the response
cache when it may, otherwise calls ``services.generation`` / ``services.embeddings``
(the router), stores deterministic answers, and finishes the meter: one usage record per
request. Answers come back as ``Routed`` like the router's; a cached one has an Outcome
of its own (deployment ``cache``, free, with the route's OpenAI-equivalent price).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

from offramp.cache.responses import StreamAssembler, replay
from offramp.errors import OfframpError
from offramp.providers.base import StreamItem
from offramp.routing.outcome import Outcome, Routed
from offramp.routing.pricing import FREE
from offramp.services import embeddings, generation, structured
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

CACHE = "cache"  # the deployment named in outcomes of answers from the cache


async def chat(
    runtime: Runtime, caller: Caller, request: ChatRequest, max_attempts: int
) -> structured.RepairedCompletion:
    """A whole chat answer, from the cache or the route; JSON output (``response_format``) is validated and
    repaired by ``services.structured``; one record for all its generations, priced at
    the deployment that gave the last one. Deterministic answers are cached as usual."""
    meter = await runtime.accounting.begin(caller, "chat", request.model, request.user, False)
    with _metered(meter):
        hit = await _lookup(runtime, caller, request, meter)
        if hit is not None:
            await meter.finish(hit.value.usage, hit.outcome, cache_hit=True)
            return structured.RepairedCompletion(hit.value, 1, (hit.outcome,))
        done = await structured.chat(runtime, request, max_attempts)
    await _store(runtime, caller, request, done.result)
    await meter.finish(done.result.usage, done.outcomes[-1])
    return done


async def stream_chat(
    runtime: Runtime, caller: Caller, request: ChatRequest
) -> Routed[AsyncIterator[StreamItem]]:
    """A streamed chat answer; a cached one is replayed as a stream."""
    return await _stream(
        runtime, caller, "chat", request, lambda: generation.stream_chat(runtime, request)
    )


async def complete(
    runtime: Runtime, caller: Caller, requests: list[CompletionRequest]
) -> list[Routed[CompletionResult]]:
    """Whole text completions of one or more prompts (one request, one record)."""
    first = requests[0]
    meter = await runtime.accounting.begin(caller, "completions", first.model, first.user, False)
    with _metered(meter):
        hits = [await _lookup(runtime, caller, r, meter) for r in requests]
        fresh = iter(
            await asyncio.gather(
                *(
                    generation.complete(runtime, r)
                    for r, h in zip(requests, hits, strict=True)
                    if h is None
                )
            )
        )
    answers = []
    for request, hit in zip(requests, hits, strict=True):
        answer = hit or next(fresh)
        if hit is None:
            await _store(runtime, caller, request, answer.value)
        answers.append(answer)
    usage = Usage(
        sum(a.value.usage.prompt_tokens for a in answers),
        sum(a.value.usage.completion_tokens for a in answers),
    )
    served = next((a.outcome for a in answers if a.outcome.deployment != CACHE), answers[0].outcome)
    from_cache = sum(h.value.usage.prompt_tokens for h in hits if h is not None)
    all_hit = all(h is not None for h in hits)
    await meter.finish(usage, served, cache_hit=all_hit, cached_tokens=from_cache)
    return answers


async def stream_complete(
    runtime: Runtime, caller: Caller, request: CompletionRequest
) -> Routed[AsyncIterator[StreamItem]]:
    """A streamed text completion; a cached one is replayed as a stream."""
    return await _stream(
        runtime,
        caller,
        "completions",
        request,
        lambda: generation.stream_complete(runtime, request),
    )


async def _stream(
    runtime: Runtime,
    caller: Caller,
    endpoint: str,
    request: ChatRequest | CompletionRequest,
    route: Callable[[], Awaitable[Routed[AsyncIterator[StreamItem]]]],
) -> Routed[AsyncIterator[StreamItem]]:
    """A metered stream: the cached answer replayed, else ``route()``'s stream, its
    items recorded as they pass."""
    meter = await runtime.accounting.begin(caller, endpoint, request.model, request.user, True)
    with _metered(meter):
        hit = await _lookup(runtime, caller, request, meter)
        if hit is not None:
            return Routed(_replayed(meter, hit.value, hit.outcome), hit.outcome)
        routed = await route()
    items = _recorded(runtime, caller, request, meter, routed.value, routed.outcome)
    return Routed(items, routed.outcome)


async def embed(runtime: Runtime, caller: Caller, request: EmbedRequest) -> Routed[EmbedResult]:
    """Vectors for every text; texts already embedded come from the embedding cache."""
    acc = runtime.accounting
    meter = await acc.begin(caller, "embeddings", request.model, request.user, False)
    with _metered(meter):
        cache_outcome = _cache_outcome(runtime, request.model, "embedding", meter)
        if acc.embeddings is None or not caller.use_cache:
            routed = await embeddings.embed(runtime, request)
            result, outcome, hits, hit_tokens = routed.value, routed.outcome, 0, 0
        else:
            outcomes: list[Outcome] = []

            async def compute(texts: EmbedRequest) -> EmbedResult:
                routed = await embeddings.embed(runtime, texts)
                outcomes.append(routed.outcome)
                return routed.value

            result, hits, hit_tokens = await acc.embeddings.embed(
                caller.partition, request, compute
            )
            outcome = outcomes[0] if outcomes else cache_outcome
            acc.metrics.cache_lookups.labels("embedding").inc(len(request.texts))
            acc.metrics.cache_hits.labels("embedding").inc(hits)
    usage = Usage(result.prompt_tokens, 0)
    all_hit = hits == len(request.texts)
    await meter.finish(usage, outcome, cache_hit=all_hit, cached_tokens=hit_tokens)
    return Routed(result, outcome)


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


def _cache_outcome(runtime: Runtime, name: str, kind: str, meter: Meter) -> Outcome:
    """The outcome of an answer from the cache (ModelNotFound for an unknown name)."""
    route = runtime.router.resolve(name, "chat" if kind == "chat" else "embedding")
    meter.route = route.name
    return Outcome(CACHE, 0, 0.0, 0.0, FREE, route.equivalents.get(name, FREE))


async def _lookup(
    runtime: Runtime, caller: Caller, request: ChatRequest | CompletionRequest, meter: Meter
) -> Routed[CompletionResult] | None:
    outcome = _cache_outcome(runtime, request.model, "chat", meter)
    acc = runtime.accounting
    if acc.responses is None or not caller.use_cache:
        return None
    result = await acc.responses.lookup(caller.partition, request)
    acc.metrics.cache_lookups.labels("response").inc()
    if result is None:
        return None
    acc.metrics.cache_hits.labels("response").inc()
    return Routed(result, outcome)


async def _store(
    runtime: Runtime,
    caller: Caller,
    request: ChatRequest | CompletionRequest,
    result: CompletionResult,
) -> None:
    if runtime.accounting.responses is not None and caller.use_cache:
        await runtime.accounting.responses.store(caller.partition, request, result)


async def _replayed(
    meter: Meter, cached: CompletionResult, outcome: Outcome
) -> AsyncIterator[StreamItem]:
    try:
        async for item in replay(cached):
            meter.first_token()
            yield item
    except GeneratorExit:
        meter.abandon()  # the client left during the replay
        raise
    outcome.usage = cached.usage
    await meter.finish(cached.usage, outcome, cache_hit=True)


async def _recorded(
    runtime: Runtime,
    caller: Caller,
    request: ChatRequest | CompletionRequest,
    meter: Meter,
    items: AsyncIterator[StreamItem],
    outcome: Outcome,
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
    await meter.finish(whole.usage or Usage(), outcome)
