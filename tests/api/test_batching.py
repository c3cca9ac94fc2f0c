"""Continuous batching: concurrent requests share decode steps yet each gets exactly what it
would get alone (with a KV buffer per slot); a shared system prompt is computed once; the
default shared KV pool is sized per slot, and when full it preempts and resumes rather
than failing."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.models.registry import load_registry
from offramp.models.sources import resolve
from offramp.providers.llamacpp.engine import SLOT_CELLS, Engine, default_kv_size
from offramp.providers.llamacpp.jobs import Failed, Finished, Job
from offramp.providers.llamacpp.provider import LlamaCppProvider
from offramp.providers.llamacpp.stops import Piece
from offramp.settings import Settings
from offramp.types import Sampling
from tests.servers import ServerThread

MODEL = "gpt-4o-mini"
NO_END = {"2": -100, "0": -100}
SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string", "maxLength": 40}, "level": {"type": "integer"}},
    "required": ["topic", "level"],
    "additionalProperties": False,
}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up in the glossary.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string", "maxLength": 30}},
            "required": ["word"],
        },
    },
}
TUTOR = (
    "You are a patient programming tutor for beginners. Explain with short sentences, "
    "give one small example, avoid jargon, and end with a question that checks "
    "understanding. " * 4
)


def _user(text: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": text}]


# Eight requests (twice the default slots, so some join while others run), each with
# its own sampling, grammar, stop strings and length.
REQUESTS: list[dict[str, Any]] = [
    {"messages": _user("Explain recursion."), "temperature": 0, "max_tokens": 48},
    {
        "messages": _user("Write a haiku about loops."),
        "temperature": 0.9,
        "top_p": 0.9,
        "seed": 7,
        "max_tokens": 40,
    },
    {
        "messages": _user("Describe a Python topic as JSON."),
        "temperature": 0,
        "max_tokens": 60,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "topic", "schema": SCHEMA},
        },
    },
    {
        "messages": _user("List three sorting algorithms."),
        "temperature": 0,
        "max_tokens": 60,
        "stop": ["\n", "3."],
    },
    {
        "messages": _user("Say something about hash maps."),
        "temperature": 0,
        "max_tokens": 40,
        "logit_bias": NO_END,
        "frequency_penalty": 0.8,
    },
    {
        "messages": _user("Look up the word 'closure'."),
        "temperature": 0,
        "max_tokens": 40,
        "tools": [TOOL],
        "tool_choice": "required",
    },
    {"messages": _user("What is a variable?", TUTOR), "temperature": 0, "max_tokens": 32},
    {
        "messages": _user("What is a function?", TUTOR),
        "temperature": 0.7,
        "seed": 11,
        "max_tokens": 32,
    },
]


def _outcome(reply: Any) -> tuple[object, ...]:
    choice = reply.choices[0]
    calls = tuple((c.function.name, c.function.arguments) for c in choice.message.tool_calls or ())
    return choice.message.content, calls, choice.finish_reason, reply.usage.completion_tokens


def _engine(pool: ModelPool) -> Engine:
    provider = pool._loaded["smollm2-135m-instruct"]
    assert isinstance(provider, LlamaCppProvider)
    return provider.engine


def test_the_default_kv_pool_is_shared_and_grows_by_a_share_per_slot(pool: ModelPool) -> None:
    engine = _engine(pool)
    assert engine.kv_unified
    assert engine.kv_size == default_kv_size(8192, 4) == 8192 + 3 * SLOT_CELLS
    assert default_kv_size(4096, 1) == 4096  # one slot: one full context
    assert default_kv_size(512, 4) == 4 * 512  # a slot's share never exceeds a context


def test_concurrent_requests_each_get_what_they_would_alone(
    per_slot_server: tuple[ServerThread, ModelPool],
) -> None:
    """Exact with a KV buffer per slot. In the shared pool (the default) a sequence's
    cells may sit out of position order, which changes attention's float rounding in the
    last bits, enough to flip a near-tie between two tokens now and then."""
    server, pool = per_slot_server
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
    async_client = openai.AsyncOpenAI(
        base_url=server.base_url + "/v1", api_key="x", max_retries=0, timeout=600
    )
    alone = [_outcome(client.chat.completions.create(model=MODEL, **body)) for body in REQUESTS]
    engine = _engine(pool)
    assert not engine.kv_unified
    assert engine.n_slots == 4  # the default on a CPU: half of these requests must wait
    steps_before = engine.stats.steps

    async def one(i: int, body: dict[str, Any]) -> tuple[object, ...]:
        await asyncio.sleep(0.15 * (i % 3))  # some join while others are mid-generation
        return _outcome(await async_client.chat.completions.create(model=MODEL, **body))

    async def together() -> list[tuple[object, ...]]:
        return await asyncio.gather(*(one(i, b) for i, b in enumerate(REQUESTS)))

    concurrent = asyncio.run(together())
    for i, (got, want) in enumerate(zip(concurrent, alone, strict=True)):
        assert got == want, f"request {i} differs when batched"
    generated = sum(int(o[3]) for o in concurrent)  # type: ignore[call-overload]
    # decoded together: far fewer steps than tokens generated
    assert engine.stats.steps - steps_before < 0.6 * generated


def test_a_shared_system_prompt_is_computed_once(client: openai.OpenAI, pool: ModelPool) -> None:
    engine = _engine(pool)
    system = f"Class {uuid.uuid4().hex[:8]}. {TUTOR}"  # no idle slot holds it already
    system_tokens = len(engine.tokenize(system, add_special=False, parse_special=False))
    first = threading.Thread(
        target=client.chat.completions.create,
        kwargs={
            "model": MODEL,
            "messages": _user("What is a loop? Answer at length.", system),
            "max_tokens": 200,
            "logit_bias": NO_END,
        },
    )
    first.start()
    while engine.busy_slots() == 0 or engine.stats.generated_tokens == 0:
        pass  # until the first request has computed its prompt
    shared_before = engine.stats.prompt_tokens_shared
    r = client.chat.completions.create(
        model=MODEL, messages=_user("What is a list?", system), max_tokens=8
    )
    first.join()
    assert r.choices[0].message.content
    # the second request took the system prompt's cells from the first one's slot
    assert engine.stats.prompt_tokens_shared - shared_before >= system_tokens


def _run_all(engine: Engine, jobs: list[list[int]], max_tokens: int) -> list[tuple[str, object]]:
    texts: list[list[str]] = [[] for _ in jobs]
    ends: list[object] = [None] * len(jobs)
    done = threading.Semaphore(0)

    def sink(i: int) -> Any:
        def take(event: object) -> None:
            if isinstance(event, Piece):
                texts[i].append(event.text)
            elif isinstance(event, Finished | Failed):
                ends[i] = event
                done.release()

        return take

    banned = Sampling(temperature=0.0, max_tokens=max_tokens, logit_bias={2: -100.0, 0: -100.0})
    engine.submit(*(Job(prompt, banned, max_tokens, sink(i)) for i, prompt in enumerate(jobs)))
    for _ in jobs:
        assert done.acquire(timeout=240)
    return [("".join(t), e) for t, e in zip(texts, ends, strict=True)]


@pytest.mark.slow
def test_a_full_shared_kv_pool_preempts_and_resumes(settings: Settings) -> None:
    spec = load_registry(None).resolve("smollm2-135m-instruct", kind="chat")
    path = str(resolve(spec.source, settings.models_dir))
    # three sequences of ~140 tokens cannot all fit 256 cells: one must wait its turn
    engine = Engine(
        path,
        n_ctx=256,
        n_slots=3,
        n_threads=2,
        n_gpu_layers=0,
        kv_size=256,
        kv_unified=True,
        kv_type="q8_0",
    )
    try:
        prompts = [
            engine.tokenize(f"Tell me about {topic}.", add_special=False, parse_special=False)
            for topic in ("rivers", "mountains", "deserts")
        ]
        results = _run_all(engine, prompts, max_tokens=130)
        assert engine.stats.preemptions >= 1
        for text, end in results:
            assert isinstance(end, Finished) and end.completion_tokens == 130, end
            assert text
    finally:
        engine.close()


def test_jobs_arriving_together_compute_their_shared_prompt_once(pool: ModelPool) -> None:
    engine = _engine(pool)
    system = f"Class {uuid.uuid4().hex[:8]}. {TUTOR}"  # no slot holds it yet
    shared = engine.tokenize(system, add_special=False, parse_special=False)
    prompts = [
        shared + engine.tokenize(q, add_special=False, parse_special=False)
        for q in ("What is a tuple?", "What is a set?", "What is a dict?")
    ]
    before = engine.stats.prompt_tokens_shared
    results = _run_all(engine, prompts, max_tokens=8)
    assert all(isinstance(end, Finished) and text for text, end in results)
    # admitted in one step: the first computes the common prefix, the other two take its
    # cells a step later instead of computing it beside it
    assert engine.stats.prompt_tokens_shared - before >= 2 * (len(shared) - 2)


def test_n_choices_share_their_prompt(client: openai.OpenAI, pool: ModelPool) -> None:
    engine = _engine(pool)
    system = f"Class {uuid.uuid4().hex[:8]}. {TUTOR}"
    before = engine.stats.prompt_tokens_shared
    reply = client.chat.completions.create(
        model=MODEL, messages=_user("What is a loop?", system), max_tokens=8, n=3, seed=5
    )
    assert len(reply.choices) == 3 and all(c.message.content for c in reply.choices)
    prompt_tokens = reply.usage.prompt_tokens
    assert engine.stats.prompt_tokens_shared - before >= 2 * (prompt_tokens - 1)
