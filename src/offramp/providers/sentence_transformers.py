"""The embedded embeddings provider: a sentence-transformers model from a local folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offramp.errors import ProviderError, UnsupportedParameter
from offramp.memory import release_free_heap
from offramp.models.registry import ModelSpec
from offramp.providers.base import Capabilities, Provider
from offramp.providers.bert import BertEncoder
from offramp.providers.embed_batcher import EmbedBatcher
from offramp.providers.embed_windows import Windower, WindowOptions, WindowPlan
from offramp.providers.openmp import release_team
from offramp.settings import Settings
from offramp.types import EmbedRequest, EmbedResult


class SentenceTransformersProvider(Provider):
    """Embeds texts with one model on its own thread, never the event loop; requests
    arriving together are encoded in one pass (see EmbedBatcher).

    Inputs longer than the model's sequence limit are encoded as overlapping windows and
    pooled into one vector, or refused (400 with the numbers) with ``long_inputs:
    error``; never silently truncated (see ``embed_windows``).
    """

    def __init__(self, spec: ModelSpec, path: Path, settings: Settings):
        import torch

        # Set, never left to torch's lazy default: an OpenMP pool first sized while
        # llama.cpp's decode threads run was seen to slow every decode step ~50x.
        torch.set_num_threads(settings.n_threads or os.cpu_count() or 1)
        device = settings.embed_device or ("cuda" if torch.cuda.is_available() else "cpu")
        fast = BertEncoder.open(path) if device == "cpu" else None  # BertEncoder: CPU only
        self._model: Any = fast or _sentence_transformer(path, settings)
        release_team()  # the warm-up pass's threads: llama.cpp decodes slower beside them
        window = min(spec.context_length, int(self._model.max_seq_length or 10**9))
        self._model.max_seq_length = window
        tokenizer: Any = self._model.tokenizer
        self._windower = Windower(
            self._model.tokenizer, window, WindowOptions.from_options(spec.options)
        )
        self._batch_size = settings.embed_batch_size
        self._batcher: EmbedBatcher[WindowPlan] = EmbedBatcher(
            plan=self._windower.plan,
            encode=self._encode,
            window=settings.embed_batch_window_ms / 1000,
            max_texts=max(self._batch_size, 1),
        )
        dims = int(self._model.get_embedding_dimension() or 0)
        self.capabilities = Capabilities(
            embeddings=True,
            context_length=self._windower.max_input_tokens,
            embedding_dimensions=dims,
            tokenizer=f"{getattr(tokenizer, 'kind', type(tokenizer).__name__)}, "
            f"{len(tokenizer)} tokens",
            embedding_window=window,
        )

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        dims = self.capabilities.embedding_dimensions
        if request.dimensions is not None and not 1 <= request.dimensions <= dims:
            raise UnsupportedParameter(
                f"dimensions must be between 1 and {dims} for this model, got {request.dimensions}",
                param="dimensions",
            )
        rows, plan = await asyncio.wrap_future(self._batcher.submit(request.texts))
        vectors = plan.pool(rows)
        if request.dimensions is not None and request.dimensions < dims:
            vectors = vectors[:, : request.dimensions]
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return EmbedResult(
            request.model, vectors.astype(np.float32, copy=False), plan.tokens, plan.counts
        )

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out = np.asarray(vectors, dtype=np.float32)
        # torch frees a batch's activations to malloc, which keeps the pages; hand them
        # back so resident memory does not ratchet up with batch sizes.
        release_free_heap()
        release_team()  # see offramp.providers.openmp: idle torch threads slow decoding
        return out

    async def aclose(self) -> None:
        await asyncio.to_thread(self._batcher.close)


def _sentence_transformer(path: Path, settings: Settings) -> Any:
    """sentence-transformers itself, for folders BertEncoder does not run."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder must never reach a hub
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device=settings.embed_device, local_files_only=True)
    except Exception as exc:
        raise ProviderError(f"cannot load embedding model from {path}: {exc}") from exc
