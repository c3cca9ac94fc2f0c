"""The response cache: whole answers to deterministic requests, replayed whole or as a
stream. Only complete answers are stored (a stream that failed or was cut off is not)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from offramp.cache import keys
from offramp.cache.backends import CacheBackend
from offramp.cache.codec import dump_result, load_result
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionRequest,
    CompletionResult,
    FinishReason,
    StreamEnd,
    StreamItem,
    TokenLogprob,
    ToolCall,
    Usage,
)

Cacheable = ChatRequest | CompletionRequest


class ResponseCache:
    """Answers by normalised request key, within one partition (API key) each."""

    def __init__(self, backend: CacheBackend, ttl_s: float):
        self._backend = backend
        self._ttl_s = ttl_s

    async def lookup(self, partition: str, request: Cacheable) -> CompletionResult | None:
        """The stored answer to ``request``, or None (also for non-deterministic ones)."""
        if not keys.is_deterministic(request):
            return None
        (data,) = await self._backend.get_many([keys.response_key(partition, request)])
        return None if data is None else load_result(data)

    async def store(self, partition: str, request: Cacheable, result: CompletionResult) -> None:
        """Keep ``result`` as the answer to ``request`` if it is deterministic."""
        if keys.is_deterministic(request):
            key = keys.response_key(partition, request)
            await self._backend.set_many({key: dump_result(result)}, self._ttl_s)


async def replay(result: CompletionResult) -> AsyncIterator[StreamItem]:
    """A stored answer as a stream: each choice's content, its finish, then the usage."""
    for c in result.choices:
        yield ChoiceDelta(c.index, c.text or "", c.tool_calls, c.logprobs)
        yield ChoiceDelta(c.index, finish_reason=c.finish_reason)
    yield StreamEnd(dataclasses.replace(result.usage))


class StreamAssembler:
    """Collects a stream's items into the whole result it amounts to."""

    def __init__(self, model: str):
        self._model = model
        self._text: dict[int, list[str]] = {}
        self._tools: dict[int, list[ToolCall]] = {}
        self._logprobs: dict[int, list[TokenLogprob] | None] = {}
        self._finish: dict[int, FinishReason] = {}
        self.usage: Usage | None = None

    def add(self, item: StreamItem) -> None:
        if isinstance(item, StreamEnd):
            self.usage = item.usage
            return
        self._text.setdefault(item.index, []).append(item.text)
        self._tools.setdefault(item.index, []).extend(item.tool_calls)
        logprobs = self._logprobs.setdefault(item.index, None)
        if item.logprobs is not None:
            self._logprobs[item.index] = [*(logprobs or []), *item.logprobs]
        if item.finish_reason is not None:
            self._finish[item.index] = item.finish_reason

    def result(self) -> CompletionResult | None:
        """The whole result, or None unless every choice finished and usage arrived."""
        if self.usage is None or set(self._finish) != set(self._text):
            return None
        choices = tuple(
            Choice(
                index=i,
                text="".join(self._text[i]) or (None if self._tools[i] else ""),
                finish_reason=self._finish[i],
                tool_calls=tuple(self._tools[i]),
                logprobs=None if self._logprobs[i] is None else tuple(self._logprobs[i] or ()),
            )
            for i in sorted(self._text)
        )
        return CompletionResult(self._model, choices, self.usage)
