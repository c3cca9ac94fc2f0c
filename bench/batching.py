"""Concurrent chat streams: the raw decode ceiling vs offramp vs llama-cpp-python's server.

One run, same GGUF, same prompts, greedy decoding, 2 threads, q8_0 KV cache with flash
attention on every side, end-of-turn banned so every stream generates exactly
``--tokens`` tokens:

- ceiling: a plain llama_decode loop on llama-cpp-python's low-level API, N sequences
  decoded together, native greedy sampling, no server (prompt processing included);
- offramp: ``offramp serve`` (``parallel`` = the largest concurrency), N concurrent
  streamed requests through the official SDK;
- llama-cpp-python's own server (``python -m llama_cpp.server``), the same requests.

Aggregate generated tokens/s = all tokens / wall time from the first request to the last
token; time to first token (TTFT) per request, p50/p95 over ``--rounds`` rounds.

    python -m bench.batching [--tokens 128] [--rounds 3] [--concurrency 1 4 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml

from bench.server import free_port, offramp_server
from offramp.models.registry import load_registry
from offramp.models.sources import resolve
from offramp.settings import load_settings

TOPICS = ["rivers", "compilers", "bread", "volcanoes", "chess", "jazz", "bees", "bridges"]
NO_END = {"2": -100, "0": -100}
THREADS = 2


@dataclass
class Round:
    tokens: int
    seconds: float
    ttft: list[float]
    short: int = 0  # streams that ended before their max_tokens (cut off by the server)


def _prompt(i: int) -> str:
    return f"Write a long essay about {TOPICS[i % len(TOPICS)]}."


def model_path() -> str:
    spec = load_registry(None).resolve("smollm2-135m-instruct", kind="chat")
    return str(resolve(spec.source, load_settings().models_dir))


# ----- the ceiling ----------------------------------------------------------------------


def ceiling(path: str, n_seq: int, tokens: int) -> Round:
    """A bare llama_decode loop: prefill n_seq prompts, then one token per sequence per step."""
    import llama_cpp
    from llama_cpp import _internals

    internals: Any = _internals  # partly untyped
    llama_cpp.llama_backend_init()
    model = internals.LlamaModel(
        path_model=path, params=llama_cpp.llama_model_default_params(), verbose=False
    )
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx, cparams.n_seq_max, cparams.n_batch = 4096 * n_seq, n_seq, 512
    cparams.n_threads = cparams.n_threads_batch = THREADS
    cparams.type_k = cparams.type_v = 8  # q8_0
    cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    ctx = internals.LlamaContext(model=model, params=cparams, verbose=False)
    batch = internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=n_seq, verbose=False)
    greedy = [internals.LlamaSampler() for _ in range(n_seq)]
    for sampler in greedy:
        sampler.add_greedy()
    template = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    prompts = [
        model.tokenize(template.format(_prompt(i)).encode(), False, True) for i in range(n_seq)
    ]
    b = batch.batch
    started = time.perf_counter()
    b.n_tokens = 0
    for seq, prompt in enumerate(prompts):
        for pos, token in enumerate(prompt):
            j = b.n_tokens
            b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = token, pos, 1, False
            b.seq_id[j][0] = seq
            b.n_tokens += 1
        b.logits[b.n_tokens - 1] = True
    ctx.decode(batch)
    rows = []
    row = -1
    for prompt in prompts:
        row += len(prompt)
        rows.append(row)
    positions = [len(p) for p in prompts]
    first = time.perf_counter() - started
    for _ in range(tokens):
        picked = [
            llama_cpp.llama_sampler_sample(greedy[s].sampler, ctx.ctx, rows[s])
            for s in range(n_seq)
        ]
        b.n_tokens = 0
        for seq, token in enumerate(picked):
            b.token[seq], b.pos[seq], b.n_seq_id[seq], b.logits[seq] = (
                token,
                positions[seq],
                1,
                True,
            )
            b.seq_id[seq][0] = seq
            positions[seq] += 1
        b.n_tokens = n_seq
        rows = list(range(n_seq))
        ctx.decode(batch)
    seconds = time.perf_counter() - started
    for sampler in greedy:
        sampler.close()
    batch.close()
    ctx.close()
    model.close()
    return Round(tokens * n_seq, seconds, [first] * n_seq)


# ----- servers --------------------------------------------------------------------------


# offramp ends a greedy answer that loops (its repetition guard, finish "length"); the
# other sides have none, so the bench turns it off for every side to generate as much
OFFRAMP_EXTRA: dict[str, object] = {"offramp": {"repetition_guard": False}}


async def _stream(
    client: openai.AsyncOpenAI, i: int, tokens: int, extra: dict[str, object] | None
) -> tuple[int, float, float]:
    """One streamed request: (tokens received, time to first token, end time). Tokens come
    from the usage chunk where the server sends one, else one per content chunk."""
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": _prompt(i)}],
        temperature=0,
        max_tokens=tokens,
        stream=True,
        stream_options={"include_usage": True},
        logit_bias=NO_END,
        extra_body=extra,
    )
    first = 0.0
    pieces = 0
    used = None
    async for chunk in stream:
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            if not first:
                first = time.perf_counter() - started
            pieces += 1
    return (used if used is not None else pieces), first, time.perf_counter()


async def _round(
    base_url: str, n: int, tokens: int, extra: dict[str, object] | None = None
) -> Round:
    async with openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key="bench", max_retries=0, timeout=600
    ) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(_stream(client, i, tokens, extra) for i in range(n)))
    ended = max(r[2] for r in results)
    short = sum(1 for r in results if r[0] < tokens)
    return Round(sum(r[0] for r in results), ended - started, [r[1] for r in results], short)


def serve_rounds(
    base_url: str, n: int, tokens: int, rounds: int, extra: dict[str, object] | None = None
) -> list[Round]:
    asyncio.run(_round(base_url, 1, 8, extra))  # warm-up
    return [asyncio.run(_round(base_url, n, tokens, extra)) for _ in range(rounds)]


@contextmanager
def llama_cpp_server(path: str, *, interrupt: bool) -> Iterator[str]:
    """llama-cpp-python's server; by default (``interrupt``) a new request cuts off the
    running stream, without it requests are served one after another."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server", "--model", path, "--port", str(port),
            "--n_threads", str(THREADS), "--n_ctx", "4096", "--type_k", "8", "--type_v", "8",
            "--flash_attn", "true", "--verbose", "false",
            "--interrupt_requests", str(interrupt).lower(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited during start-up")
            try:
                if httpx.get(base + "/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def offramp_parallel(n: int) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "offramp.yaml"
        shipped = Path(__file__).resolve().parents[1] / "src/offramp/data/offramp.yaml"
        data = yaml.safe_load(shipped.read_text())
        data["models"][0]["options"]["parallel"] = n
        config.write_text(yaml.safe_dump(data))
        os.environ["OFFRAMP_N_THREADS"] = str(THREADS)
        with offramp_server("--config", str(config)) as served:
            yield served.base_url


# ----- report ---------------------------------------------------------------------------


@dataclass
class Summary:
    rate: float  # aggregate tokens/s, median over rounds
    p50: float  # time to first token over every stream that got one
    p95: float
    short: int  # streams cut off before max_tokens, all rounds


def _summary(rounds: list[Round]) -> Summary:
    rate = statistics.median(r.tokens / r.seconds for r in rounds)
    ttft = sorted(t for r in rounds for t in r.ttft if t > 0) or [0.0]
    p95 = ttft[min(len(ttft) - 1, round(0.95 * (len(ttft) - 1)))]
    return Summary(rate, statistics.median(ttft), p95, sum(r.short for r in rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = model_path()
    levels = args.concurrency

    def served(base: str, extra: dict[str, object] | None = None) -> dict[int, Summary]:
        return {n: _summary(serve_rounds(base, n, args.tokens, args.rounds, extra)) for n in levels}

    table: dict[str, dict[int, Summary]] = {}
    table["ceiling"] = {
        n: _summary([ceiling(path, n, args.tokens) for _ in range(args.rounds)]) for n in levels
    }
    with offramp_parallel(max(levels)) as base:
        table["offramp"] = served(base, OFFRAMP_EXTRA)
    with llama_cpp_server(path, interrupt=False) as base:
        table["llama-cpp-python server (one at a time)"] = served(base)
    with llama_cpp_server(path, interrupt=True) as base:
        table["llama-cpp-python server (default: interrupts)"] = served(base)
    _report(table, args, levels)


def _report(
    table: dict[str, dict[int, Summary]], args: argparse.Namespace, levels: list[int]
) -> None:
    print(f"{args.tokens} tokens per stream, {args.rounds} rounds, {THREADS} threads")
    print("| side | streams | tokens/s | TTFT p50 s | TTFT p95 s | vs ceiling | streams cut off |")
    print("|---|---|---|---|---|---|---|")
    for side, rows in table.items():
        for n, r in rows.items():
            ratio = r.rate / table["ceiling"][n].rate
            print(
                f"| {side} | {n} | {r.rate:.1f} | {r.p50:.3f} | {r.p95:.3f} | {ratio:.2f}x "
                f"| {r.short}/{n * args.rounds} |"
            )
    top = max(levels)
    mine = table["offramp"][top].rate
    for side in list(table)[2:]:
        print(f"offramp / {side} at {top} streams: {mine / table[side][top].rate:.2f}x")


if __name__ == "__main__":
    main()
