"""Generated tokens/s: offramp over HTTP (streamed, official SDK) vs llama-cpp-python in-process.

Same GGUF file, same prompt, greedy decoding, 2 threads, same KV-cache type. Each side is
timed from sending the request to its last token; the ratio is what matters.

    python bench/chat_throughput.py [--tokens 256] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import openai

from bench.server import offramp_server
from offramp.models.registry import load_registry
from offramp.models.sources import resolve

PROMPT = "Write a long, detailed essay about the history of computing, from the abacus to today."


def offramp_rate(base_url: str, tokens: int) -> tuple[float, int]:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="bench", max_retries=0)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0,
        max_tokens=tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    generated = 0
    for chunk in stream:
        if chunk.usage is not None:
            generated = chunk.usage.completion_tokens
    return generated / (time.perf_counter() - started), generated


def offramp_whole_rate(base_url: str, tokens: int) -> float:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="bench", max_retries=0)
    started = time.perf_counter()
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0,
        max_tokens=tokens,
    )
    assert reply.usage is not None
    return reply.usage.completion_tokens / (time.perf_counter() - started)


def llama_cpp_rate(llm: object, tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    stream = llm.create_chat_completion(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0,
        max_tokens=tokens,
        stream=True,
    )
    generated = sum(1 for chunk in stream if chunk["choices"][0]["delta"].get("content"))
    return generated / (time.perf_counter() - started), generated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    from llama_cpp import Llama

    path = resolve(load_registry(None).resolve("gpt-4o-mini").source, Path("/nonexistent"))
    llm = Llama(
        str(path),
        n_ctx=8192,
        n_threads=2,
        n_batch=512,
        type_k=8,
        type_v=8,
        flash_attn=True,
        verbose=False,
    )
    llama_cpp_rate(llm, 16)  # warm-up
    ours: list[float] = []
    whole: list[float] = []
    theirs: list[float] = []
    with offramp_server() as served:
        offramp_rate(served.base_url, 16)  # warm-up
        for _ in range(args.reps):  # interleaved, so machine noise hits both alike
            rate, n_ours = offramp_rate(served.base_url, args.tokens)
            ours.append(rate)
            whole.append(offramp_whole_rate(served.base_url, args.tokens))
            rate, n_theirs = llama_cpp_rate(llm, args.tokens)
            theirs.append(rate)
    o, t = statistics.median(ours), statistics.median(theirs)
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
    print(f"offramp server (HTTP, streamed): {o:.1f} tok/s  ({n_ours} tokens)")
    print(f"offramp server (HTTP, whole):    {statistics.median(whole):.1f} tok/s")
    print(f"llama-cpp-python in-process:     {t:.1f} tok/s  ({n_theirs} tokens)")
    pairs = sorted(a / b for a, b in zip(whole, theirs, strict=True))
    print(f"ratio whole-answer / in-process: {statistics.median(pairs):.2f}x")
    print(
        f"ratio offramp / in-process:      {statistics.median(ratios):.2f}x median of "
        f"{len(ratios)} interleaved pairs (min {ratios[0]:.2f}, max {ratios[-1]:.2f}); "
        "goal >= 0.95x"
    )


if __name__ == "__main__":
    main()
