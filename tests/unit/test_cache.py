"""Cache keys, the in-process backend, stored results and the embedding cache."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import numpy as np
import pytest

from offramp.api.openai import translate
from offramp.api.openai.protocol import ChatCompletionRequest
from offramp.cache import keys
from offramp.cache.backends import MemoryCache
from offramp.cache.codec import dump_result, dump_vector, load_result, load_vector
from offramp.cache.embeddings import EmbeddingCache
from offramp.cache.responses import ResponseCache, StreamAssembler, replay
from offramp.types import (
    Choice,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    TokenLogprob,
    ToolCall,
    TopLogprob,
    Usage,
)


def _chat(**body: Any) -> Any:
    return translate.chat_request(ChatCompletionRequest.model_validate(body))


MESSAGES = [{"role": "user", "content": "Hi"}]


def test_irrelevant_differences_share_a_key() -> None:
    plain = _chat(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
    spelled_out = _chat(
        temperature=0,
        messages=MESSAGES,
        model="gpt-4o-mini",
        top_p=1,
        n=1,
        presence_penalty=0,
        user="someone",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert keys.response_key("k", plain) == keys.response_key("k", spelled_out)


@pytest.mark.parametrize(
    "change",
    [{"temperature": 0.5}, {"max_tokens": 3}, {"model": "gpt-4o"}, {"stop": ["x"]},
     {"messages": [{"role": "user", "content": "Hi!"}]}],
)  # fmt: skip
def test_relevant_differences_split_the_key(change: dict[str, Any]) -> None:
    base = {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0}
    assert keys.response_key("k", _chat(**base)) != keys.response_key("k", _chat(**base | change))


def test_keys_are_partitioned_and_only_deterministic_requests_cache() -> None:
    request = _chat(model="m", messages=MESSAGES, temperature=0)
    assert keys.response_key("a", request) != keys.response_key("b", request)
    assert keys.is_deterministic(request)
    assert keys.is_deterministic(_chat(model="m", messages=MESSAGES, seed=7))
    assert not keys.is_deterministic(_chat(model="m", messages=MESSAGES, temperature=0.7))


def test_memory_cache_evicts_least_recent_and_expires() -> None:
    async def run() -> None:
        cache = MemoryCache(max_entries=2)
        await cache.set_many({"a": b"1", "b": b"2"}, ttl_s=60)
        assert await cache.get_many(["a"]) == [b"1"]  # a is now the most recent
        await cache.set_many({"c": b"3"}, ttl_s=60)
        assert await cache.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
        await cache.set_many({"d": b"4"}, ttl_s=0.01)
        await asyncio.sleep(0.03)
        assert await cache.get_many(["d"]) == [None]

    asyncio.run(run())


RESULT = CompletionResult(
    "smollm2",
    (
        Choice(
            0,
            "Hello",
            "stop",
            logprobs=(TokenLogprob("Hello", -0.5, (72,), (TopLogprob("Hi", -1.0, (72, 105)),)),),
        ),
        Choice(1, None, "tool_calls", tool_calls=(ToolCall("call_1", "f", '{"a": 1}'),)),
    ),
    Usage(7, 3),
)


def test_results_survive_storage_and_replay_as_a_stream() -> None:
    assert load_result(dump_result(RESULT)) == RESULT

    async def collect() -> CompletionResult | None:
        whole = StreamAssembler("smollm2")
        async for item in replay(RESULT):
            whole.add(item)
        return whole.result()

    assert asyncio.run(collect()) == RESULT


def test_response_cache_skips_sampled_requests() -> None:
    async def run() -> None:
        cache = ResponseCache(MemoryCache(10), ttl_s=60)
        fixed = _chat(model="m", messages=MESSAGES, temperature=0)
        sampled = _chat(model="m", messages=MESSAGES, temperature=0.9)
        await cache.store("k", fixed, RESULT)
        await cache.store("k", sampled, RESULT)
        assert await cache.lookup("k", fixed) == RESULT
        assert await cache.lookup("other", fixed) is None
        assert await cache.lookup("k", sampled) is None

    asyncio.run(run())


def test_embedding_cache_embeds_each_text_once() -> None:
    asked: list[tuple[str, ...]] = []

    async def compute(request: EmbedRequest) -> EmbedResult:
        asked.append(request.texts)
        vectors = np.array([[len(t), 1.0] for t in request.texts], dtype=np.float32)
        return EmbedResult(request.model, vectors, sum(len(t) for t in request.texts))

    async def run() -> None:
        cache = EmbeddingCache(MemoryCache(100), ttl_s=60)
        first, hits, _ = await cache.embed("k", EmbedRequest("e", ("aa", "b", "aa")), compute)
        assert asked == [("aa", "b")] and hits == 0
        assert first.vectors[:, 0].tolist() == [2, 1, 2] and first.prompt_tokens == 5
        second, hits, hit_tokens = await cache.embed("k", EmbedRequest("e", ("b", "ccc")), compute)
        assert asked[-1] == ("ccc",) and hits == 1 and hit_tokens == 1
        assert second.vectors[:, 0].tolist() == [1, 3]
        await cache.embed("other", EmbedRequest("e", ("b",)), compute)
        assert asked[-1] == ("b",)  # another key's entries are not shared

    asyncio.run(run())


def test_embedding_cache_keeps_window_counts() -> None:
    async def compute(request: EmbedRequest) -> EmbedResult:
        vectors = np.ones((len(request.texts), 2), dtype=np.float32)
        windows = tuple(1 + len(t) // 10 for t in request.texts)
        return EmbedResult(request.model, vectors, 7, windows)

    async def run() -> None:
        cache = EmbeddingCache(MemoryCache(100), ttl_s=60)
        long_text = "x" * 35
        fresh, _, _ = await cache.embed("k", EmbedRequest("e", (long_text, "a")), compute)
        assert fresh.windows == (4, 1)
        cached, hits, _ = await cache.embed("k", EmbedRequest("e", ("a", long_text)), compute)
        assert hits == 2 and cached.windows == (1, 4)

    asyncio.run(run())


def test_vectors_written_without_windows_still_load() -> None:
    vector = np.array([0.5, -1.0], dtype=np.float32)
    old = struct.pack("<I", 12) + vector.astype("<f4").tobytes()
    loaded, tokens, windows = load_vector(old)
    assert loaded.tolist() == [0.5, -1.0] and tokens == 12 and windows is None
    loaded, tokens, windows = load_vector(dump_vector(vector, 12, 3))
    assert loaded.tolist() == [0.5, -1.0] and tokens == 12 and windows == 3
