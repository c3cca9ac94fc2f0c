"""Resident memory of a server with both default models loaded, before and after traffic,
and what each further decode slot adds.

The default configuration first (idle, then after ``--requests`` chats and embedding
batches, with 4 streams at once); then the same config at each ``--slots`` value of
``parallel``, idle, to give the memory per added slot.

    python -m bench.memory [--requests 20] [--slots 1 2 4 8] [--config FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import openai
import psutil
import yaml

from bench.server import offramp_server

MIB = 2**20
SHIPPED = Path(__file__).resolve().parents[1] / "src/offramp/data/offramp.yaml"


async def _traffic(base_url: str, requests: int) -> None:
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="bench") as client:

        async def one(i: int) -> None:
            await client.chat.completions.create(
                model="gpt-4o-mini",
                max_tokens=64,
                messages=[{"role": "user", "content": f"Tell me fact number {i} about space."}],
            )
            await client.embeddings.create(
                model="text-embedding-3-small", input=[f"text {i} {j}" for j in range(64)]
            )

        for start in range(0, requests, 4):  # four streams at once
            await asyncio.gather(*(one(i) for i in range(start, min(start + 4, requests))))


def _idle_rss(config: Path, parallel: int, tmp: str) -> int:
    data = yaml.safe_load(config.read_text())
    data["models"][0].setdefault("options", {})["parallel"] = parallel
    path = Path(tmp) / f"parallel-{parallel}.yaml"
    path.write_text(yaml.safe_dump(data))
    with offramp_server("--config", str(path)) as served:
        return int(psutil.Process(served.proc.pid).memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--slots", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--config", help="a config file other than the packaged default")
    args = parser.parse_args()
    config = ["--config", args.config] if args.config else []
    with offramp_server(*config, cache=True) as served:  # the default configuration
        proc = psutil.Process(served.proc.pid)
        idle = proc.memory_info().rss
        asyncio.run(_traffic(served.base_url, args.requests))
        busy = proc.memory_info().rss
    print(f"RSS, both models loaded, idle:             {idle / MIB:.0f} MiB ({idle / 1e6:.0f} MB)")
    print(
        f"RSS after {args.requests} chats + {args.requests}x64 embeddings, 4 at once: "
        f"{busy / MIB:.0f} MiB ({busy / 1e6:.0f} MB); goal < 700 MB"
    )
    if args.slots:
        with tempfile.TemporaryDirectory() as tmp:
            rss = {n: _idle_rss(Path(args.config or SHIPPED), n, tmp) for n in args.slots}
        print("| parallel | idle RSS MiB | per added slot MiB |")
        print("|---|---|---|")
        previous: tuple[int, int] | None = None
        for n, value in rss.items():
            per = f"{(value - previous[1]) / (n - previous[0]) / MIB:.1f}" if previous else "-"
            print(f"| {n} | {value / MIB:.0f} | {per} |")
            previous = (n, value)
    print(f"1-minute load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
