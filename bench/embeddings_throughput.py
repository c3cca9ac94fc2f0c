"""Embedding texts/s: offramp over HTTP (official SDK, its default base64) vs
sentence-transformers in-process, at the same batch size (default 64).

    python -m bench.embeddings_throughput [--batch 64] [--batches 8] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import openai

from bench.server import offramp_server
from offramp.models.registry import load_registry
from offramp.models.sources import resolve


def corpus(n: int) -> list[str]:
    topics = [
        "recursion",
        "binary search",
        "hash maps",
        "closures",
        "generators",
        "sorting",
        "graphs",
        "dynamic programming",
    ]
    return [
        f"Explain {topics[i % len(topics)]} to a learner, example {i}, with a short "
        f"analogy and a note on complexity."
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    texts = corpus(args.batch * args.batches)
    batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
    path = resolve(load_registry(None).resolve("text-embedding-3-small").source, Path("/x"))
    model = SentenceTransformer(str(path), device="cpu")

    def local() -> float:
        started = time.perf_counter()
        for batch in batches:
            model.encode(batch, batch_size=args.batch, normalize_embeddings=True)
        return len(texts) / (time.perf_counter() - started)

    with offramp_server() as served:
        client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="bench", max_retries=0)

        def http() -> float:
            started = time.perf_counter()
            for batch in batches:
                client.embeddings.create(model="text-embedding-3-small", input=batch)
            return len(texts) / (time.perf_counter() - started)

        local(), http()  # warm-up
        ours, theirs = [], []
        for _ in range(args.reps):
            ours.append(http())
            theirs.append(local())
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
    print(f"offramp HTTP (batch {args.batch}, base64): {statistics.median(ours):.0f} texts/s")
    print(f"sentence-transformers in-process:        {statistics.median(theirs):.0f} texts/s")
    print(
        f"ratio: {statistics.median(ratios):.2f}x median of {len(ratios)} interleaved pairs "
        f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f}); goal >= 0.9x"
    )


if __name__ == "__main__":
    main()
