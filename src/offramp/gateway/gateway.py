"""The one gateway: every request, whatever door it enters by, passes here exactly once.

Chat, text completions, embeddings, each item of a batch, every task run (whole or
streamed), and every door added later call a ``Gateway`` method with the ``Caller`` and
a validated domain request; the API modules only translate wire formats. Each method
does, once and in this order:

1. key policy: the key may use the model asked for (a task's own model or its override);
2. admission: the key's RPM, TPM and budget (``Accounting.begin``; refusals are recorded);
3. route resolution, once: the route decides every later step (an unknown name is 404);
4. the response or embedding cache, where the request may be answered from it;
5. the call: structured output and its repair loop where JSON is asked for, the router's
   walk over the route's deployments (the deployment that takes the call decides grammar
   or prompt-only JSON, and its price);
6. metering: one usage record per request at the prices of the deployments that
   answered (a task run's repair attempts included), the key's counters charged, metrics;
7. the learning loop (``learning``): in-context examples put into the prompt before the
   call where the route or task asks; after it, a served request captured as a sample
   where its route, task or key asks (a shadow teacher asked in the background), and a
   task run's validation recorded as feedback.

A stream the client leaves, or one cut by a drain, is recorded with the tokens generated
so far, which count toward the key's TPM and budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

from offramp.cache.responses import StreamAssembler, replay
from offramp.errors import DRAIN_CUT, OfframpError, OutputValidationFailed
from offramp.gateway import calls
from offramp.gateway.accounting import Accounting, Caller, Meter
from offramp.gateway.backend import RepairedCompletion, RoutedBackend, add_delta, repaired_chat
from offramp.gateway.learning import Learning
from offramp.gateway.runtime import Runtime
from offramp.routing.outcome import Outcome, Routed
from offramp.routing.pricing import FREE
from offramp.routing.route import Route
from offramp.routing.router import Router
from offramp.tasks.engine import TaskCall, TaskEngine, TaskEvent, TaskOutcome
from offramp.types import (
    ChatRequest,
    ChoiceDelta,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    StreamItem,
    Usage,
)

CACHE = "cache"  # the deployment named in outcomes of answers from the cache


class Gateway:
    """Policy, limits, cache, routing, metering and the ledger for every door."""

    def __init__(
        self,
        runtime: Runtime,
        accounting: Accounting,
        tasks: TaskEngine | None = None,
        structured_max_attempts: int = 3,
    ):
        self.runtime = runtime
        self.accounting = accounting
        self.tasks = tasks
        self._max_attempts = structured_max_attempts
        self._learning = Learning(self, accounting)

    @property
    def _router(self) -> Router:
        return self.runtime.router

    # -- chat and text completions -------------------------------------------------

    async def chat(
        self, caller: Caller, request: ChatRequest, endpoint: str = "chat"
    ) -> RepairedCompletion:
        """A whole chat answer, from the cache or the route; JSON output is validated and
        repaired; one record for all its generations, each at its deployment's price.
        ``endpoint`` names the door in the record and metrics (``responses``, ``messages``
        for the APIs that translate to chat)."""
        meter = await self.accounting.begin(caller, endpoint, request.model, request.user, False)
        backend: RoutedBackend | None = None
        with _metered(meter, lambda: backend):
            route = self._resolve(meter, request.model, "chat")
            hit = await self._lookup(caller, request, route)
            if hit is not None:
                await meter.finish(hit.value.usage, hit.outcome, cache_hit=True)
                self._learning.keep_chat(caller, meter, route, request, hit.value)
                return RepairedCompletion(hit.value, 1, (hit.outcome,))
            backend = RoutedBackend(self._router, route)
            asked = await self._learning.prompted(caller, route, request)
            done = await repaired_chat(backend, asked, self._max_attempts)
        await self._store(caller, request, done.result)
        await meter.finish_all(done.outcomes)
        self._learning.keep_chat(caller, meter, route, request, done.result)
        return done

    async def stream_chat(
        self, caller: Caller, request: ChatRequest, endpoint: str = "chat"
    ) -> Routed[AsyncIterator[StreamItem]]:
        """A streamed chat answer; a cached one is replayed as a stream."""
        return await self._stream(caller, endpoint, request)

    async def count_tokens(
        self, caller: Caller, request: ChatRequest, endpoint: str = "count_tokens"
    ) -> int:
        """The prompt tokens of ``request`` as the route's deployment counts them (an
        estimate from its characters where the deployment cannot count without
        generating). Key policy and limits apply; one record, with no tokens billed."""
        meter = await self.accounting.begin(caller, endpoint, request.model, request.user, False)
        with _metered(meter):
            route = self._resolve(meter, request.model, "chat")
            routed = await calls.count_tokens(self._router, route, request)
        await meter.finish(Usage(), routed.outcome)
        return routed.value

    async def complete(
        self, caller: Caller, requests: list[CompletionRequest]
    ) -> list[Routed[CompletionResult]]:
        """Whole text completions of one or more prompts (one request, one record)."""
        first = requests[0]
        meter = await self.accounting.begin(caller, "completions", first.model, first.user, False)
        with _metered(meter):
            route = self._resolve(meter, first.model, "chat")
            hits = [await self._lookup(caller, r, route) for r in requests]
            fresh = iter(
                await asyncio.gather(
                    *(
                        calls.complete(self._router, route, r)
                        for r, h in zip(requests, hits, strict=True)
                        if h is None
                    )
                )
            )
        answers = []
        for request, hit in zip(requests, hits, strict=True):
            answer = hit or next(fresh)
            if hit is None:
                answer.outcome.usage = answer.value.usage
                await self._store(caller, request, answer.value)
            answers.append(answer)
        usage = Usage(
            sum(a.value.usage.prompt_tokens for a in answers),
            sum(a.value.usage.completion_tokens for a in answers),
        )
        served = next(
            (a.outcome for a in answers if a.outcome.deployment != CACHE), answers[0].outcome
        )
        from_cache = sum(h.value.usage.prompt_tokens for h in hits if h is not None)
        all_hit = all(h is not None for h in hits)
        await meter.finish(usage, served, cache_hit=all_hit, cached_tokens=from_cache)
        return answers

    async def stream_complete(
        self, caller: Caller, request: CompletionRequest
    ) -> Routed[AsyncIterator[StreamItem]]:
        """A streamed text completion; a cached one is replayed as a stream."""
        return await self._stream(caller, "completions", request)

    # -- embeddings ----------------------------------------------------------------

    async def embed(self, caller: Caller, request: EmbedRequest) -> Routed[EmbedResult]:
        """Vectors for every text; texts already embedded come from the embedding cache."""
        acc = self.accounting
        meter = await acc.begin(caller, "embeddings", request.model, request.user, False)
        with _metered(meter):
            route = self._resolve(meter, request.model, "embedding")
            if acc.embeddings is None or not caller.use_cache:
                routed = await calls.embed(self._router, route, request)
                result, outcome, hits, hit_tokens = routed.value, routed.outcome, 0, 0
            else:
                outcomes: list[Outcome] = []

                async def compute(texts: EmbedRequest) -> EmbedResult:
                    routed = await calls.embed(self._router, route, texts)
                    outcomes.append(routed.outcome)
                    return routed.value

                result, hits, hit_tokens = await acc.embeddings.embed(
                    caller.partition, request, compute
                )
                outcome = outcomes[0] if outcomes else _cache_outcome(route, request.model)
                acc.metrics.cache_lookups.labels("embedding").inc(len(request.texts))
                acc.metrics.cache_hits.labels("embedding").inc(hits)
        usage = Usage(result.prompt_tokens, 0)
        all_hit = hits == len(request.texts)
        await meter.finish(usage, outcome, cache_hit=all_hit, cached_tokens=hit_tokens)
        return Routed(result, outcome)

    # -- tasks ---------------------------------------------------------------------

    async def run_task(
        self, caller: Caller, name: str, call: TaskCall, endpoint: str = "task"
    ) -> TaskOutcome:
        """Run task ``name`` to its validated result: one request, one record (endpoint
        ``task``), every repair attempt's tokens billed at its deployment's price."""
        async for event in self.task_events(caller, name, call, stream=False, endpoint=endpoint):
            if isinstance(event, TaskOutcome):
                return event
        raise AssertionError("task_events() ends with a TaskOutcome")  # pragma: no cover

    async def task_events(
        self, caller: Caller, name: str, call: TaskCall, *, stream: bool, endpoint: str = "task"
    ) -> AsyncIterator[TaskEvent]:
        """The events of one task run (see ``TaskEngine.events``), metered as one request;
        a run the client leaves is billed for what its attempts generated. Whether the
        model's output passed the task's validators is recorded as feedback
        (``task_valid``)."""
        engine = self.task_engine()
        model = engine.model_of(name, call)
        meter = await self.accounting.begin(caller, endpoint, model, call.user, stream, task=name)
        backend: RoutedBackend | None = None
        with _metered(meter, lambda: backend):
            route = self._resolve(meter, model, "chat")
            in_context = engine.catalog.get(name).spec.in_context
            rewrite = self._learning.rewriter(caller, in_context, None, name)
            backend = RoutedBackend(self._router, route, meter.first_token, rewrite)
            events = engine.events(
                name, call, backend, owner=caller.owner(call.user), stream=stream
            )
            try:
                async for event in events:
                    if isinstance(event, TaskOutcome):
                        await meter.finish_all(backend.outcomes)
                        self._learning.keep_task(caller, meter, route, name, call, backend, event)
                    yield event
            except OutputValidationFailed as exc:
                self._learning.judge(caller, False, exc.message)
                raise
            except GeneratorExit:
                _abandon_run(meter, backend)
                raise
            finally:
                await events.aclose()  # type: ignore[attr-defined]

    # -- the steps -----------------------------------------------------------------

    def task_engine(self) -> TaskEngine:
        if self.tasks is None:
            raise OfframpError("tasks are not configured in this process")
        return self.tasks

    def _resolve(self, meter: Meter, name: str, kind: str) -> Route:
        route = self._router.resolve(name, "chat" if kind == "chat" else "embedding")
        meter.route = route.name
        return route

    async def _stream(
        self, caller: Caller, endpoint: str, request: ChatRequest | CompletionRequest
    ) -> Routed[AsyncIterator[StreamItem]]:
        """A metered stream: the cached answer replayed, else the route's stream, its
        items recorded as they pass."""
        meter = await self.accounting.begin(caller, endpoint, request.model, request.user, True)
        with _metered(meter):
            route = self._resolve(meter, request.model, "chat")
            hit = await self._lookup(caller, request, route)
            if hit is not None:

                def kept(result: CompletionResult) -> None:
                    if isinstance(request, ChatRequest):
                        self._learning.keep_chat(caller, meter, route, request, result)

                return Routed(_replayed(meter, hit.value, hit.outcome, kept), hit.outcome)
            if isinstance(request, ChatRequest):
                asked = await self._learning.prompted(caller, route, request)
                routed = await calls.stream_chat(self._router, route, asked)
            else:
                routed = await calls.stream_complete(self._router, route, request)
        items = self._recorded(caller, request, meter, routed.value, routed.outcome, route)
        return Routed(items, routed.outcome)

    async def _lookup(
        self, caller: Caller, request: ChatRequest | CompletionRequest, route: Route
    ) -> Routed[CompletionResult] | None:
        acc = self.accounting
        if acc.responses is None or not caller.use_cache:
            return None
        result = await acc.responses.lookup(caller.partition, request)
        acc.metrics.cache_lookups.labels("response").inc()
        if result is None:
            return None
        acc.metrics.cache_hits.labels("response").inc()
        return Routed(result, _cache_outcome(route, request.model))

    async def _store(
        self, caller: Caller, request: ChatRequest | CompletionRequest, result: CompletionResult
    ) -> None:
        if self.accounting.responses is not None and caller.use_cache:
            await self.accounting.responses.store(caller.partition, request, result)

    async def _recorded(
        self,
        caller: Caller,
        request: ChatRequest | CompletionRequest,
        meter: Meter,
        items: AsyncIterator[StreamItem],
        outcome: Outcome,
        route: Route | None = None,
    ) -> AsyncIterator[StreamItem]:
        """Pass ``items`` through, timing the first token, counting tokens and assembling
        the whole answer; at the end cache it and finish the meter. A stream closed early
        is recorded (499) with the prompt and the tokens generated so far."""
        whole = StreamAssembler(request.model)
        generated = Usage(calls.prompt_estimate(request), 0)
        try:
            async for item in items:
                if isinstance(item, ChoiceDelta):
                    meter.first_token()
                    generated = add_delta(generated, item)
                whole.add(item)
                yield item
        except OfframpError as exc:
            meter.abandon(generated, outcome, status=exc.status_code, code=exc.code or "error")
            raise
        except asyncio.CancelledError as exc:
            if exc.args and exc.args[0] == DRAIN_CUT:  # the server's drain deadline
                meter.abandon(generated, outcome, status=503, code="shutting_down")
            raise
        finally:
            await items.aclose()  # type: ignore[attr-defined]
            if whole.usage is None:
                meter.abandon(generated, outcome)
        result = whole.result()
        if result is not None:
            await self._store(caller, request, result)
        await meter.finish(whole.usage or Usage(), outcome)
        if result is not None and isinstance(request, ChatRequest) and route is not None:
            self._learning.keep_chat(caller, meter, route, request, result)


def _abandon_run(meter: Meter, backend: RoutedBackend | None, cut: bool = False) -> None:
    """Record a request the client left (or the drain ``cut``): its finished calls and
    what the running one has generated."""
    status, code = (503, "shutting_down") if cut else (499, "client_closed")
    if backend is None:
        meter.abandon(status=status, code=code)
        return
    spent = [*backend.outcomes]
    usage = Usage(
        sum((o.usage or Usage()).prompt_tokens for o in spent) + backend.partial.prompt_tokens,
        sum((o.usage or Usage()).completion_tokens for o in spent)
        + backend.partial.completion_tokens,
    )
    price = spent[-1] if spent else None
    meter.abandon(usage, price, status=status, code=code)


def _cache_outcome(route: Route, name: str) -> Outcome:
    """The outcome of an answer from the cache: free, at the route's OpenAI-equivalent."""
    return Outcome(CACHE, 0, 0.0, 0.0, FREE, route.equivalents.get(name, FREE))


@contextmanager
def _metered(
    meter: Meter, backend: Callable[[], RoutedBackend | None] = lambda: None
) -> Iterator[None]:
    """Record a failure or a cancellation (the client left) of the block on ``meter``;
    what ``backend()`` had already generated is billed either way."""
    try:
        yield
    except OfframpError as exc:
        made = backend()
        meter.fail(exc, made.outcomes if made is not None else ())
        raise
    except asyncio.CancelledError as exc:
        _abandon_run(meter, backend(), cut=bool(exc.args) and exc.args[0] == DRAIN_CUT)
        raise


async def _replayed(
    meter: Meter,
    cached: CompletionResult,
    outcome: Outcome,
    kept: Callable[[CompletionResult], None],
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
    kept(cached)
