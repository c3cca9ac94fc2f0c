"""What a proxy adds: a fixed-response upstream reached directly, through offramp and through
the LiteLLM proxy, in one run, at several concurrencies, for chat and embeddings.

The upstream is Debian's nginx returning canned OpenAI JSON on loopback, so everything
measured beyond the direct numbers is the proxy's own cost. Load comes from wrk (one
thread, keep-alive connections, ``--latency``). LiteLLM is installed into its own
virtualenv under ``.bench-venvs/`` on first use (``pip install 'litellm[proxy]'``); both
proxies run as one process with one worker, offramp with its response cache off.
Three endpoints: whole chat, streamed chat (the upstream sends a canned SSE stream of
five chunks and a usage chunk) and embeddings.

    python -m bench.overhead [--seconds 10] [--concurrency 1 10 50] [--workers N]
        [--baseline TREE] [--no-litellm] [--repeat N]

``--workers N`` serves offramp with N worker processes (LiteLLM with as many);
``--baseline TREE`` adds offramp served from another source tree (a checkout of an
earlier commit, one process) as the side ``base``, interleaved with the others, so a
change is compared with what it replaced under the same load; ``--no-litellm`` leaves
LiteLLM out.

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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import yaml

from bench.server import free_port, offramp_server
from bench.tools import debian_tool, python_tool

KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM refuses to start without one

CHAT_BODY: dict[str, object] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 16,
}
STREAM_BODY: dict[str, object] = {
    "model": "gpt-4o-mini-stream",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 16,
    "stream": True,
    "stream_options": {"include_usage": True},
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
STREAM_PREFIX = "/stream"  # where nginx answers chat with the canned stream


def _stream_reply() -> str:
    """The upstream's SSE stream: a role chunk, four content chunks, the finish, usage."""
    base = {"id": "chatcmpl-fixed", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o-mini"}  # fmt: skip
    deltas: list[dict[str, object]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": word} for word in ("Hello!", " How", " can I", " help?")]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({**base, "choices": [], "usage": CHAT_REPLY["usage"]})
    frames = [f"data: {json.dumps(c, separators=(',', ':'))}\n\n" for c in chunks]
    return "".join(frames) + "data: [DONE]\n\n"


# endpoint: (path, body, upstream prefix for the direct side)
ENDPOINTS: dict[str, tuple[str, dict[str, object], str]] = {
    "chat": ("/v1/chat/completions", CHAT_BODY, ""),
    "chat-stream": ("/v1/chat/completions", STREAM_BODY, STREAM_PREFIX),
    "embeddings": ("/v1/embeddings", EMBED_BODY, ""),
}
ROUTES = {  # public name: (kind, upstream prefix)
    "gpt-4o-mini": ("chat", ""),
    "gpt-4o-mini-stream": ("chat", STREAM_PREFIX),
    "text-embedding-3-small": ("embedding", ""),
}


@dataclass
class Load:
    p50_ms: float
    p99_ms: float
    rps: float
    cpu_us: float | None = None  # the proxy's CPU time per request (all its processes)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and every process under it."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


# ----- the fixed upstream ---------------------------------------------------------------


def _nginx_conf(port: int, tmp: Path) -> str:
    def canned(reply: object) -> str:
        return json.dumps(reply, separators=(",", ":")).replace("'", "\\'")

    stream = _stream_reply().replace("'", "\\'")

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
    location = {STREAM_PREFIX}/v1/chat/completions {{
      default_type text/event-stream; return 200 '{stream}';
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
    """A route for each public name, each with one OpenAI-compatible deployment."""
    routes = [
        {
            "name": name,
            "kind": kind,
            "deployments": [
                {"provider": "openai-compatible", "model": name,
                 "base_url": upstream + prefix + "/v1"}
            ],
        }
        for name, (kind, prefix) in ROUTES.items()
    ]  # fmt: skip
    data = {"settings": {"preload": True}, "models": [], "routes": routes}
    path.write_text(yaml.safe_dump(data))


@contextmanager
def litellm_proxy(upstream: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    litellm = python_tool("litellm", "litellm[proxy]", "litellm")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "litellm.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "model_list": [
                        {
                            "model_name": name,
                            "litellm_params": {
                                "model": f"openai/{name}",
                                "api_base": upstream + prefix + "/v1",
                                "api_key": "bench",
                            },
                        }
                        for name, (_, prefix) in ROUTES.items()
                    ],
                    "litellm_settings": {"telemetry": False, "drop_params": True},
                    "general_settings": {"master_key": KEY},
                }
            )
        )
        port = free_port()
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        proc = subprocess.Popen(
            [
                str(litellm),
                "--config",
                str(config),
                "--port",
                str(port),
                "--num_workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base + "/health/liveliness", proc, timeout=180)
            yield base, proc.pid
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
                "--timeout",
                "30s",  # wrk's default 2 s drops slow answers from the latencies
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


def _check(base: str, direct: bool) -> None:
    """Each side must really answer (a proxy error page would be fast and wrong)."""
    for path, body, prefix in ENDPOINTS.values():
        url = base + (prefix if direct else "") + path
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"})
        r.raise_for_status()
        if body.get("stream"):
            assert r.text.rstrip().endswith("data: [DONE]") and "Hello!" in r.text, r.text
        else:
            assert r.json().get("object") in {"chat.completion", "list"}, r.text


SIDES = ("direct", "offramp", "base", "litellm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--workers", type=int, default=1, help="offramp's worker processes")
    parser.add_argument("--baseline", type=Path, help="another offramp source tree, one process")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every cell; the best of each is kept"
    )
    args = parser.parse_args()
    debian_tool("wrk", "wrk")  # before anything starts: a missing tool is one line
    if not args.no_litellm:
        python_tool("litellm", "litellm[proxy]", "litellm")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores")
    results: dict[tuple[str, str, int], Load] = {}
    with nginx_upstream() as upstream, tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        config = Path(tmp) / "offramp.yaml"
        offramp_config(upstream, config)
        serve = ["--config", str(config)]
        workers = ["--workers", str(args.workers)] if args.workers > 1 else []
        # no Redis here: with auth off there are no limits to share, so per-worker is exact
        env = {"OFFRAMP_PER_WORKER_STATE": "true"} if workers else {}
        served = stack.enter_context(offramp_server(*serve, *workers, env=env))
        sides: dict[str, tuple[str, int | None]] = {
            "direct": (upstream, None),
            "offramp": (served.base_url, served.proc.pid),
        }
        if args.baseline is not None:
            tree = {"PYTHONPATH": str(args.baseline.resolve() / "src")}
            base = stack.enter_context(offramp_server(*serve, env=tree))
            sides["base"] = (base.base_url, base.proc.pid)
        if not args.no_litellm:
            sides["litellm"] = stack.enter_context(litellm_proxy(upstream, args.workers))
        for side, (base_url, _) in sides.items():
            _check(base_url, side == "direct")
        for _ in range(args.repeat):
            for kind, (path, body, prefix) in ENDPOINTS.items():
                for n in args.concurrency:
                    for side, (base_url, pid) in sides.items():  # interleaved per level
                        url = base_url + (prefix if side == "direct" else "") + path
                        load = _measured(url, body, n, args.seconds, pid)
                        kept = results.get((kind, side, n))
                        results[(kind, side, n)] = load if kept is None else _best(kept, load)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores")
    if args.repeat > 1:
        print(f"best of {args.repeat} interleaved rounds per cell")
    _report(results, args.concurrency, args.seconds, [s for s in SIDES if s in sides])


def _measured(url: str, body: dict[str, object], n: int, seconds: int, pid: int | None) -> Load:
    """One wrk cell, with the CPU time the proxy's processes spent per request."""
    before = cpu_seconds(pid) if pid is not None else 0.0
    load = wrk(url, body, n, seconds)
    if pid is not None:
        load.cpu_us = (cpu_seconds(pid) - before) / max(load.rps * seconds, 1) * 1e6
    return load


def _best(a: Load, b: Load) -> Load:
    """The better of two rounds of a cell, each figure on its own (other load on the
    machine only ever makes a figure worse)."""
    cpu = [c for c in (a.cpu_us, b.cpu_us) if c is not None]
    return Load(
        min(a.p50_ms, b.p50_ms), min(a.p99_ms, b.p99_ms), max(a.rps, b.rps), min(cpu, default=None)
    )


def _report(
    results: dict[tuple[str, str, int], Load], levels: list[int], seconds: int, sides: list[str]
) -> None:
    print(f"wrk -t1, {seconds} s per cell; added = proxy minus direct at the same concurrency;")
    print("CPU = the proxy's CPU time per request, all its processes (robust to other load)")
    print(
        "| endpoint | conns | side | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s "
        "| CPU µs/req |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in ENDPOINTS:
        for n in levels:
            direct = results[(kind, "direct", n)]
            for side in sides:
                r = results[(kind, side, n)]
                print(
                    f"| {kind} | {n} | {side} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                    f"{r.p50_ms - direct.p50_ms:.2f} | {r.p99_ms - direct.p99_ms:.2f} | {r.rps:.0f} "
                    f"| {'-' if r.cpu_us is None else f'{r.cpu_us:.0f}'} |"
                )
    if "base" in sides:
        print("\n| endpoint | conns | offramp/base req/s | base/offramp CPU per request |")
        print("|---|---|---|---|")
        for kind in ENDPOINTS:
            for n in levels:
                o, b = results[(kind, "offramp", n)], results[(kind, "base", n)]
                cpu = (b.cpu_us or 0) / max(o.cpu_us or 0, 1e-9)
                print(f"| {kind} | {n} | {o.rps / b.rps:.2f}x | {cpu:.2f}x |")
    if "litellm" not in sides:
        return
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
