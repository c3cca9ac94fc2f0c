"""Embeddings through the official SDK: float and base64, dimensions, real vectors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.models.registry import load_registry
from offramp.models.sources import resolve
from offramp.providers.bert import BertEncoder
from offramp.providers.sentence_transformers import SentenceTransformersProvider
from offramp.settings import Settings
from offramp.types import EmbedRequest

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


def _folder(settings: Settings) -> Path:
    spec = load_registry(None).resolve("all-minilm-l6-v2", kind="embedding")
    return resolve(spec.source, settings.models_dir)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_the_provider_leaves_no_torch_threads_behind(settings: Settings) -> None:
    """Idle OpenMP threads of a finished torch pass made every llama.cpp decode step
    sleep in the kernel (one stream at ~0.35x); the provider ends the team its load-time
    warm-up pass and each batch leave on their threads."""
    spec = load_registry(None).resolve("all-minilm-l6-v2", kind="embedding")
    folder = _folder(settings)
    with ThreadPoolExecutor(1) as warm, ThreadPoolExecutor(1) as loader:
        # the libraries' own lasting threads (tokenizers' pool) start with a first load
        first = warm.submit(SentenceTransformersProvider, spec, folder, settings).result()
        loader.submit(_threads).result()  # a loader thread that stays, as the pool's do
        before = _threads()
        provider = loader.submit(SentenceTransformersProvider, spec, folder, settings).result()
        assert _threads() == before + 1  # its batcher thread, and no torch team left
        texts = tuple(f"text number {i} about a topic" for i in range(64))
        asyncio.run(provider.embed(EmbedRequest(model=spec.name, texts=texts)))
        assert _threads() == before + 1
        for made in (first, provider):
            asyncio.run(made.aclose())


def test_vectors_equal_sentence_transformers_in_process(
    client: openai.OpenAI, pool: ModelPool, settings: Settings
) -> None:
    from sentence_transformers import SentenceTransformer

    provider = pool._loaded["all-minilm-l6-v2"]
    assert isinstance(provider, SentenceTransformersProvider)
    assert isinstance(provider._model, BertEncoder)  # the BERT folder runs without ST
    reference = SentenceTransformer(str(_folder(settings)), device="cpu", local_files_only=True)
    texts = ["offramp serves embeddings", "from a local model", "Ünïcode, CAPS & 数字 123"]
    served = client.embeddings.create(model="text-embedding-ada-002", input=texts)
    want = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    got = np.stack([_vec(d.embedding) for d in served.data])
    assert np.abs(got - want).max() < 1e-5
    # texts past the model's limit are cut as sentence-transformers cuts them
    long = ["word " * 400, "short"]
    cut = provider._model.encode(long, batch_size=2, normalize_embeddings=True)
    assert np.abs(cut - reference.encode(long, normalize_embeddings=True)).max() < 1e-5
    ids = provider._model.tokenizer(["hello world"], add_special_tokens=True)["input_ids"]
    assert ids == reference.tokenizer(["hello world"], add_special_tokens=True)["input_ids"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"modules": "dense"}, "a Dense module BertEncoder does not run"),
        ({"pooling": "max"}, "max pooling"),
        ({"model_type": "xlm-roberta"}, "not BERT"),
    ],
)
def test_other_folders_are_left_to_sentence_transformers(
    tmp_path: Path, settings: Settings, change: dict[str, str], why: str
) -> None:
    source = _folder(settings)
    for name in ("modules.json", "config.json", "tokenizer.json", "sentence_bert_config.json"):
        shutil.copy(source / name, tmp_path / name)
    (tmp_path / "model.safetensors").symlink_to(source / "model.safetensors")
    (tmp_path / "1_Pooling").mkdir()
    shutil.copy(source / "1_Pooling" / "config.json", tmp_path / "1_Pooling" / "config.json")
    assert BertEncoder.open(tmp_path) is not None  # the copy itself qualifies
    if change.get("modules"):
        modules = json.loads((tmp_path / "modules.json").read_text())
        modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense",
                           "type": "sentence_transformers.models.Dense"})  # fmt: skip
        (tmp_path / "modules.json").write_text(json.dumps(modules))
    if change.get("pooling"):
        pooling = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
        pooling["pooling_mode_mean_tokens"], pooling["pooling_mode_max_tokens"] = False, True
        (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if change.get("model_type"):
        config = json.loads((tmp_path / "config.json").read_text())
        config["model_type"] = change["model_type"]
        (tmp_path / "config.json").write_text(json.dumps(config))
    assert BertEncoder.open(tmp_path) is None, why


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
