"""Embeddings through the official SDK: float and base64, dimensions, real vectors."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.providers.sentence_transformers import SentenceTransformersProvider

MODEL = "text-embedding-3-small"


def _vec(values: object) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(values, dtype=np.float32)


def test_float_vectors_are_normalised_and_ordered(client: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock prices fell."]
    r = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in r.data] == [0, 1, 2]
    vecs = [_vec(d.embedding) for d in r.data]
    for v in vecs:
        assert v.shape == (384,)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-4)
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2]) + 0.2
    assert r.usage.prompt_tokens == r.usage.total_tokens > len(texts)


def test_sdk_default_base64_matches_float(client: openai.OpenAI, server: object) -> None:
    as_float = client.embeddings.create(model=MODEL, input="hello world", encoding_format="float")
    default = client.embeddings.create(model=MODEL, input="hello world")  # SDK asks for base64
    assert np.allclose(_vec(as_float.data[0].embedding), _vec(default.data[0].embedding), atol=1e-6)
    raw = client.embeddings.with_raw_response.create(
        model=MODEL, input="hello world", encoding_format="base64"
    )
    encoded = raw.http_response.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert np.allclose(decoded, _vec(as_float.data[0].embedding), atol=1e-6)


def test_dimensions_shorten_and_renormalise(client: openai.OpenAI) -> None:
    full = _vec(
        client.embeddings.create(model=MODEL, input="hello", encoding_format="float")
        .data[0]
        .embedding
    )
    short = _vec(
        client.embeddings.create(model=MODEL, input="hello", dimensions=64, encoding_format="float")
        .data[0]
        .embedding
    )
    assert short.shape == (64,)
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(short, full[:64] / np.linalg.norm(full[:64]), atol=1e-5)


def test_vectors_equal_the_model_in_process(client: openai.OpenAI, pool: ModelPool) -> None:
    provider = pool._loaded["all-minilm-l6-v2"]
    assert isinstance(provider, SentenceTransformersProvider)
    texts = ["offramp serves embeddings", "from a local model"]
    local = provider._model.encode(texts, normalize_embeddings=True)
    served = client.embeddings.create(model="text-embedding-ada-002", input=texts)
    for got, want in zip(served.data, local, strict=True):
        assert float(_vec(got.embedding) @ want) > 0.9999


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    client: openai.OpenAI, async_client: openai.AsyncOpenAI
) -> None:
    texts = [
        f"Lesson {i}: how {topic} works"
        for i, topic in enumerate(["recursion", "sorting", "hashing", "graphs"] * 4)
    ]
    alone = [
        _vec(
            client.embeddings.create(model=MODEL, input=t, encoding_format="float")
            .data[0]
            .embedding
        )
        for t in texts
    ]

    async def together() -> list[object]:
        async def one(text: str) -> object:
            try:
                reply = await async_client.embeddings.create(
                    model=MODEL, input=text, encoding_format="float"
                )
            except openai.BadRequestError as exc:
                return exc
            return _vec(reply.data[0].embedding)

        return await asyncio.gather(*(one(t) for t in [*texts, "word " * 8200]))

    *results, too_long = asyncio.run(together())
    assert isinstance(too_long, openai.BadRequestError)  # fails alone, the others succeed
    for got, want in zip(results, alone, strict=True):
        assert isinstance(got, np.ndarray)
        assert float(got @ want) > 0.9999
