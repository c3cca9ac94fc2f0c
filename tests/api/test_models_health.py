"""Model listing, health and readiness."""

from __future__ import annotations

import httpx
import openai

from tests.servers import ServerThread


def test_models_lists_models_and_openai_aliases(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2"} <= ids
    assert {
        "gpt-4o-mini",
        "gpt-3.5-turbo",
        "gpt-4o",
        "text-embedding-3-small",
        "text-embedding-ada-002",
    } <= ids
    model = client.models.retrieve("gpt-4o-mini")
    assert model.id == "gpt-4o-mini" and model.owned_by == "offramp"


def test_health_and_ready(server: ServerThread) -> None:
    assert httpx.get(server.base_url + "/health").json() == {"status": "ok"}
    ready = httpx.get(server.base_url + "/ready")
    assert ready.status_code == 200
    assert ready.json()["models"] == {"smollm2-135m-instruct": True, "all-minilm-l6-v2": True}
