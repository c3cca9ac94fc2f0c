"""Start ``offramp serve`` as a real process for a benchmark, and stop it.

The response cache is off unless a bench asks for it: a throughput figure must come from
generating every answer, not from replaying the first one (greedy benchmark requests
repeat). Each server says which it runs with on stdout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass
class Served:
    base_url: str
    proc: subprocess.Popen[bytes]
    started_at: float
    ready_at: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def offramp_server(
    *args: str, cache: bool = False, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """A fresh ``offramp serve`` on a free port, ready (models loaded) when yielded; the
    response cache is on only with ``cache`` (the environment overrides any config file).
    ``env`` adds to the environment (e.g. another ``PYTHONPATH`` to serve another tree)."""
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
        "OFFRAMP_CACHE": "true" if cache else "false",
    }
    state = "on (repeated requests may be answered from it)" if cache else "off"
    print(f"offramp serve: response cache {state}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offramp", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("offramp serve exited during start-up")
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        yield Served(base, proc, started, time.perf_counter())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
