"""The state behind one app: the ledger database, Redis, caches, limits and keys.

Built from Settings in ``create_app`` and opened in the app's lifespan: ``open``
applies the ledger's migrations and starts its writer; ``aclose`` flushes every queued
usage record and closes the connections, so a clean stop loses nothing. Without
``redis_url`` everything stays in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from offramp.cache.backends import CacheBackend, MemoryCache, RedisCache
from offramp.cache.embeddings import EmbeddingCache
from offramp.cache.responses import ResponseCache
from offramp.gateway.accounting import Accounting
from offramp.gateway.capture import Capture, redacted
from offramp.gateway.in_context import InContext
from offramp.gateway.redaction import Redactor
from offramp.keys.auth import KeyResolver
from offramp.keys.limits import Limiter, MemoryLimiter, RedisLimiter
from offramp.keys.store import KeyStore
from offramp.ledger.records import UsageRecord
from offramp.ledger.samples import Captured, prune, write_captured
from offramp.ledger.sessions import StoredSessions
from offramp.ledger.store import insert_usage, open_engine
from offramp.ledger.stored_responses import StoredResponses
from offramp.ledger.writer import LedgerWriter
from offramp.local.admission import Admission
from offramp.observability.metrics import Gauges, Metrics
from offramp.routing.router import Router
from offramp.settings import Settings
from offramp.shared_redis import SharedRedis
from offramp.tasks.history import MemorySessions, SessionStore, Turn

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600.0  # how often expired samples are deleted while serving


class Backing:
    """Owns the ledger engine, the Redis client and the parts of ``accounting``."""

    def __init__(self, settings: Settings, admission: Admission, router: Router):
        self.settings = settings
        self.engine: Engine | None = None
        self.keys: KeyResolver | None = None
        self.responses: StoredResponses | None = None  # the Responses API's, once open
        self.sessions = Sessions(
            MemorySessions(settings.task_sessions, settings.task_session_ttl_s)
        )
        self.redis = (
            SharedRedis(settings.redis_url, settings.redis_retry_s) if settings.redis_url else None
        )
        self.writer = LedgerWriter(
            self._write, max_queue=settings.ledger_queue, flush_s=settings.ledger_flush_ms / 1000
        )
        gauges = Gauges(
            queue_depth=admission.depths,
            ledger_queue=self.writer.depth,
            ledger_dropped=lambda: self.writer.dropped,
            redis_failures=lambda: self.redis.failures if self.redis else 0,
            breakers=lambda: [
                (r.name, d.id, d.breaker.state) for r in router.routes for d in r.deployments
            ],
        )
        self.accounting = Accounting(metrics=Metrics(gauges), ledger=self.writer)
        self.redactor = Redactor(settings.capture_redact)
        self.samples: LedgerWriter[Captured] = LedgerWriter(
            self._write_captured,
            max_queue=settings.capture_queue,
            flush_s=settings.ledger_flush_ms / 1000,
            what="samples",
        )
        self.accounting.capture = Capture(settings, self.samples)
        self.accounting.in_context = InContext()
        self._pruning: asyncio.Task[None] | None = None
        if settings.cache:
            backend = self._cache_backend()
            self.accounting.responses = ResponseCache(backend, settings.cache_ttl_s)
            self.accounting.embeddings = EmbeddingCache(backend, settings.cache_ttl_s)

    async def open(self) -> None:
        """Open (and migrate) the ledger, start its writer, set up keys and limits."""
        self.engine = await asyncio.to_thread(open_engine, self.settings)
        self.sessions.store = StoredSessions(self.engine, self.settings.task_session_ttl_s)
        self.responses = StoredResponses(self.engine, self.settings.stored_response_ttl_s)
        self.writer.start()
        self.samples.start()
        if self.accounting.in_context is not None:
            self.accounting.in_context.engine = self.engine
        if self.settings.capture_retention_days is not None:
            self._pruning = asyncio.create_task(self._prune_every(PRUNE_EVERY_S))
        store = KeyStore(self.engine)
        if self.settings.auth:
            self.keys = KeyResolver(store)
        self.accounting.limiter = self._limiter(store)

    async def aclose(self) -> None:
        """Stop shadow teachers, write every queued usage record and sample, then close
        the database and Redis."""
        if self._pruning is not None:
            self._pruning.cancel()
            await asyncio.gather(self._pruning, return_exceptions=True)
        if self.accounting.capture is not None:
            await self.accounting.capture.aclose()
        await asyncio.to_thread(self.samples.close)
        await asyncio.to_thread(self.writer.close)
        if self.redis is not None:
            await self.redis.aclose()
        if self.engine is not None:
            self.engine.dispose()

    def _write(self, records: Sequence[UsageRecord]) -> None:
        assert self.engine is not None, "records are written only after open()"
        insert_usage(self.engine, records)

    def _write_captured(self, items: Sequence[Captured]) -> None:
        assert self.engine is not None, "samples are written only after open()"
        write_captured(self.engine, redacted(self.redactor, items))

    async def _prune_every(self, period_s: float) -> None:
        """Delete expired samples now and every ``period_s`` (a failure is logged)."""
        days = self.settings.capture_retention_days
        assert days is not None and self.engine is not None
        while True:
            try:
                gone = await asyncio.to_thread(prune, self.engine, days * 86400)
                if gone:
                    log.info("deleted %d captured samples older than %g days", gone, days)
            except Exception as exc:
                log.error("deleting expired samples failed: %s", exc)
            await asyncio.sleep(period_s)

    def _cache_backend(self) -> CacheBackend:
        memory = MemoryCache(self.settings.cache_max_entries)
        return RedisCache(self.redis, memory) if self.redis is not None else memory

    def _limiter(self, store: KeyStore) -> Limiter:
        async def spent(key_id: str) -> float:
            return await asyncio.to_thread(store.spent, key_id)

        memory = MemoryLimiter(spent)
        return RedisLimiter(self.redis, spent, memory) if self.redis is not None else memory


class Sessions:
    """Task sessions for the task engine: the ledger database's once it is open (shared
    by replicas), this process's memory before that."""

    def __init__(self, store: SessionStore):
        self.store = store

    async def turns(self, session: str, owner: str, last: int) -> list[Turn]:
        return await self.store.turns(session, owner, last)

    async def add(self, session: str, owner: str, user: str, assistant: str) -> None:
        await self.store.add(session, owner, user, assistant)
