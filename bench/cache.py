"""Cached vs uncached answers from one ``offramp serve``, in the same run.

The same deterministic chat request (temperature 0) and the same embedding batch are
sent alternately with ``Cache-Control: no-cache`` (generated every time) and without it
(served from the response / embedding cache after the first), one request at a time
through the official SDK. Prints requests/s and p50 latency of each and the ratio.

    .venv/bin/python -m bench.cache [--reps 20] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openai

from bench.server import offramp_server

NO_CACHE = {"Cache-Control": "no-cache"}


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _pairs(
    uncached: Callable[[], object], cached: Callable[[], object], reps: int
) -> tuple[list[float], list[float]]:
    cached()  # the first answer fills the cache
    miss, hit = [], []
    for _ in range(reps):
        miss.append(_timed(uncached))
        hit.append(_timed(cached))
    return miss, hit


def _report(name: str, miss: list[float], hit: list[float]) -> None:
    def rps(times: list[float]) -> float:
        return len(times) / sum(times)

    p50_miss, p50_hit = statistics.median(miss) * 1000, statistics.median(hit) * 1000
    print(
        f"{name:<11} uncached {rps(miss):8.1f} req/s  p50 {p50_miss:8.1f} ms | "
        f"cached {rps(hit):8.1f} req/s  p50 {p50_hit:6.1f} ms | "
        f"{rps(hit) / rps(miss):6.1f}x req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["OFFRAMP_LEDGER_PATH"] = str(Path(tmp) / "ledger.db")
        with offramp_server(cache=True) as served:
            client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="x", max_retries=0)
            texts = [f"sentence number {i} about the weather" for i in range(32)]

            def chat(headers: dict[str, str]) -> object:
                return client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "Describe the sea in two sentences."}],
                    temperature=0,
                    max_tokens=args.max_tokens,
                    extra_headers=headers,
                )

            def embed(headers: dict[str, str]) -> object:
                return client.embeddings.create(
                    model="text-embedding-3-small", input=texts, extra_headers=headers
                )

            miss, hit = _pairs(lambda: chat(NO_CACHE), lambda: chat({}), args.reps)
            _report("chat", miss, hit)
            miss, hit = _pairs(lambda: embed(NO_CACHE), lambda: embed({}), args.reps)
            _report("embeddings", miss, hit)


if __name__ == "__main__":
    main()
