"""Cold start: from launching ``offramp serve`` to /ready, and to the first streamed token.

python -m bench.cold_start [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import openai

from bench.server import offramp_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    ready, first = [], []
    for _ in range(args.reps):
        with offramp_server() as served:
            ready.append(served.ready_at - served.started_at)
            client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="bench")
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Hello!"}],
                max_tokens=8,
                stream=True,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    first.append(time.perf_counter() - served.started_at)
                    break
            for _ in stream:
                pass
    print(
        f"launch -> ready (both models loaded): {statistics.median(ready):.2f}s "
        f"median of {args.reps}"
    )
    print(f"launch -> first streamed token:       {statistics.median(first):.2f}s")


if __name__ == "__main__":
    main()
