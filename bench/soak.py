"""Resident memory of one server under a long bounded load: does it grow?

``offramp serve`` on the default config (both embedded models, in-process cache, SQLite
ledger) takes a steady mix from ``--clients`` concurrent clients for ``--minutes``:
streamed and whole chats with varied prompts (new cache keys, new ledger rows), repeated
deterministic chats (cache hits), embedding batches with new and repeated texts. RSS is
sampled every ``--every`` seconds; the report gives RSS after warm-up, at the end, the
peak, and the slope of a least-squares line over the second half of the run (growth that
does not level off shows up there).

    python -m bench.soak [--minutes 10] [--clients 4] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time

import openai
import psutil

from bench.server import offramp_server

MIB = 2**20


async def _client(client: openai.AsyncOpenAI, worker: int, until: float) -> int:
    done = 0
    for i in itertools.count():
        if time.monotonic() >= until:
            return done
        kind = i % 4
        if kind == 0:  # a new prompt every time: new cache key, new ledger row
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Fact {worker}-{i} about oceans?"}],
                max_tokens=24,
            )
        elif kind == 1:  # the same deterministic prompt: a cache hit after the first
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Name one prime number."}],
                max_tokens=8,
                temperature=0,
            )
        elif kind == 2:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Story {worker}-{i} in a line."}],
                max_tokens=24,
                stream=True,
            )
            async for _ in stream:
                pass
        else:
            await client.embeddings.create(
                model="text-embedding-3-small",
                input=[f"note {worker}-{i}-{j}" for j in range(16)] + ["a repeated line"],
            )
        done += 1
    return done


async def _load(base_url: str, clients: int, seconds: float) -> int:
    until = time.monotonic() + seconds
    async with openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key="bench", max_retries=0, timeout=120
    ) as client:
        counts = await asyncio.gather(*(_client(client, w, until) for w in range(clients)))
    return sum(counts)


async def _sampled(
    proc: psutil.Process, base_url: str, args: argparse.Namespace
) -> tuple[int, list[tuple[float, int]]]:
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    load = asyncio.create_task(_load(base_url, args.clients, args.minutes * 60))
    while not load.done():
        samples.append((time.monotonic() - started, proc.memory_info().rss))
        await asyncio.wait({load}, timeout=args.every)
    samples.append((time.monotonic() - started, proc.memory_info().rss))
    return await load, samples


def _slope_mib_per_min(samples: list[tuple[float, int]]) -> float:
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    xs = [t / 60 for t, _ in half]
    ys = [r / MIB for _, r in half]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    with offramp_server(cache=True) as served:
        proc = psutil.Process(served.proc.pid)
        idle = proc.memory_info().rss
        requests, samples = asyncio.run(_sampled(proc, served.base_url, args))
    warm = samples[min(3, len(samples) - 1)][1]
    end = samples[-1][1]
    peak = max(r for _, r in samples)
    print(f"{requests} requests in {args.minutes:g} min from {args.clients} clients")
    print(f"RSS idle {idle / MIB:.0f} MiB, after warm-up {warm / MIB:.0f} MiB, ", end="")
    print(f"end {end / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB")
    print(f"growth warm-up -> end: {(end - warm) / MIB:+.1f} MiB; ", end="")
    print(f"second-half slope {_slope_mib_per_min(samples):+.2f} MiB/min")
    print("samples (s, MiB):", ", ".join(f"{t:.0f}:{r / MIB:.0f}" for t, r in samples))


if __name__ == "__main__":
    main()
