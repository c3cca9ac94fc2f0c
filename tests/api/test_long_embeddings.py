"""Embedding inputs longer than the model's window: split, pooled, reported; and better
retrieval than the first window alone."""

from __future__ import annotations

import itertools

import numpy as np
import openai
import pytest

from bench.retrieval import compare
from bench.retrieval_set import build
from offramp.errors import ContextLengthExceeded, InvalidRequest
from offramp.local.pool import ModelPool
from offramp.providers.embed_windows import Windower, WindowOptions
from offramp.providers.sentence_transformers import SentenceTransformersProvider

MODEL = "text-embedding-3-small"
LONG = " ".join(
    f"Paragraph {i} describes the harbour, its cranes and the ships." for i in range(90)
)


def _provider(pool: ModelPool) -> SentenceTransformersProvider:
    provider = pool._loaded["all-minilm-l6-v2"]
    assert isinstance(provider, SentenceTransformersProvider)
    return provider


def test_long_input_is_pooled_from_its_windows(client: openai.OpenAI, pool: ModelPool) -> None:
    raw = client.embeddings.with_raw_response.create(
        model=MODEL, input=["short text", LONG], encoding_format="float"
    )
    body = raw.http_response.json()
    windows = int(raw.headers["x-offramp-embedding-windows"])
    assert windows == body["usage"]["windows"] > 2  # 1 for the short input, several for LONG
    vector = np.asarray(body["data"][1]["embedding"], dtype=np.float32)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)

    provider = _provider(pool)
    plan = provider._windower.plan((LONG,))
    assert sum(plan.counts) == windows - 1
    assert all(len(p) < len(LONG) for p in plan.pieces)
    rows = provider._model.encode(list(plan.pieces), normalize_embeddings=True)
    mean = np.asarray(plan.weights, dtype=np.float32) @ rows
    assert float(vector @ (mean / np.linalg.norm(mean))) > 0.9999
    both = provider._windower.plan(("short text", LONG))
    assert body["usage"]["prompt_tokens"] == both.tokens == plan.tokens + 4  # 2 pieces + 2


def test_input_over_8191_tokens_is_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=MODEL, input=["fine", "word " * 8200])
    error = info.value.body
    assert isinstance(error, dict)
    assert error["param"] == "input" and error["code"] == "context_length_exceeded"
    assert "input[1]" in error["message"] and "8191" in error["message"]


def test_error_mode_refuses_what_does_not_fit_one_window(pool: ModelPool) -> None:
    tokenizer = _provider(pool)._model.tokenizer
    strict = Windower(tokenizer, 256, WindowOptions.from_options({"long_inputs": "error"}))
    assert strict.plan(("a short input",)).counts == (1,)
    with pytest.raises(ContextLengthExceeded, match=r"input\[0\] is \d+ tokens long.*at most 256"):
        strict.plan((LONG,))
    with pytest.raises(InvalidRequest, match="long_inputs"):
        WindowOptions.from_options({"long_inputs": "truncate"})
    with pytest.raises(InvalidRequest, match="window_overlap"):
        Windower(tokenizer, 256, WindowOptions.from_options({"window_overlap": 200}))


def test_windows_overlap_and_cover_the_whole_text(pool: ModelPool) -> None:
    tokenizer = _provider(pool)._model.tokenizer
    plan = Windower(tokenizer, 256, WindowOptions()).plan((LONG,))
    pieces = plan.pieces
    assert LONG.startswith(pieces[0]) and LONG.endswith(pieces[-1])
    for before, after in itertools.pairwise(pieces):
        overlap = after.split()[:3]
        assert " ".join(overlap) in before  # each window starts inside the one before
    assert max(plan.weights) <= 254 and plan.counts == (len(pieces),)


def test_pooled_long_documents_retrieve_better_than_their_first_window(
    client: openai.OpenAI, pool: ModelPool
) -> None:
    result = compare(client, _provider(pool)._windower, build(12))
    pooled, first = result["pooled"], result["first"]
    assert isinstance(pooled, dict) and isinstance(first, dict)
    assert pooled[3] >= 0.75
    assert pooled[3] > first[3] + 0.3
