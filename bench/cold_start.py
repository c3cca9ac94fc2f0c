"""Cold start: from launching ``offramp serve`` to /health, to /ready, to the first token.

Each repetition launches a new process on the default config (both models) and polls
every 20 ms: /health answers once the server listens, /ready once both models are
loaded, then one streamed chat measures the first token. The goals (3 s to /ready, 3.5 s
to the first token) are for an idle 2-core machine; the 1-minute load average is printed
beside the figures, since on a busy machine every figure stretches with it.

    python -m bench.cold_start [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import httpx
import openai

from bench.server import free_port


def _until(url: str, proc: subprocess.Popen[bytes], ok: set[int], started: float) -> float:
    while True:
        if proc.poll() is not None:
            raise SystemExit("offramp serve exited during start-up")
        try:
            if httpx.get(url, timeout=1).status_code in ok:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)


def launch() -> tuple[float, float, float]:
    """(launch -> /health, -> /ready, -> first streamed token) in seconds."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OFFRAMP_CACHE": "false"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offramp", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = _until(base + "/health", proc, {200}, started)
        ready = _until(base + "/ready", proc, {200}, started)
        client = openai.OpenAI(base_url=base + "/v1", api_key="bench", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello!"}],
            max_tokens=8,
            stream=True,
        )
        first = 0.0
        for chunk in stream:
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - started
        return health, ready, first
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    runs = [launch() for _ in range(args.reps)]
    load = os.getloadavg()[0]
    for i, label in enumerate(("/health", "/ready (both models loaded)", "first streamed token")):
        values = [r[i] for r in runs]
        print(
            f"launch -> {label:<28} {statistics.median(values):5.2f}s median of {args.reps} "
            f"({min(values):.2f}-{max(values):.2f})"
        )
    print(f"goals: /ready <= 3 s, first token <= 3.5 s; 1-minute load average {load:.2f}")


if __name__ == "__main__":
    main()
