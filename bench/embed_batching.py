"""Embedding requests that arrive together: 32 concurrent single-text requests vs the same
32 served one by one, against one ``offramp serve``, official SDK, texts/s per round.

    python -m bench.embed_batching [--requests 32] [--rounds 5] [--window-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import openai

from bench.server import offramp_server

MODEL = "text-embedding-3-small"


def _texts(n: int, round_no: int) -> list[str]:
    return [
        f"Round {round_no}, note {i}: learners review topic {i % 11} before the quiz."
        for i in range(n)
    ]


async def _one_by_one(client: openai.AsyncOpenAI, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        await client.embeddings.create(model=MODEL, input=text)
    return len(texts) / (time.perf_counter() - started)


async def _together(client: openai.AsyncOpenAI, texts: list[str]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(client.embeddings.create(model=MODEL, input=t) for t in texts))
    return len(texts) / (time.perf_counter() - started)


async def _run(base_url: str, requests: int, rounds: int) -> tuple[list[float], list[float]]:
    alone, together = [], []
    async with openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key="bench", max_retries=0, timeout=120
    ) as client:
        await _together(client, _texts(requests, -1))  # warm-up: connections, first pass
        for r in range(rounds):  # interleaved, so drift in machine load hits both alike
            alone.append(await _one_by_one(client, _texts(requests, 2 * r)))
            together.append(await _together(client, _texts(requests, 2 * r + 1)))
    return alone, together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window-ms", type=float, default=None)
    args = parser.parse_args()
    if args.window_ms is not None:
        os.environ["OFFRAMP_EMBED_BATCH_WINDOW_MS"] = str(args.window_ms)
    with offramp_server() as served:
        alone, together = asyncio.run(_run(served.base_url, args.requests, args.rounds))
    a, t = statistics.median(alone), statistics.median(together)
    print(f"{args.requests} single-text requests, {args.rounds} rounds (median texts/s)")
    print(f"one by one: {a:.1f}  concurrent: {t:.1f}  ratio: {t / a:.2f}x")
    print("per round:", ", ".join(f"{x / y:.2f}x" for x, y in zip(together, alone, strict=True)))


if __name__ == "__main__":
    main()
