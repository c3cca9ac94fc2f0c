"""Run every benchmark in turn (``make bench``); each prints its own lines."""

from __future__ import annotations

import subprocess
import sys

SUITES = [
    "chat_throughput",
    "embeddings_throughput",
    "batching",
    "structured",
    "embed_batching",
    "overhead",
    "cold_start",
    "memory",
    "soak",
    "cache",
    "console",
    "experiments",
]


def main() -> None:
    failed = []
    for suite in SUITES:
        print(f"## python -m bench.{suite}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{suite}"]).returncode != 0:
            failed.append(suite)
    if failed:
        raise SystemExit(f"benches that did not finish: {', '.join(failed)}")


if __name__ == "__main__":
    main()
