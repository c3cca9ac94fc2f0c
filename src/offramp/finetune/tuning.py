"""``tune``: a dataset and a base model in, a new servable model version out.

The dataset (OpenAI's fine-tuning chat JSONL, or examples in memory) is de-duplicated and
split into train and eval (the deterministic split by prompt hash, or a separate eval
set); each example is tokenised as the engine would see it; LoRA adapters are trained
(``offramp.finetune.train``); the merged weights are written as a GGUF beside a model card
into ``<models_dir>/tuned/<NAME>/v<N>/``, which makes ``NAME@vN`` (and ``NAME``) a model
that ``offramp serve`` loads, at start-up or on ``POST /admin/models/reload``.

Called the same way by ``offramp tune`` and from Python::

    result = tune(Path("data.jsonl"), base="smollm2-135m-instruct", name="recipes",
                  settings=settings, options=TuneOptions(max_steps=20, lr=1e-3))
    result.model  # "recipes@v1"
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from offramp.errors import InvalidRequest, ModelNotFound
from offramp.finetune import card as model_card
from offramp.finetune.base_model import BaseModel, find_base, load_base
from offramp.finetune.chat_tokens import ChatTokenizer, Encoded
from offramp.finetune.dataset import (
    DEFAULT_EVAL_SHARE,
    ChatExample,
    deduplicated,
    read_jsonl,
    split_of,
)
from offramp.finetune.gguf_weights import QUANTS, Quant, write_gguf
from offramp.finetune.train import Progress, TrainOptions, TrainOutcome, pick_device, train_lora
from offramp.models import tuned
from offramp.models.tuned import load_with_tuned
from offramp.settings import Settings

Examples = Path | Sequence[ChatExample]


@dataclass(frozen=True)
class TuneOptions(TrainOptions):
    """The training hyper-parameters, plus the eval split and the output type."""

    eval_share: float = DEFAULT_EVAL_SHARE  # of prompts held out when no eval set is given
    quant: Quant = "auto"  # see offramp.finetune.gguf_weights

    def check(self) -> None:
        super().check()
        if not 0 <= self.eval_share < 1:
            raise InvalidRequest(
                f"eval_share must be at least 0 and below 1, got {self.eval_share!r}",
                param="eval_share",
            )
        if self.quant not in QUANTS:
            raise InvalidRequest(
                f"quant must be one of {', '.join(QUANTS)}, got {self.quant!r}", param="quant"
            )


@dataclass(frozen=True)
class TuneResult:
    """A registered version: ``model`` (``NAME@vN``) is servable once the server reloads."""

    name: str
    version: int
    model: str
    folder: Path
    gguf: Path
    card: dict[str, Any]


@dataclass(frozen=True)
class _Data:
    train: list[ChatExample]
    eval: list[ChatExample]
    source: str
    sha256: str
    examples: int
    duplicates: int
    eval_source: str


def tune(
    dataset: Examples,
    *,
    base: str | BaseModel,
    name: str,
    settings: Settings,
    options: TuneOptions | None = None,
    eval_dataset: Examples | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Tune ``base`` (a registry name, a GGUF path, or a loaded ``BaseModel`` to share
    between runs) on ``dataset`` and register the result as the next version of ``name``.

    Every failure a user can cause (an unknown base, weights not on disk, a bad dataset
    line, no training examples, CUDA asked for without one, a name already taken by a
    configured model) raises an OfframpError with one clear line, before any training.
    """
    options = options or TuneOptions()
    options.check()
    started = time.perf_counter()
    tuned.check_name(name)
    _check_free(name, settings)
    data = _data(dataset, eval_dataset, options.eval_share)
    pick_device(options.device)
    loaded = base if isinstance(base, BaseModel) else load_base(find_base(base, settings))
    train = _encode(loaded.tokenizer, data.train, "train", loaded.ref.context_length)
    evaluation = _encode(loaded.tokenizer, data.eval, "eval", loaded.ref.context_length)
    outcome = train_lora(loaded.model, train, evaluation, options, progress)
    version = tuned.next_version(settings.models_dir, name)
    folder = tuned.version_dir(settings.models_dir, name, version)
    folder.mkdir(parents=True)
    writing = time.perf_counter()
    report = write_gguf(
        loaded.reader,
        folder / tuned.MODEL_FILE,
        outcome.changed,
        config=loaded.model.config,
        quant=options.quant,
        metadata={"general.name": tuned.version_name(name, version)},
    )
    timings = {
        "load_s": 0.0 if isinstance(base, BaseModel) else loaded.load_seconds,
        "train_s": outcome.train_seconds,
        "write_s": time.perf_counter() - writing,
        "duration_s": time.perf_counter() - started,
    }
    card = _card(name, version, loaded, data, options, outcome, timings)
    card["weights"] = {"quant": options.quant, **_weights(report)}
    tuned.write_card(folder, card, model_card.markdown(card))
    return TuneResult(name, version, tuned.version_name(name, version), folder, report.path, card)


def _check_free(name: str, settings: Settings) -> None:
    """A tuned model may not take the name of a configured model, alias or route."""
    try:
        spec = load_with_tuned(settings.config, settings.models_dir).resolve(name)
    except ModelNotFound:
        return
    if spec.name.split("@v")[0] != name:
        raise InvalidRequest(
            f"--name: {name!r} already names the configured model {spec.name!r}; "
            "choose another name",
            param="name",
        )


def _data(dataset: Examples, eval_dataset: Examples | None, eval_share: float) -> _Data:
    examples, source, digest = _read(dataset)
    unique = list(deduplicated(examples))
    if eval_dataset is not None:
        held_out, eval_source, _ = _read(eval_dataset)
        train, evaluation = unique, list(deduplicated(held_out))
        eval_source = f"eval set {eval_source}"
    else:
        train = split_of(unique, "train", eval_share)
        evaluation = split_of(unique, "eval", eval_share)
        eval_source = f"{eval_share:.0%} of prompts held out by hash"
    if not train:
        raise InvalidRequest(
            f"{source} has no training examples"
            + (f" ({len(unique)} example(s), all in the eval split)" if unique else ""),
            param="dataset",
        )
    return _Data(
        train, evaluation, source, digest, len(unique), len(examples) - len(unique), eval_source
    )


def _read(dataset: Examples) -> tuple[list[ChatExample], str, str]:
    """(examples, where they came from, sha256: of the file, or of the examples' JSONL)."""
    if isinstance(dataset, Path):
        examples = read_jsonl(dataset)
        return examples, str(dataset), hashlib.sha256(dataset.read_bytes()).hexdigest()
    lines = "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in dataset)
    return list(dataset), "examples in memory", hashlib.sha256(lines.encode()).hexdigest()


def _encode(
    tokenizer: ChatTokenizer, examples: list[ChatExample], side: str, context: int
) -> list[Encoded]:
    encoded = []
    for i, example in enumerate(examples, start=1):
        tokens = tokenizer.encode(example, where=f"{side} example {i}")
        if len(tokens.input_ids) > context:
            raise InvalidRequest(
                f"{side} example {i} takes {len(tokens.input_ids)} tokens, more than the "
                f"base's context of {context}",
                param="dataset",
            )
        encoded.append(tokens)
    return encoded


def _card(
    name: str,
    version: int,
    loaded: BaseModel,
    data: _Data,
    options: TuneOptions,
    outcome: TrainOutcome,
    timings: dict[str, float],
) -> dict[str, Any]:
    ref = loaded.ref
    hyper = {k: v for k, v in asdict(options).items() if k not in ("device",)}
    hyper["target_modules"] = list(options.target_modules)
    hyper["trainable_parameters"] = outcome.trainable_parameters
    return {
        "name": name,
        "version": version,
        "model": tuned.version_name(name, version),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base": {"name": ref.name, "path": str(ref.path)},
        "dataset": {
            "source": data.source,
            "sha256": data.sha256,
            "examples": data.examples,
            "duplicates": data.duplicates,
            "train": len(data.train),
            "eval": len(data.eval),
            "eval_source": data.eval_source,
        },
        "hyperparameters": hyper,
        "metrics": {
            "epochs": [asdict(e) for e in outcome.epochs],
            "steps": outcome.steps,
            "stopped_early": outcome.stopped_early,
            "best_epoch": outcome.best_epoch,
            "train_tokens": outcome.train_tokens,
            "tokens_per_s": round(outcome.tokens_per_s, 1),
            "device": outcome.device,
            **{k: round(v, 2) for k, v in timings.items()},
        },
        "serving": {
            "backend": "llamacpp",
            "context_length": ref.context_length,
            "options": ref.options,
        },
    }


def _weights(report: Any) -> dict[str, Any]:
    return {"copied": report.copied, "encoded": report.encoded, "bytes": report.bytes}
