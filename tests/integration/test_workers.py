"""``offramp serve --workers 2``: two processes answer on one port, a key's RPM limit
holds across them (shared through Redis), SIGTERM stops them all, and without Redis the
server refuses to start unless per-worker state is asked for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.backing import RedisServer
from tests.servers import AsgiThread, ProcessServer

pytestmark = pytest.mark.slow

RPM = 4
REPLY = {
    "id": "chatcmpl-scripted",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "scripted",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from upstream."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
}


class Upstream:
    """A scripted OpenAI-compatible upstream that counts the chat requests it answered."""

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, _: Request) -> JSONResponse:
        self.calls += 1
        return JSONResponse(REPLY)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Upstream]]:
    upstream = Upstream()
    with RedisServer(tmp_path) as redis, AsgiThread(upstream.app()) as served:
        config = tmp_path / "offramp.yaml"
        route = {
            "name": "gpt-4o-mini",
            "deployments": [
                {
                    "provider": "openai-compatible",
                    "model": "scripted",
                    "base_url": served.base_url + "/v1",
                }
            ],
        }
        config.write_text(yaml.safe_dump({"models": [], "routes": [route]}))
        yield (
            {
                **os.environ,
                "HF_HUB_OFFLINE": "1",
                "OFFRAMP_CONFIG": str(config),
                "OFFRAMP_MODELS_DIR": str(tmp_path / "models"),
                "OFFRAMP_LEDGER_PATH": str(tmp_path / "ledger.db"),
                "OFFRAMP_REDIS_URL": redis.url,
                "OFFRAMP_AUTH": "true",
            },
            upstream,
        )


def _serve(env: dict[str, str], *args: str) -> ProcessServer:
    return ProcessServer(
        lambda port: [sys.executable, "-m", "offramp", "serve", "--port", str(port), *args],
        "/ready",
    ).start(env)


def _chat(base: str, secret: str) -> tuple[int, str]:
    """One chat request on a new connection: its status and the worker that answered."""
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
    if r.status_code == 429:
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
    return r.status_code, r.headers["x-offramp-worker"]


def test_two_workers_answer_on_one_port_and_share_one_rpm_limit(
    env: tuple[dict[str, str], Upstream],
) -> None:
    environ, upstream = env
    created = subprocess.run(
        [sys.executable, "-m", "offramp", "keys", "create", "limited", "--rpm", str(RPM),
         "--json"],
        env=environ, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    secret = json.loads(created.stdout)["secret"]
    server = _serve(environ, "--workers", "2").wait()
    try:
        # both workers take connections: the kernel hands each new one to either
        seen = set()
        for _ in range(200):
            with httpx.Client(base_url=server.base_url) as client:
                seen.add(client.get("/health").headers["x-offramp-worker"])
            if seen == {"1", "2"}:
                break
        assert seen == {"1", "2"}
        if 60 - time.time() % 60 < 15:  # the counters are per calendar minute
            time.sleep(60 - time.time() % 60 + 0.1)
        served = [_chat(server.base_url, secret) for _ in range(RPM)]
        assert [status for status, _ in served] == [200] * RPM
        # past the limit every request is refused, whichever worker takes it
        refused_by: set[str] = set()
        for _ in range(60):
            status, worker = _chat(server.base_url, secret)
            assert status == 429
            refused_by.add(worker)
            if refused_by == {"1", "2"}:
                break
        assert refused_by == {"1", "2"}
        assert upstream.calls == RPM
    finally:
        server.signal(signal.SIGTERM)
        code = server.wait_exit(timeout=60)
    assert code == 0


def test_several_workers_without_redis_refuse_to_start_in_one_line(
    env: tuple[dict[str, str], Upstream],
) -> None:
    environ = {k: v for k, v in env[0].items() if k != "OFFRAMP_REDIS_URL"}
    refused = subprocess.run(
        [sys.executable, "-m", "offramp", "serve", "--workers", "2", "--port", "0"],
        env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "redis_url" in refused.stderr and "per_worker_state" in refused.stderr
    # asked for, per-worker state starts (and each worker has its own counters)
    server = _serve({**environ, "OFFRAMP_PER_WORKER_STATE": "true"}, "--workers", "2").wait()
    try:
        assert httpx.get(server.base_url + "/ready").headers["x-offramp-worker"] in {"1", "2"}
    finally:
        server.stop()
