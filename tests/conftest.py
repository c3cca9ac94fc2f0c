"""Shared fixtures: the bundled models are loaded once per session and shared by every
app the tests build; apps are served by real uvicorn servers on loopback and driven with
the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import openai
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from offramp.app import build_pool
from offramp.local.pool import ModelPool
from offramp.providers.openmp import release_team
from offramp.settings import Settings, load_settings
from tests.servers import ServerThread


@pytest.fixture(autouse=True)
def _no_torch_team_left() -> Iterator[None]:
    """Tests that run torch on pytest's own thread (reference encoders, tuning) would
    leave its OpenMP team there, and every later llama.cpp decode step in the session
    would sleep in the kernel (see offramp.providers.openmp): end it after each test."""
    yield
    release_team()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    models_dir: Path = tmp_path_factory.mktemp("models")
    ledger = tmp_path_factory.mktemp("ledger") / "ledger.db"
    # The engine suites measure generation itself; the cache has its own tests.
    # OFFRAMP_TEST_THREADS=1 on a machine whose cores are busy with other work: llama.cpp's
    # threads wait for each other by spinning, which collapses when a core is taken away.
    threads = int(os.environ.get("OFFRAMP_TEST_THREADS", "2"))
    return load_settings(models_dir=models_dir, n_threads=threads, ledger_path=ledger, cache=False)


@pytest.fixture(scope="session")
def pool(settings: Settings) -> Iterator[ModelPool]:
    the_pool = build_pool(settings)
    asyncio.run(the_pool.preload())
    yield the_pool
    asyncio.run(the_pool.aclose())


@pytest.fixture(scope="session")
def server(settings: Settings, pool: ModelPool) -> Iterator[ServerThread]:
    with ServerThread(settings, pool) as running:
        yield running


@pytest.fixture(scope="session")
def client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120
    )


@pytest.fixture
def async_client(server: ServerThread) -> openai.AsyncOpenAI:
    """Per test: its connections belong to the event loop of the test that uses it."""
    return openai.AsyncOpenAI(
        base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120
    )


@pytest.fixture(scope="session")
def per_slot_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, ModelPool]]:
    """The default config with ``kv_unified: false``: every slot its own KV buffer, so an
    answer is bit-for-bit what it would be alone or at another time (the shared default
    pool may differ in the last bits with its cell layout)."""
    shipped = yaml.safe_load((resources.files("offramp") / "data/offramp.yaml").read_text())
    shipped["models"][0]["options"]["kv_unified"] = False
    config = tmp_path_factory.mktemp("per-slot") / "offramp.yaml"
    config.write_text(yaml.safe_dump(shipped))
    own = settings.model_copy(update={"config": config, "preload": False})
    the_pool = build_pool(own)
    with ServerThread(own, the_pool) as running:
        yield running, the_pool
    asyncio.run(the_pool.aclose())
