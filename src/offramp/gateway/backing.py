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
from offramp.keys.auth import KeyResolver
from offramp.keys.limits import Limiter, MemoryLimiter, RedisLimiter
from offramp.keys.store import KeyStore
from offramp.ledger.records import UsageRecord
from offramp.ledger.sessions import StoredSessions
from offramp.ledger.store import insert_usage, open_engine
from offramp.ledger.writer import LedgerWriter
from offramp.local.admission import Admission
from offramp.observability.metrics import Gauges, Metrics
from offramp.routing.router import Router
from offramp.settings import Settings
from offramp.shared_redis import SharedRedis
from offramp.tasks.history import MemorySessions, SessionStore, Turn

log = logging.getLogger(__name__)


class Backing:
    """Owns the ledger engine, the Redis client and the parts of ``accounting``."""

    def __init__(self, settings: Settings, admission: Admission, router: Router):
        self.settings = settings
        self.engine: Engine | None = None
        self.keys: KeyResolver | None = None
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
        if settings.cache:
            backend = self._cache_backend()
            self.accounting.responses = ResponseCache(backend, settings.cache_ttl_s)
            self.accounting.embeddings = EmbeddingCache(backend, settings.cache_ttl_s)

    async def open(self) -> None:
        """Open (and migrate) the ledger, start its writer, set up keys and limits."""
        self.engine = await asyncio.to_thread(open_engine, self.settings)
        self.sessions.store = StoredSessions(self.engine, self.settings.task_session_ttl_s)
        self.writer.start()
        store = KeyStore(self.engine)
        if self.settings.auth:
            self.keys = KeyResolver(store)
        self.accounting.limiter = self._limiter(store)

    async def aclose(self) -> None:
        """Write every queued usage record, then close the database and Redis."""
        await asyncio.to_thread(self.writer.close)
        if self.redis is not None:
            await self.redis.aclose()
        if self.engine is not None:
            self.engine.dispose()

    def _write(self, records: Sequence[UsageRecord]) -> None:
        assert self.engine is not None, "records are written only after open()"
        insert_usage(self.engine, records)

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
