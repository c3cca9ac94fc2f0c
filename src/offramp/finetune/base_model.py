"""The model a tune starts from: found by name in the registry (tuned models included) or
given as a GGUF file, and loaded once into transformers, with its tokenizer and file.

A ``BaseModel`` can serve any number of tunes: training leaves its weights as they were.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offramp.errors import InvalidRequest, ModelNotFound
from offramp.finetune import gguf_weights
from offramp.finetune.chat_tokens import ChatTokenizer
from offramp.models import sources
from offramp.models.tuned import load_with_tuned
from offramp.settings import Settings

if TYPE_CHECKING:
    import gguf
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class BaseRef:
    """Where a base model is and how a model tuned from it is served."""

    name: str
    path: Path
    context_length: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BaseModel:
    """A base model loaded for tuning."""

    ref: BaseRef
    reader: gguf.GGUFReader
    model: PreTrainedModel
    tokenizer: ChatTokenizer
    load_seconds: float


def find_base(base: str, settings: Settings) -> BaseRef:
    """The registry's chat model called ``base`` (a name, alias or tuned ``NAME@vN``), or
    the GGUF file at that path. ModelSourceError (one line) when its weights are not on
    disk, e.g. a hub model not yet pulled; InvalidRequest for an unknown name or a model
    that is not a llama.cpp one."""
    path = Path(base).expanduser()
    if base.endswith(".gguf") or path.is_file():
        if not path.is_file():
            raise InvalidRequest(f"--base: no such file {path}", param="base")
        return BaseRef(path.stem, path.resolve(), _file_context(path))
    try:
        spec = load_with_tuned(settings.config, settings.models_dir).resolve(base)
    except ModelNotFound as exc:
        raise InvalidRequest(f"--base: {exc.message}", param="base") from exc
    if spec.backend != "llamacpp":
        raise InvalidRequest(
            f"--base: {base} is a {spec.backend} model; tuning needs a llama.cpp (GGUF) chat model",
            param="base",
        )
    path = sources.resolve(spec.source, settings.models_dir)  # says `models pull` if absent
    return BaseRef(spec.name, path.resolve(), spec.context_length, dict(spec.options))


def _file_context(path: Path) -> int:
    return ChatTokenizer(path).context_length


def load_base(ref: BaseRef) -> BaseModel:
    """Read the base's file, its tokenizer and its weights into transformers (dequantised,
    float32, on the CPU); InvalidRequest for an architecture tuning does not map."""
    started = time.perf_counter()
    reader = gguf_weights.open_gguf(ref.path)
    gguf_weights.check_tunable(reader)
    tokenizer = ChatTokenizer(ref.path)
    model = gguf_weights.load_model(reader)
    return BaseModel(ref, reader, model, tokenizer, time.perf_counter() - started)
