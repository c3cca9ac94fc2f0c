"""In-context examples: the ``k`` captured samples most like a request, put in its prompt.

A route's or task's ``in_context:`` names how many examples, and which samples are good
enough (a metric's latest feedback at least ``min_value``). The candidates are the
captured samples of the same route (or task), read from the ledger at most every
``refresh_s``; each one's last user message is embedded once (through the gateway, so the
embedding cache serves texts seen before) and kept in memory. A request's own last user
message is embedded the same way, the candidates ranked by cosine similarity, and the
best ``k`` inserted as earlier user/assistant turns right after the system messages,
most similar last (nearest the question). The answer of a sample is its reference (a
demonstration or a teacher's) when it has one.

Retrieval never fails a request: a ledger or embedding error is logged and the request
goes on without examples.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from offramp.ledger.datasets import MetricCondition, SampleFilter, find_samples
from offramp.ledger.samples import answer_text, last_user_text
from offramp.routing.config import InContextSpec
from offramp.types import ChatRequest, Message

log = logging.getLogger(__name__)
Vectors = npt.NDArray[np.float32]
Embed = Callable[[str, list[str]], Awaitable[Vectors]]  # (model, texts) -> one row per text


@dataclass
class _Pool:
    """The candidate examples of one route or task."""

    loaded_at: float = 0.0
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant)
    vectors: Vectors | None = None


class InContext:
    """Examples by route or task, refreshed from the ledger (``engine``, once open)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.engine: Engine | None = None
        self._clock = clock
        self._pools: dict[tuple[str, str, str], _Pool] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def with_examples(
        self, request: ChatRequest, spec: InContextSpec, scope: SampleFilter, embed: Embed
    ) -> ChatRequest:
        """``request`` with the ``spec.k`` nearest good samples of ``scope`` before its
        conversation; ``request`` itself when there are none (or retrieval failed)."""
        query = last_user_text([_wire(m) for m in request.messages])
        if not query or self.engine is None:
            return request
        try:
            pool = await self._pool(spec, scope, embed)
            if not pool.pairs or pool.vectors is None:
                return request
            asked = _normalised(await embed(spec.embedding_model, [query]))[0]
            scores = pool.vectors @ asked
            best = np.argsort(-scores, kind="stable")[: spec.k][::-1]  # most similar last
            chosen = [pool.pairs[i] for i in best]
        except Exception as exc:
            log.warning("in-context examples skipped: %s", exc)
            return request
        return _inserted(request, chosen)

    async def _pool(self, spec: InContextSpec, scope: SampleFilter, embed: Embed) -> _Pool:
        key = (scope.route or "", scope.task or "", spec.model_dump_json())
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            pool = self._pools.get(key)
            if pool is not None and self._clock() - pool.loaded_at < spec.refresh_s:
                return pool
            pairs = await asyncio.to_thread(self._candidates, spec, scope)
            known = {p: i for i, p in enumerate(pool.pairs)} if pool is not None else {}
            vectors = np.zeros((len(pairs), 0), np.float32)
            if pairs:
                fresh = [u for (u, a) in pairs if (u, a) not in known]
                computed = _normalised(await embed(spec.embedding_model, fresh)) if fresh else None
                rows, next_fresh = [], 0
                for pair in pairs:
                    if pair in known and pool is not None and pool.vectors is not None:
                        rows.append(pool.vectors[known[pair]])
                    else:
                        assert computed is not None
                        rows.append(computed[next_fresh])
                        next_fresh += 1
                vectors = np.vstack(rows)
            self._pools[key] = _Pool(self._clock(), pairs, vectors if pairs else None)
            return self._pools[key]

    def _candidates(self, spec: InContextSpec, scope: SampleFilter) -> list[tuple[str, str]]:
        assert self.engine is not None
        where = scope
        if spec.metric is not None:
            where = replace(scope, metric=MetricCondition(spec.metric, ">=", spec.min_value))
        pairs: dict[tuple[str, str], None] = {}
        for judged in find_samples(self.engine, where)[-spec.max_candidates :]:
            messages = judged.sample.request.get("messages")
            user = last_user_text(messages) if isinstance(messages, list) else None
            reference = judged.reference
            answer = answer_text(reference if reference is not None else judged.sample.response)
            if user and answer:
                pairs[(user, answer)] = None
        return list(pairs)


def _inserted(request: ChatRequest, pairs: list[tuple[str, str]]) -> ChatRequest:
    messages = list(request.messages)
    at = 0
    while at < len(messages) and messages[at].role == "system":
        at += 1
    turns = [m for user, answer in pairs for m in (Message("user", user),
                                                    Message("assistant", answer))]  # fmt: skip
    return replace(request, messages=tuple(messages[:at] + turns + messages[at:]))


def _normalised(vectors: Vectors) -> Vectors:
    array = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.where(norms == 0, 1, norms)).astype(np.float32)


def _wire(message: Message) -> dict[str, str | None]:
    return {"role": message.role, "content": message.content}
