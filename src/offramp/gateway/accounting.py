"""Everything around a model call that is not generation: who asked and whether they
may, the response caches, what it cost, and the one usage record per request.

The API layer builds a ``Caller`` per request; the gateway wraps each request in a
``Meter`` that admits it (model allowed, limits, budget), records exactly one
``UsageRecord`` when it ends however it ends (a client that leaves is billed for what was
generated), and charges the key's counters.

Metric labels come from configured names only: a meter is labelled by the configured
name (route or alias) that took its request, and a request no route took is ``unknown``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from offramp.cache.embeddings import EmbeddingCache
from offramp.cache.responses import ResponseCache
from offramp.errors import OfframpError, PermissionDenied, quoted
from offramp.gateway.capture import Capture
from offramp.gateway.in_context import InContext
from offramp.keys.limits import Limiter
from offramp.keys.store import ApiKey
from offramp.ledger.records import UsageRecord
from offramp.ledger.writer import LedgerWriter
from offramp.observability.metrics import Metrics
from offramp.routing.experiment import Subject
from offramp.routing.outcome import ArmChoice, Outcome
from offramp.types import Usage

log = logging.getLogger(__name__)
UNKNOWN = "unknown"  # the metric label of a request no configured route took


@dataclass(frozen=True)
class Caller:
    """Who is asking: the request id, the API key (None with auth off), whether the
    response cache may answer (``Cache-Control: no-cache`` says no) and the session the
    client names (``x-session-id``; experiments sticky by session use it)."""

    request_id: str
    key: ApiKey | None = None
    use_cache: bool = True
    session: str | None = None

    @property
    def partition(self) -> str:
        """Cache entries are shared only within one API key."""
        return self.key.id if self.key is not None else ""

    def owner(self, end_user: str | None) -> str:
        """Who owns state this request creates (a task session): the key and end user."""
        return f"{self.key.id if self.key is not None else '-'}/{end_user or ''}"

    def item(self, index: int) -> Caller:
        """The caller of item ``index`` of a batch: the same key, its own request id."""
        return Caller(f"{self.request_id}-{index}", self.key, self.use_cache, self.session)


class RecentRequests:
    """The key of each of the last ``size`` requests this process metered, by request id:
    who may give feedback on a request before its usage record reaches the database."""

    def __init__(self, size: int = 10_000):
        self._size = size
        self._keys: OrderedDict[str, str | None] = OrderedDict()

    def add(self, request_id: str, key_id: str | None) -> None:
        self._keys[request_id] = key_id
        self._keys.move_to_end(request_id)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def owner(self, request_id: str) -> tuple[bool, str | None]:
        """(known, key id) of ``request_id``."""
        if request_id in self._keys:
            return True, self._keys[request_id]
        return False, None


@dataclass
class Accounting:
    """The parts every model call goes through; any of them may be absent (off)."""

    metrics: Metrics = field(default_factory=Metrics)
    responses: ResponseCache | None = None
    embeddings: EmbeddingCache | None = None
    limiter: Limiter | None = None
    ledger: LedgerWriter[UsageRecord] | None = None
    capture: Capture | None = None  # samples, shadow mode and automatic feedback
    in_context: InContext | None = None  # examples from captured samples, in prompts
    recent: RecentRequests = field(default_factory=RecentRequests)
    pending: set[asyncio.Task[None]] = field(default_factory=set)  # charges in flight

    async def begin(
        self,
        caller: Caller,
        endpoint: str,
        model: str,
        end_user: str | None,
        stream: bool,
        task: str | None = None,
    ) -> Meter:
        """A meter for one request, after checking the key may make it (raises
        PermissionDenied, RateLimited or BudgetExceeded, each recorded)."""
        meter = Meter(self, caller, endpoint, model, end_user, stream, task)
        key = caller.key
        if key is None:
            return meter
        try:
            if not key.allows(model):
                raise PermissionDenied(
                    f"API key {key.id} may not use model {quoted(model)}",
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
        task: str | None = None,
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
        self._task = task
        self.route: str | None = None  # the route that took the request, once resolved
        self.record: UsageRecord | None = None  # the request's record, once it ended
        self.arm: ArmChoice | None = None  # the experiment arm that serves it, if any

    @property
    def subject(self) -> Subject:
        """Who the request is for, for sticky experiment arms."""
        key = self._caller.key
        return Subject(
            self._caller.request_id,
            key.id if key is not None else None,
            self._end_user,
            self._caller.session,
        )

    @property
    def label(self) -> str:
        """The metric label: the configured name asked for (a route's name or alias) once
        a route took the request, else ``unknown``."""
        return self._model if self.route is not None else UNKNOWN

    def first_token(self) -> None:
        if self._ttft_ms is None:
            self._ttft_ms = (time.monotonic() - self._started) * 1000
            self._acc.metrics.ttft.labels(self.label).observe(self._ttft_ms / 1000)

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
        await self._charge(billable.total_tokens, cost)

    async def finish_all(self, outcomes: Sequence[Outcome]) -> None:
        """Record a request served by several routed calls (repair attempts), each at
        the price of the deployment that made it; their ``usage`` must be set."""
        usage, cost, equivalent = _summed(outcomes)
        deployment = outcomes[-1].deployment if outcomes else None
        self._record(200, usage, deployment, cost, equivalent, False, 0)
        await self._charge(usage.total_tokens, cost)

    def fail(self, error: OfframpError, spent: Sequence[Outcome] = ()) -> None:
        """Record a request that failed with ``error`` (``spent``: calls it had made)."""
        usage, cost, equivalent = _summed(spent)
        self._record(error.status_code, usage, None, cost, equivalent, False, 0, error.code)
        self._charge_later(usage.total_tokens, cost)

    def abandon(
        self,
        generated: Usage | None = None,
        outcome: Outcome | None = None,
        *,
        status: int = 499,
        code: str = "client_closed",
    ) -> None:
        """Record a request whose client went away (499) or that was cut (``status``):
        the tokens ``generated`` so far are billed at ``outcome``'s price and count
        toward the key's TPM and budget."""
        usage = generated or Usage()
        cost = outcome.cost(usage) if outcome is not None else 0.0
        equivalent = outcome.equivalent_cost(usage) if outcome is not None else 0.0
        deployment = outcome.deployment if outcome is not None else None
        self._record(status, usage, deployment, cost, equivalent, False, 0, code)
        self._charge_later(usage.total_tokens, cost)

    async def _charge(self, tokens: int, cost: float) -> None:
        key = self._caller.key
        if key is not None and self._acc.limiter is not None and (tokens or cost):
            await self._acc.limiter.charge(key, tokens, cost)

    def _charge_later(self, tokens: int, cost: float) -> None:
        """Charge from a path that cannot await (a generator being closed)."""
        if not (tokens or cost) or self._caller.key is None or self._acc.limiter is None:
            return
        task = asyncio.get_running_loop().create_task(self._charge(tokens, cost))
        self._acc.pending.add(task)
        task.add_done_callback(self._acc.pending.discard)

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
        key = self._caller.key
        self.record = UsageRecord(
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
            task=self._task,
            experiment=self.arm.experiment if self.arm is not None else None,
            arm=self.arm.arm if self.arm is not None else None,
        )
        self._acc.recent.add(self._caller.request_id, self.record.key_id)
        if self._acc.ledger is not None:
            self._acc.ledger.submit(self.record)

    def _observe(
        self, status: int, usage: Usage, cost: float, openai_cost: float, latency_ms: float
    ) -> None:
        if status != 200:
            self._acc.metrics.requests.labels(self._endpoint, self.label, str(status)).inc()
            return
        m = self._acc.metrics.served(self._endpoint, self.label)
        m.requests.inc()
        m.latency.observe(latency_ms / 1000)
        m.prompt_tokens.inc(usage.prompt_tokens)
        m.completion_tokens.inc(usage.completion_tokens)
        m.cost.inc(cost)
        m.openai_cost.inc(openai_cost)


def _summed(outcomes: Sequence[Outcome]) -> tuple[Usage, float, float]:
    """Total usage, cost and OpenAI-equivalent cost of routed calls, each at its price."""
    usage, cost, equivalent = Usage(), 0.0, 0.0
    for o in outcomes:
        used = o.usage or Usage()
        usage = Usage(
            usage.prompt_tokens + used.prompt_tokens,
            usage.completion_tokens + used.completion_tokens,
        )
        cost += o.cost(used)
        equivalent += o.equivalent_cost(used)
    return usage, cost, equivalent
