"""Many clients at once: nothing blocks the event loop, no stream is cut off, and a client
that leaves stops its generation."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.providers.llamacpp.provider import LlamaCppProvider
from tests.servers import ServerThread

MODEL = "gpt-4o-mini"
NO_END = {"2": -100, "0": -100}  # ban end-of-turn so generation runs to max_tokens


def _engine(pool: ModelPool) -> LlamaCppProvider:
    provider = pool._loaded["smollm2-135m-instruct"]
    assert isinstance(provider, LlamaCppProvider)
    return provider


def _wait_idle(pool: ModelPool, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    engine = _engine(pool).engine
    while time.monotonic() < deadline:
        if engine.busy_slots() == 0 and engine.waiting == 0:
            return True
        time.sleep(0.05)
    return False


def test_concurrent_streams_all_complete_whole(
    per_slot_server: tuple[ServerThread, ModelPool],
) -> None:
    server, _ = per_slot_server  # per-slot KV: a stream is bit-for-bit the whole answer
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
    async_client = openai.AsyncOpenAI(
        base_url=server.base_url + "/v1", api_key="x", max_retries=0, timeout=120
    )
    prompts = [f"Write one sentence about the number {i}." for i in range(4)]
    expected = [
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": p}], temperature=0, max_tokens=30
        )
        .choices[0]
        .message.content
        for p in prompts
    ]

    async def one(prompt: str) -> tuple[str, str | None]:
        stream = await async_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=30,
            stream=True,
        )
        parts, finish = [], None
        async for chunk in stream:
            for c in chunk.choices:
                parts.append(c.delta.content or "")
                finish = c.finish_reason or finish
        return "".join(parts), finish

    async def all_at_once() -> list[tuple[str, str | None]]:
        return await asyncio.gather(*(one(p) for p in prompts))

    results = asyncio.run(all_at_once())
    for (text, finish), want in zip(results, expected, strict=True):
        assert finish in ("stop", "length")
        assert text == want


def test_health_and_models_answer_during_generation(server: ServerThread, pool: ModelPool) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell a long story."}],
        "max_tokens": 300,
        "temperature": 0,
        "logit_bias": NO_END,
    }
    done = threading.Event()

    def generate() -> None:
        httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=120)
        done.set()

    worker = threading.Thread(target=generate)
    worker.start()
    engine = _engine(pool).engine
    deadline = time.monotonic() + 10
    while engine.busy_slots() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.busy_slots() == 1, "generation did not start"
    slowest = 0.0
    for path in ("/health", "/v1/models", "/health", "/v1/models"):
        started = time.monotonic()
        r = httpx.get(server.base_url + path, timeout=5)
        slowest = max(slowest, time.monotonic() - started)
        assert r.status_code == 200
    assert not done.is_set(), "generation finished too early to show anything"
    # generation takes seconds; a blocked event loop would hold these for that long
    assert slowest < 0.5
    worker.join()


def _endless(stream: bool) -> dict[str, object]:
    """A request that would generate for many seconds (3000 tokens, end-of-turn banned)."""
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count forever."}],
        "max_tokens": 3000,
        "temperature": 0,
        "stream": stream,
        "logit_bias": NO_END,
    }


def test_disconnected_stream_frees_its_slot(server: ServerThread, pool: ModelPool) -> None:
    assert _wait_idle(pool)
    with (
        httpx.Client(timeout=60) as http,
        http.stream("POST", server.base_url + "/v1/chat/completions", json=_endless(True)) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        for _ in range(3):
            next(lines)
    # 3000 tokens take many seconds; the slot must be free long before that
    assert _wait_idle(pool, seconds=3)


def test_disconnected_whole_request_stops_generation(server: ServerThread, pool: ModelPool) -> None:
    assert _wait_idle(pool)
    with pytest.raises(httpx.TimeoutException):  # still generating when the client gives up
        httpx.post(server.base_url + "/v1/chat/completions", json=_endless(False), timeout=1.0)
    assert _wait_idle(pool, seconds=3)
