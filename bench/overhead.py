"""What a proxy adds: a fixed-response upstream reached directly, through offramp and through
the LiteLLM proxy, in one run, at several concurrencies, for chat and embeddings.

The upstream is Debian's nginx returning canned OpenAI JSON on loopback, so everything
measured beyond the direct numbers is the proxy's own cost. Load comes from wrk (one
thread, keep-alive connections, ``--latency``). LiteLLM is installed into its own
virtualenv under ``.bench-venvs/`` on first use (``pip install 'litellm[proxy]'``); both
proxies run as one process with one worker, offramp with its response cache off.

    python -m bench.overhead [--seconds 10] [--concurrency 1 10 50]

nginx and wrk are installed with apt-get when missing (as root), else the bench says
which packages to install (see bench/tools.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from bench.server import free_port, offramp_server
from bench.tools import debian_tool, python_tool

KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM refuses to start without one

CHAT_BODY: dict[str, object] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 16,
}
EMBED_BODY: dict[str, object] = {"model": "text-embedding-3-small", "input": "hello world"}
CHAT_REPLY = {
    "id": "chatcmpl-fixed",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
}
EMBED_REPLY = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.01 * i for i in range(384)]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}
ENDPOINTS: dict[str, tuple[str, dict[str, object]]] = {
    "chat": ("/v1/chat/completions", CHAT_BODY),
    "embeddings": ("/v1/embeddings", EMBED_BODY),
}


@dataclass
class Load:
    p50_ms: float
    p99_ms: float
    rps: float


# ----- the fixed upstream ---------------------------------------------------------------


def _nginx_conf(port: int, tmp: Path) -> str:
    def canned(reply: object) -> str:
        return json.dumps(reply, separators=(",", ":")).replace("'", "\\'")

    return f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp};
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = /v1/chat/completions {{
      default_type application/json; return 200 '{canned(CHAT_REPLY)}';
    }}
    location = /v1/embeddings {{
      default_type application/json; return 200 '{canned(EMBED_REPLY)}';
    }}
    location = /v1/models {{
      default_type application/json;
      return 200 '{{"object":"list","data":[{{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"nginx"}}]}}';
    }}
  }}
}}
"""


@contextmanager
def nginx_upstream() -> Iterator[str]:
    nginx = debian_tool("nginx", "nginx-light")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(_nginx_conf(port, Path(tmp)))
        proc = subprocess.Popen([nginx, "-p", tmp, "-c", str(conf)])
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base + "/v1/models", proc)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# ----- the proxies ----------------------------------------------------------------------


def offramp_config(upstream: str, path: Path) -> None:
    """Routes for the two public names, each with one OpenAI-compatible deployment."""
    data = {
        "settings": {"preload": True},
        "models": [],
        "routes": [
            {
                "name": "gpt-4o-mini",
                "deployments": [
                    {"provider": "openai-compatible", "model": "gpt-4o-mini",
                     "base_url": upstream + "/v1"}
                ],
            },
            {
                "name": "text-embedding-3-small",
                "kind": "embedding",
                "deployments": [
                    {"provider": "openai-compatible", "model": "text-embedding-3-small",
                     "base_url": upstream + "/v1"}
                ],
            },
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(data))


@contextmanager
def litellm_proxy(upstream: str) -> Iterator[str]:
    litellm = python_tool("litellm", "litellm[proxy]", "litellm")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "litellm.yaml"
        params = {"api_base": upstream + "/v1", "api_key": "bench"}
        config.write_text(
            yaml.safe_dump(
                {
                    "model_list": [
                        {
                            "model_name": name,
                            "litellm_params": {"model": f"openai/{name}", **params},
                        }
                        for name in ("gpt-4o-mini", "text-embedding-3-small")
                    ],
                    "litellm_settings": {"telemetry": False, "drop_params": True},
                    "general_settings": {"master_key": KEY},
                }
            )
        )
        port = free_port()
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        proc = subprocess.Popen(
            [str(litellm), "--config", str(config), "--port", str(port), "--num_workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base + "/health/liveliness", proc, timeout=180)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited during start-up")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


# ----- load -----------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, body: dict[str, object], connections: int, seconds: int) -> Load:
    """One wrk run of POSTs with ``body``; p50/p99 latency and requests/s."""
    tool = debian_tool("wrk", "wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    try:
        out = subprocess.run(
            [
                tool,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"{url} answered errors under load:\n{out}")

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        return float(match.group(1)) * _UNITS[match.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return Load(latency("50"), latency("99"), float(rps.group(1)))


def _check(base: str) -> None:
    """Each side must really answer (a proxy error page would be fast and wrong)."""
    for path, body in ENDPOINTS.values():
        r = httpx.post(base + path, json=body, headers={"Authorization": f"Bearer {KEY}"})
        r.raise_for_status()
        assert r.json().get("object") in {"chat.completion", "list"}, r.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    debian_tool("wrk", "wrk")  # before anything starts: a missing tool is one line
    python_tool("litellm", "litellm[proxy]", "litellm")
    results: dict[tuple[str, str, int], Load] = {}
    with nginx_upstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "offramp.yaml"
        offramp_config(upstream, config)
        with offramp_server("--config", str(config)) as served, litellm_proxy(upstream) as lite:
            sides = {"direct": upstream, "offramp": served.base_url, "litellm": lite}
            for base in sides.values():
                _check(base)
            for kind, (path, body) in ENDPOINTS.items():
                for n in args.concurrency:
                    for side, base in sides.items():  # interleaved per concurrency level
                        results[(kind, side, n)] = wrk(base + path, body, n, args.seconds)
    _report(results, args.concurrency, args.seconds)


def _report(results: dict[tuple[str, str, int], Load], levels: list[int], seconds: int) -> None:
    print(f"wrk -t1, {seconds} s per cell; added = proxy minus direct at the same concurrency")
    print("| endpoint | conns | side | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ENDPOINTS:
        for n in levels:
            direct = results[(kind, "direct", n)]
            for side in ("direct", "offramp", "litellm"):
                r = results[(kind, side, n)]
                print(
                    f"| {kind} | {n} | {side} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                    f"{r.p50_ms - direct.p50_ms:.2f} | {r.p99_ms - direct.p99_ms:.2f} | {r.rps:.0f} |"
                )
    print("\n| endpoint | conns | offramp/litellm added p50 | offramp/litellm req/s |")
    print("|---|---|---|---|")
    for kind in ENDPOINTS:
        for n in levels:
            d, o, lt = (results[(kind, s, n)] for s in ("direct", "offramp", "litellm"))
            ratio = (o.p50_ms - d.p50_ms) / max(lt.p50_ms - d.p50_ms, 1e-9)
            print(
                f"| {kind} | {n} | {ratio:.2f} (goal <= 0.25) | {o.rps / lt.rps:.2f}x (goal >= 3) |"
            )


if __name__ == "__main__":
    main()
