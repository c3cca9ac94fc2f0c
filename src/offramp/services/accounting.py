"""Everything around a model call that is not generation: who asked and whether they
may, the response caches, what it cost, and the one usage record per request.

The API layer builds a ``Caller`` per request; ``services.metered`` wraps each model
call in a ``Meter`` that admits it (model allowed, limits, budget), records exactly one
``UsageRecord`` when it ends however it ends, and charges the key's counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from offramp.cache.embeddings import EmbeddingCache
from offramp.cache.responses import ResponseCache
from offramp.errors import OfframpError, PermissionDenied
from offramp.keys.limits import Limiter
from offramp.keys.store import ApiKey
from offramp.ledger.records import UsageRecord
from offramp.ledger.writer import LedgerWriter
from offramp.observability.metrics import Metrics
from offramp.routing.outcome import Outcome
from offramp.types import Usage


@dataclass(frozen=True)
class Caller:
    """Who is asking: the request id, the API key (None with auth off) and whether the
    response cache may answer (``Cache-Control: no-cache`` says no)."""

    request_id: str
    key: ApiKey | None = None
    use_cache: bool = True

    @property
    def partition(self) -> str:
        """Cache entries are shared only within one API key."""
        return self.key.id if self.key is not None else ""


@dataclass
class Accounting:
    """The parts every model call goes through; any of them may be absent (off)."""

    metrics: Metrics = field(default_factory=Metrics)
    responses: ResponseCache | None = None
    embeddings: EmbeddingCache | None = None
    limiter: Limiter | None = None
    ledger: LedgerWriter | None = None

    async def begin(
        self, caller: Caller, endpoint: str, model: str, end_user: str | None, stream: bool
    ) -> Meter:
        """A meter for one request, after checking the key may make it (raises
        PermissionDenied, RateLimited or BudgetExceeded, each recorded)."""
        meter = Meter(self, caller, endpoint, model, end_user, stream)
        key = caller.key
        if key is None:
            return meter
        try:
            if not key.allows(model):
                raise PermissionDenied(
                    f"API key {key.id} may not use model {model!r}",
                    param="model",
                    code="model_not_allowed",
                )
            if self.limiter is not None:
                await self.limiter.admit(key)
        except OfframpError as exc:
            meter.fail(exc)
            raise
        return meter


class Meter:
    """Times one request and writes its one usage record (``finish`` / ``fail`` /
    ``abandon``; only the first call counts)."""

    def __init__(
        self,
        accounting: Accounting,
        caller: Caller,
        endpoint: str,
        model: str,
        end_user: str | None,
        stream: bool,
    ):
        self._acc = accounting
        self._caller = caller
        self._endpoint = endpoint
        self._model = model
        self._end_user = end_user
        self._stream = stream
        self._ts = time.time()
        self._started = time.monotonic()
        self._ttft_ms: float | None = None
        self._done = False
        self.route: str | None = None  # the route that took the request, once resolved

    def first_token(self) -> None:
        if self._ttft_ms is None:
            self._ttft_ms = (time.monotonic() - self._started) * 1000
            self._acc.metrics.ttft.labels(self._model).observe(self._ttft_ms / 1000)

    async def finish(
        self,
        usage: Usage,
        outcome: Outcome,
        *,
        cache_hit: bool = False,
        cached_tokens: int = 0,
    ) -> None:
        """Record a served request (200) at ``outcome``'s prices and charge the key.

        ``cached_tokens`` are prompt tokens answered from this service's own cache (all
        of them for a cache hit); tokens an upstream read from its prompt cache
        (``usage.cached_tokens``) are recorded too, and priced by the outcome.
        """
        if cache_hit:
            cached_tokens = usage.prompt_tokens
        own = Usage(max(usage.prompt_tokens - cached_tokens, 0), usage.completion_tokens)
        billable = Usage() if cache_hit else (own if cached_tokens else usage)
        cost = outcome.cost(billable)
        equivalent = outcome.equivalent_cost(usage)
        cached_tokens = max(cached_tokens, usage.cached_tokens)
        self._record(200, usage, outcome.deployment, cost, equivalent, cache_hit, cached_tokens)
        key = self._caller.key
        if key is not None and self._acc.limiter is not None:
            await self._acc.limiter.charge(key, billable.total_tokens, cost)

    def fail(self, error: OfframpError) -> None:
        """Record a request that failed with ``error``."""
        self._record(error.status_code, Usage(), None, 0.0, 0.0, False, 0, error.code)

    def abandon(self) -> None:
        """Record a request whose client went away (499)."""
        self._record(499, Usage(), None, 0.0, 0.0, False, 0, "client_closed")

    def _record(
        self,
        status: int,
        usage: Usage,
        deployment: str | None,
        cost: float,
        openai_cost: float,
        cache_hit: bool,
        cached_tokens: int,
        error_code: str | None = None,
    ) -> None:
        if self._done:
            return
        self._done = True
        latency_ms = (time.monotonic() - self._started) * 1000
        self._observe(status, usage, cost, openai_cost, latency_ms)
        if self._acc.ledger is None:
            return
        key = self._caller.key
        self._acc.ledger.submit(
            UsageRecord(
                request_id=self._caller.request_id,
                ts=self._ts,
                endpoint=self._endpoint,
                model=self._model,
                route=self.route,
                deployment=deployment,
                status=status,
                key_id=key.id if key is not None else None,
                end_user=self._end_user,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=cached_tokens,
                cost_usd=cost,
                openai_cost_usd=openai_cost,
                latency_ms=latency_ms,
                ttft_ms=self._ttft_ms,
                cache_hit=cache_hit,
                stream=self._stream,
                error_code=error_code,
            )
        )

    def _observe(
        self, status: int, usage: Usage, cost: float, openai_cost: float, latency_ms: float
    ) -> None:
        m, model = self._acc.metrics, self._model
        m.requests.labels(self._endpoint, model, str(status)).inc()
        if status != 200:
            return
        m.latency.labels(self._endpoint, model).observe(latency_ms / 1000)
        m.tokens.labels(model, "prompt").inc(usage.prompt_tokens)
        m.tokens.labels(model, "completion").inc(usage.completion_tokens)
        m.cost.labels(model).inc(cost)
        m.openai_cost.labels(model).inc(openai_cost)
