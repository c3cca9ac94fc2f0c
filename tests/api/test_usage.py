"""The response cache, the usage ledger, API keys and /metrics through the official SDK
against real servers on the bundled models (SQLite and real PostgreSQL ledgers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from offramp.local.pool import ModelPool
from offramp.settings import Settings
from tests.backing import ledger_rows as _rows
from tests.backing import postgres_schema
from tests.servers import ServerThread

CHAT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Name one colour."}],
    "temperature": 0,
    "max_tokens": 6,
}


@contextmanager
def _serve(settings: Settings, pool: ModelPool, **changes: Any) -> Iterator[ServerThread]:
    with ServerThread(settings.model_copy(update=changes), pool) as server:
        yield server


def _client(server: ServerThread, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_repeated_deterministic_requests_are_served_from_cache(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    mine = settings.model_copy(update={"ledger_path": tmp_path / "l.db", "cache": True})
    with ServerThread(mine, pool) as server:
        client = _client(server)
        first = client.chat.completions.create(**CHAT)
        again = client.chat.completions.create(**CHAT, user="someone-else", top_p=1)
        stream = client.chat.completions.create(
            **CHAT, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        bypass = client.chat.completions.create(**CHAT, extra_headers={"Cache-Control": "no-cache"})
        metrics = httpx.get(server.base_url + "/metrics").text
    text = first.choices[0].message.content
    assert text and again.choices[0].message.content == text
    assert (
        again.usage is not None and again.usage.completion_tokens == first.usage.completion_tokens
    )
    assert len(chunks) >= 3  # replayed as a stream: content, finish, usage
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == first.choices[
        0
    ].finish_reason
    assert (
        chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == first.usage.prompt_tokens
    )
    assert bypass.choices[0].message.content == text
    rows = _rows(mine)
    assert [(r.cache_hit, r.stream, r.status) for r in rows] == [
        (False, False, 200), (True, False, 200), (True, True, 200), (False, False, 200),
    ]  # fmt: skip
    assert rows[1].cached_tokens == rows[1].prompt_tokens > 0 and rows[1].cost_usd == 0
    assert rows[1].openai_cost_usd > 0  # gpt-4o-mini's list price for the same tokens
    assert rows[0].deployment != "cache" and rows[1].deployment == "cache"
    assert rows[0].route == rows[1].route == "smollm2-135m-instruct"
    assert rows[2].ttft_ms is not None
    assert 'offramp_cache_hits_total{kind="response"} 2.0' in metrics
    closed = (
        'offramp_breaker_state{deployment="local/smollm2-135m-instruct",'
        'route="smollm2-135m-instruct",state="closed"} 1.0'
    )
    assert closed in metrics.splitlines()


def test_a_streamed_answer_is_cached_and_replayed_whole(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with _serve(settings, pool, ledger_path=tmp_path / "l.db", cache=True) as server:
        client = _client(server)
        request = {**CHAT, "seed": 11, "temperature": 0.8}
        streamed = list(client.chat.completions.create(**request, stream=True))
        whole = client.chat.completions.create(**request)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert whole.choices[0].message.content == text
    assert [r.cache_hit for r in _rows(tmp_path_settings(settings, tmp_path))] == [False, True]


def tmp_path_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"ledger_path": tmp_path / "l.db"})


def test_embedding_cache_reuses_texts_across_batches(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with _serve(settings, pool, ledger_path=tmp_path / "l.db", cache=True) as server:
        client = _client(server)
        model = "text-embedding-3-small"
        first = client.embeddings.create(model=model, input=["red", "blue", "red"])
        second = client.embeddings.create(model=model, input=["blue", "green"])
        fresh = client.embeddings.create(
            model=model, input=["blue", "green"], extra_headers={"Cache-Control": "no-cache"}
        )
    assert first.data[0].embedding == first.data[2].embedding
    assert second.data[0].embedding == pytest.approx(first.data[1].embedding, abs=1e-6)
    assert second.data[1].embedding == pytest.approx(fresh.data[1].embedding, abs=1e-6)
    rows = _rows(tmp_path_settings(settings, tmp_path))
    assert [r.cached_tokens > 0 for r in rows] == [False, True, False]
    assert not any(r.cache_hit for r in rows)  # partly cached is not a hit


async def _load(server: ServerThread, n: int) -> tuple[set[str], int]:
    """``n`` concurrent requests of every kind, some bad; request ids of the 2xx ones."""
    client = openai.AsyncOpenAI(
        base_url=server.base_url + "/v1", api_key="x", max_retries=0, timeout=120
    )
    quick = {**CHAT, "temperature": 0.7, "max_tokens": 3}

    async def one(i: int) -> tuple[int, str | None]:
        try:
            if i % 4 == 0:
                raw = await client.embeddings.with_raw_response.create(
                    model="text-embedding-3-small", input=[f"t{i}"]
                )
            elif i % 4 == 1:
                raw = await client.chat.completions.with_raw_response.create(**quick, stream=True)
                async for _ in raw.parse():
                    pass
            elif i % 4 == 2:
                raw = await client.chat.completions.with_raw_response.create(**quick)
            else:
                raw = await client.chat.completions.with_raw_response.create(
                    **{**quick, "model": "no-such-model"}
                )
        except openai.APIStatusError as exc:
            return exc.status_code, None
        return raw.status_code, raw.headers["x-request-id"]

    outcomes = await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    ok = {rid for status, rid in outcomes if 200 <= status < 300 and rid}
    return ok, sum(1 for status, _ in outcomes if status == 404)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_ledger_has_one_row_per_2xx_after_load_and_clean_stop(
    settings: Settings, pool: ModelPool, tmp_path: Path, database: str
) -> None:
    with postgres_schema() as url:
        changes: dict[str, Any] = {"ledger_path": tmp_path / "l.db"}
        if database == "postgresql":
            changes["ledger_url"] = url
        mine = settings.model_copy(update=changes)
        with ServerThread(mine, pool) as server:
            ok, not_found = asyncio.run(_load(server, 24))
        rows = _rows(mine)  # read after the clean stop, which flushed the writer
    assert len(ok) == 18 and not_found == 6
    served = [r.request_id for r in rows if r.status == 200]
    assert sorted(served) == sorted(ok)
    assert sum(1 for r in rows if r.status == 404) == 6


def test_keys_limits_and_admin_routes(settings: Settings, pool: ModelPool, tmp_path: Path) -> None:
    with _serve(
        settings,
        pool,
        ledger_path=tmp_path / "l.db",
        auth=True,
        admin_key=SecretStr("admin-secret"),
    ) as server:
        admin = httpx.Client(
            base_url=server.base_url, headers={"Authorization": "Bearer admin-secret"}
        )
        assert httpx.get(server.base_url + "/admin/keys").status_code == 401
        # with auth on, route health is the admin's too
        assert httpx.get(server.base_url + "/admin/routes").status_code == 401
        assert admin.get("/admin/routes").json()["data"]
        wrong = httpx.get(server.base_url + "/admin/keys", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 403
        made = admin.post(
            "/admin/keys", json={"name": "app", "rpm": 2, "models": ["text-embedding-3-small"]}
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        assert [k["name"] for k in admin.get("/admin/keys").json()["data"]] == ["app"]
        with pytest.raises(openai.AuthenticationError) as missing:
            _client(server, "sk-offramp-unknown").embeddings.create(
                model="text-embedding-3-small", input="a"
            )
        assert missing.value.code == "invalid_api_key"
        no_key = httpx.get(server.base_url + "/v1/models")
        assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
        client = _client(server, secret)
        assert client.models.list().data
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.embeddings.create(model="text-embedding-3-large", input="a")
        assert denied.value.code == "model_not_allowed" and denied.value.body["param"] == "model"  # type: ignore[index]
        client.embeddings.create(model="text-embedding-3-small", input="a")
        with pytest.raises(openai.RateLimitError) as limited:
            client.embeddings.create(model="text-embedding-3-small", input="b")
            client.embeddings.create(model="text-embedding-3-small", input="c")
        assert limited.value.code == "rate_limit_exceeded"
        assert int(limited.value.response.headers["retry-after"]) >= 1
        deadline = time.monotonic() + 10
        while True:  # records reach the database a batch at a time, off the request path
            by_model = {m["model"]: m for m in admin.get("/admin/usage").json()["models"]}
            if len(by_model) == 2 and by_model["text-embedding-3-small"]["requests"] == 3:
                break
            assert time.monotonic() < deadline, by_model
            time.sleep(0.1)
    assert by_model["text-embedding-3-small"]["errors"] == 1  # the 429
    assert by_model["text-embedding-3-large"]["errors"] == 1  # the 403


def test_text_completions_are_cached_per_prompt(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with _serve(settings, pool, ledger_path=tmp_path / "l.db", cache=True) as server:
        client = _client(server)
        ask = {"model": "gpt-3.5-turbo-instruct", "max_tokens": 4, "temperature": 0}
        first = client.completions.create(prompt=["Once upon", "The sky"], **ask)
        again = client.completions.create(prompt=["The sky", "Once upon"], **ask)
        metrics = httpx.get(server.base_url + "/metrics").text
    assert [c.text for c in again.choices] == [c.text for c in reversed(first.choices)]
    rows = _rows(tmp_path_settings(settings, tmp_path))
    assert [(r.endpoint, r.cache_hit) for r in rows] == [
        ("completions", False),
        ("completions", True),
    ]
    assert rows[1].prompt_tokens == rows[0].prompt_tokens
    assert (
        'offramp_request_latency_seconds_count{endpoint="completions",model="gpt-3.5-turbo-instruct"} 2.0'
        in metrics
    )
