"""What the console costs a server nobody has it open on: resident memory and the latency of
requests, one server with the console mounted (``admin_key`` set, so it is live) against
one built without it (its package never imported), in one run.

Both are real uvicorn processes over the default config (both bundled models loaded),
started side by side and driven in alternating turns of 10 requests (so the machine's
noise hits both alike) over keep-alive connections: ``GET /health`` (routing and middleware
only) and a one-text ``POST /v1/embeddings`` (a model call). RSS is read from /proc after
start-up and again after the load; since two processes differ by a few MiB anyway, what
importing the console and building its router adds is also measured inside one process.

    python -m bench.console [--requests 200] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from bench.server import free_port

# Built in a fresh interpreter; "without" replaces the console's router module before the
# app is imported, so neither its code nor its routes are in that process.
_SERVE = """
import sys, types
port, ledger, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "without":
    from fastapi import APIRouter
    stub = types.ModuleType("offramp.console.router")
    stub.console_router = APIRouter
    sys.modules["offramp.console.router"] = stub
import uvicorn
from offramp.app import create_app
from offramp.settings import load_settings
settings = load_settings(port=port, ledger_path=ledger, admin_key="bench-admin-key")
app = create_app(settings)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


# In one fresh interpreter: RSS with the app's code loaded but not the console's, then
# after importing the console and building its router (what mounting it adds).
_IMPORT_COST = """
import gc, importlib, sys, types
import psutil
from fastapi import APIRouter
stub = types.ModuleType("offramp.console.router")
stub.console_router = APIRouter
sys.modules["offramp.console.router"] = stub
import offramp.app
gc.collect()
before = psutil.Process().memory_info().rss
del sys.modules["offramp.console.router"]
importlib.import_module("offramp.console.router").console_router()
gc.collect()
print(psutil.Process().memory_info().rss - before)
"""


def _import_cost() -> int:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_COST], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


@contextmanager
def _server(mode: str, folder: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port), str(folder / f"{mode}.db"), mode],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server {mode} the console exited during start-up")
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server {mode} the console did not get ready")
            time.sleep(0.1)
        console = httpx.get(base + "/console", timeout=10).status_code
        assert console == (200 if mode == "with" else 404), f"{mode}: /console answers {console}"
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _timed(client: httpx.Client, n: int, method: str, path: str, body: object) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.request(method, path, json=body)
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="per endpoint, rep and server")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    calls = {
        "GET /health": ("GET", "/health", None),
        "POST /v1/embeddings": (
            "POST",
            "/v1/embeddings",
            {"model": "text-embedding-3-small", "input": "hello world"},
        ),
    }
    modes = ("without", "with")
    with (
        tempfile.TemporaryDirectory() as tmp,
        _server("without", Path(tmp)) as a,
        _server("with", Path(tmp)) as b,
    ):
        servers = dict(zip(modes, (a, b), strict=True))
        time.sleep(2)  # let both settle after loading
        idle = {m: servers[m][1].memory_info().rss for m in modes}
        latencies: dict[tuple[str, str], list[float]] = {(m, c): [] for m in modes for c in calls}
        clients = {m: httpx.Client(base_url=servers[m][0], timeout=60) for m in modes}
        for client in clients.values():  # warm both up
            for method, path, body in calls.values():
                _timed(client, 5, method, path, body)
        chunk = 10  # turns of 10 requests each, so both servers see the same noise
        for rep in range(args.reps):
            for call, (method, path, body) in calls.items():
                for turn in range(args.requests // chunk):
                    order = modes if (rep + turn) % 2 == 0 else modes[::-1]
                    for m in order:
                        latencies[(m, call)] += _timed(clients[m], chunk, method, path, body)
        loaded = {m: servers[m][1].memory_info().rss for m in modes}
        for client in clients.values():
            client.close()
    mib = 2**20
    print(
        f"The console's code and routes, imported in one process: {_import_cost() / mib:+.2f} MiB"
    )
    print()
    print("| | without the console | with the console (unused) | with / without |")
    print("|---|---|---|---|")
    print(
        f"| RSS after start-up | {idle['without'] / mib:.1f} MiB | {idle['with'] / mib:.1f} MiB "
        f"| {(idle['with'] - idle['without']) / mib:+.1f} MiB |"
    )
    print(
        f"| RSS after the load | {loaded['without'] / mib:.1f} MiB | "
        f"{loaded['with'] / mib:.1f} MiB | {(loaded['with'] - loaded['without']) / mib:+.1f} MiB |"
    )
    for call in calls:
        without = statistics.median(latencies[("without", call)])
        with_ = statistics.median(latencies[("with", call)])
        print(
            f"| {call}, median of {len(latencies[('with', call)])} | {without:.2f} ms "
            f"| {with_:.2f} ms | {with_ / without:.2f}x |"
        )


if __name__ == "__main__":
    main()
