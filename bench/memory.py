"""Resident memory of a server with both default models loaded, before and after traffic.

python -m bench.memory [--requests 20]
"""

from __future__ import annotations

import argparse

import openai
import psutil

from bench.server import offramp_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--config", help="a config file other than the packaged default")
    args = parser.parse_args()
    config = ["--config", args.config] if args.config else []
    with offramp_server(*config, cache=True) as served:  # the default configuration
        proc = psutil.Process(served.proc.pid)
        idle = proc.memory_info().rss
        client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="bench")
        for i in range(args.requests):
            client.chat.completions.create(
                model="gpt-4o-mini",
                max_tokens=64,
                messages=[{"role": "user", "content": f"Tell me fact number {i} about space."}],
            )
            client.embeddings.create(
                model="text-embedding-3-small", input=[f"text {i} {j}" for j in range(64)]
            )
        busy = proc.memory_info().rss
    mib = 2**20
    print(f"RSS, both models loaded, idle:             {idle / mib:.0f} MiB")
    print(
        f"RSS after {args.requests} chats + {args.requests}x64 embeddings: "
        f"{busy / mib:.0f} MiB (goal < 700 MB = {700e6 / mib:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
