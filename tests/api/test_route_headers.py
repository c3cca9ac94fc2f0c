"""Every answer names its deployment, attempts, cost, OpenAI-equivalent cost and
offramp's overhead; /admin/routes shows each deployment's health."""

from __future__ import annotations

import httpx
import openai

from tests.servers import ServerThread

LOCAL = "local/smollm2-135m-instruct"
HELLO = [{"role": "user", "content": "Hi"}]


def test_a_local_answer_costs_nothing_and_names_its_deployment(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HELLO, max_tokens=3, temperature=0
    )
    usage = raw.parse().usage
    h = raw.headers
    assert h["x-offramp-deployment"] == LOCAL and h["x-offramp-attempts"] == "1"
    assert h["x-offramp-cost-usd"] == "0.00000000"
    # gpt-4o's list price: $2.50 in, $10 out per million tokens.
    expected = (usage.prompt_tokens * 2.5 + usage.completion_tokens * 10) / 1e6
    assert abs(float(h["x-offramp-openai-equivalent-usd"]) - expected) < 1e-8
    assert 0 <= float(h["x-offramp-overhead-ms"]) < 1000


def test_a_stream_carries_headers_and_its_cost_before_done(server: ServerThread) -> None:
    body = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body) as r:
        assert r.headers["x-offramp-deployment"] == LOCAL
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert lines[-2].startswith(": x-offramp-cost-usd=0.00000000 x-offramp-openai-equivalent-usd=")
    assert float(lines[-2].rsplit("=", 1)[1]) > 0


def test_embeddings_carry_the_headers(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["one two three"]
    )
    tokens = raw.parse().usage.prompt_tokens
    assert raw.headers["x-offramp-deployment"] == "local/all-minilm-l6-v2"
    assert abs(float(raw.headers["x-offramp-openai-equivalent-usd"]) - tokens * 0.02 / 1e6) < 1e-9


def test_admin_routes_show_each_deployment(client: openai.OpenAI, server: ServerThread) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, max_tokens=2)
    routes = httpx.get(server.base_url + "/admin/routes").json()["data"]
    [chat] = [r for r in routes if r["name"] == "smollm2-135m-instruct"]
    assert chat["implicit"] and "gpt-4o-mini" in chat["aliases"]
    [deployment] = chat["deployments"]
    assert deployment["id"] == LOCAL and deployment["breaker"]["state"] == "closed"
    assert deployment["requests"] >= 1 and deployment["latency_ms"]["ewma"] > 0
    assert deployment["error_rate"] == 0.0
