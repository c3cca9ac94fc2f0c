"""Start-up: the server answers /health at once and /ready says ``loading`` while the
models load behind it (together, not one after the other); a model that fails to load
is reported by /ready."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from offramp.app import create_app
from offramp.errors import ProviderError
from offramp.local.pool import ModelPool
from offramp.models.registry import ModelSpec, load_registry
from offramp.providers.base import Provider
from offramp.providers.registry import ProviderRegistry
from offramp.settings import Settings
from tests.fakes import FakeProvider
from tests.servers import AsgiThread


def _pool(
    settings: Settings, gate: threading.Event, loading: list[str], fail: str = ""
) -> ModelPool:
    """The default models' specs over factories that wait for ``gate`` (recording who is
    loading meanwhile) and return fakes; the backend named ``fail`` raises instead."""

    def factory(backend: str) -> Callable[[ModelSpec, Path, Settings], Provider]:
        def make(spec: ModelSpec, path: Path, _: Settings) -> Provider:
            loading.append(spec.name)
            assert gate.wait(timeout=60)
            if backend == fail:
                raise ProviderError(f"cannot load {spec.name}: broken file")
            return FakeProvider()

        return make

    registry = ProviderRegistry()
    for backend in ("llamacpp", "sentence-transformers"):
        registry.register(backend, factory(backend))
    return ModelPool(settings, load_registry(None), registry)


def _ready(base: str, status: str, deadline: float = 30) -> httpx.Response:
    end = time.monotonic() + deadline
    while True:
        r = httpx.get(base + "/ready")
        if r.json()["status"] == status or time.monotonic() > end:
            return r
        time.sleep(0.02)


def test_health_answers_while_both_models_load_together(settings: Settings) -> None:
    gate, loading = threading.Event(), list[str]()
    pool = _pool(settings.model_copy(update={"preload": True}), gate, loading)
    app = create_app(settings.model_copy(update={"preload": True}), pool=pool)
    with AsgiThread(app) as server:
        assert httpx.get(server.base_url + "/health").status_code == 200
        r = _ready(server.base_url, "loading")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        deadline = time.monotonic() + 30
        while len(loading) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # both loads started before either finished: they run side by side
        assert sorted(loading) == ["all-minilm-l6-v2", "smollm2-135m-instruct"]
        gate.set()
        r = _ready(server.base_url, "ready")
        assert r.status_code == 200
        assert r.json()["models"] == {"smollm2-135m-instruct": True, "all-minilm-l6-v2": True}


def test_a_model_that_fails_to_load_is_reported_by_ready(settings: Settings) -> None:
    gate, loading = threading.Event(), list[str]()
    gate.set()
    own = settings.model_copy(update={"preload": True})
    pool = _pool(own, gate, loading, fail="sentence-transformers")
    with AsgiThread(create_app(own, pool=pool)) as server:
        r = _ready(server.base_url, "failed")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "failed" and "broken file" in body["error"]
        assert httpx.get(server.base_url + "/health").status_code == 200
