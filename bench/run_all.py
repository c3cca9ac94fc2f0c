"""Run every benchmark in turn (``make bench``); each prints its own lines."""

from __future__ import annotations

import subprocess
import sys

SUITES = [
    "chat_throughput",
    "embeddings_throughput",
    "batching",
    "embed_batching",
    "overhead",
    "cold_start",
    "memory",
    "soak",
    "cache",
    "console",
]


def main() -> None:
    for suite in SUITES:
        print(f"## python -m bench.{suite}", flush=True)
        subprocess.run([sys.executable, "-m", f"bench.{suite}"], check=True)


if __name__ == "__main__":
    main()
