"""The embedded embeddings provider: a sentence-transformers model from a local folder."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offramp.errors import ContextLengthExceeded, ProviderError, UnsupportedParameter
from offramp.memory import release_free_heap
from offramp.models.registry import ModelSpec
from offramp.providers.base import Capabilities, Provider
from offramp.settings import Settings
from offramp.types import EmbedRequest, EmbedResult


class SentenceTransformersProvider(Provider):
    """Embeds texts with one model; encoding runs on a dedicated thread, never the loop.

    Inputs longer than the model's sequence limit are refused (400 with the numbers),
    never truncated.
    """

    def __init__(self, spec: ModelSpec, path: Path, settings: Settings):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder must never reach a hub
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.n_threads:
            torch.set_num_threads(settings.n_threads)
        try:
            self._model = SentenceTransformer(
                str(path), device=settings.embed_device, local_files_only=True
            )
        except Exception as exc:
            raise ProviderError(f"cannot load embedding model from {path}: {exc}") from exc
        self._max_tokens = min(spec.context_length, int(self._model.max_seq_length or 10**9))
        self._batch_size = settings.embed_batch_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        dims = int(self._model.get_embedding_dimension() or 0)
        self.capabilities = Capabilities(
            embeddings=True, context_length=self._max_tokens, embedding_dimensions=dims
        )

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        dims = self.capabilities.embedding_dimensions
        if request.dimensions is not None and not 1 <= request.dimensions <= dims:
            raise UnsupportedParameter(
                f"dimensions must be between 1 and {dims} for this model, got {request.dimensions}",
                param="dimensions",
            )
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self._executor, self._encode, request.texts)
        if request.dimensions is not None and request.dimensions < dims:
            vectors = vectors[:, : request.dimensions]
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return EmbedResult(request.model, vectors.astype(np.float32, copy=False), tokens)

    def _encode(self, texts: tuple[str, ...]) -> tuple[npt.NDArray[np.float32], int]:
        tokenizer: Any = self._model.tokenizer
        lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
        for i, n in enumerate(lengths):
            if n > self._max_tokens:
                raise ContextLengthExceeded(
                    f"input[{i}] is {n} tokens long; this embedding model takes at most "
                    f"{self._max_tokens} tokens per input. Split the text.",
                    param="input",
                )
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out = np.asarray(vectors, dtype=np.float32)
        # torch frees a batch's activations to malloc, which keeps the pages; hand them
        # back so resident memory does not ratchet up with batch sizes.
        release_free_heap()
        return out, sum(lengths)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
