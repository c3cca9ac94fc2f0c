"""A BERT sentence encoder in plain torch, for sentence-transformers folders that hold one.

A sentence-transformers folder whose modules are a BERT ``Transformer``, a mean or CLS
``Pooling`` and optionally ``Normalize`` (all-MiniLM-L6-v2 and most small embedding
models) is run here with its own ``tokenizer.json`` (the ``tokenizers`` library) and its
``model.safetensors`` mapped, not copied. Importing sentence-transformers pulls in
transformers, scikit-learn and scipy: seconds of start-up and ~200 MB of memory that
serving these models does not need. ``BertEncoder.open`` answers None for any other
folder, which then goes to sentence-transformers itself. Embeddings match
sentence-transformers' to float32 rounding (tests/api/test_embeddings.py compares them).
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64"}


class _Encoded(dict[str, Any]):
    """A batch's token ids (and character offsets), with ``word_ids(i)`` as transformers'
    fast tokenizers give them."""

    def __init__(self, encodings: list[Any], offsets: bool):
        super().__init__(input_ids=[e.ids for e in encodings])
        if offsets:
            self["offset_mapping"] = [e.offsets for e in encodings]
        self._encodings = encodings

    def word_ids(self, index: int) -> list[int | None]:
        return list(self._encodings[index].word_ids)


class _Tokenizer:
    """The folder's fast tokenizer: ``tokenizer(texts, add_special_tokens=...)`` gives
    ``{"input_ids": [[...], ...]}`` untruncated, as transformers' tokenizers do."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.kind = f"BertTokenizer ({type(self._tok.model).__name__}, tokenizers)"

    def __len__(self) -> int:
        return int(self._tok.get_vocab_size())

    def __call__(
        self,
        texts: list[str],
        add_special_tokens: bool = True,
        return_offsets_mapping: bool = False,
    ) -> _Encoded:
        encoded = self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)
        return _Encoded(encoded, return_offsets_mapping)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """Tokens the post-processor adds around one text ([CLS] and [SEP] for BERT)."""
        processor = self._tok.post_processor
        return int(processor.num_special_tokens_to_add(pair)) if processor is not None else 0

    def batch(self, texts: list[str], max_len: int) -> tuple[Any, Any]:
        """Token ids and attention mask (int64 tensors), truncated to ``max_len`` and
        padded to the longest text."""
        import torch

        ids = [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=True)]
        # as transformers truncates: the text is cut, its closing special token kept
        ids = [[*e[: max_len - 1], e[-1]] if len(e) > max_len else e for e in ids]
        width = max(len(e) for e in ids)
        out = torch.zeros((len(ids), width), dtype=torch.int64)
        mask = torch.zeros((len(ids), width), dtype=torch.int64)
        for i, e in enumerate(ids):
            out[i, : len(e)] = torch.tensor(e, dtype=torch.int64)
            mask[i, : len(e)] = 1
        return out, mask


class BertEncoder:
    """Sentence embeddings from a BERT sentence-transformers folder (see module doc).

    Offers what the embeddings provider uses of a SentenceTransformer: ``tokenizer``,
    ``max_seq_length``, ``get_embedding_dimension`` and ``encode``.
    """

    def __init__(self, folder: Path, config: dict[str, Any], pooling: str, normalize: bool):
        import torch

        self._torch = torch
        self.tokenizer = _Tokenizer(folder / "tokenizer.json")
        self._config = config
        self._pooling = pooling
        self._normalize = normalize
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._layers = int(config["num_hidden_layers"])
        self._mapped, self._weights = _map_safetensors(folder / "model.safetensors")
        st_config = _read_json(folder / "sentence_bert_config.json") or {}
        limit = int(config.get("max_position_embeddings", 512))
        self.max_seq_length = int(st_config.get("max_seq_length") or limit)
        self._dims = int(config["hidden_size"])
        # One tiny pass now: torch sets up its thread pool here, at load, rather than in
        # the first request, while llama.cpp's decode threads are running.
        self.encode(["warm-up"], batch_size=1)

    @classmethod
    def open(cls, folder: Path) -> BertEncoder | None:
        """The encoder for ``folder``, or None when it holds something else."""
        modules = _read_json(folder / "modules.json")
        config = _read_json(folder / "config.json")
        if not isinstance(modules, list) or not isinstance(config, dict):
            return None
        kinds = [m.get("type") for m in modules]
        if kinds not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
            return None
        if modules[0].get("path") or not (folder / "tokenizer.json").exists():
            return None
        if not (folder / "model.safetensors").exists():
            return None
        supported = (
            config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
        )
        pooling = _pooling_mode(_read_json(folder / str(modules[1].get("path")) / "config.json"))
        if not supported or pooling is None:
            return None
        return cls(folder, config, pooling, normalize=len(modules) == 3)

    def get_embedding_dimension(self) -> int:
        return self._dims

    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_: object,
    ) -> npt.NDArray[np.float32]:
        """One vector per text, in order (unit length when the folder or the caller asks
        for it); texts are batched by length as sentence-transformers does."""
        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self._dims), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), max(batch_size, 1)):
                chunk = order[start : start + max(batch_size, 1)]
                ids, mask = self.tokenizer.batch([texts[i] for i in chunk], self.max_seq_length)
                vectors = self._pool(self._forward(ids, mask), mask)
                if self._normalize or normalize_embeddings:
                    vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=1)
                out[chunk] = vectors.numpy()
        return out

    # ----- the network ----------------------------------------------------------------

    def _w(self, name: str) -> Any:
        return self._weights[name]

    def _forward(self, ids: Any, mask: Any) -> Any:
        torch, f = self._torch, self._torch.nn.functional
        positions = torch.arange(ids.shape[1])
        x = (
            f.embedding(ids, self._w("embeddings.word_embeddings.weight"))
            + f.embedding(positions, self._w("embeddings.position_embeddings.weight"))
            + self._w("embeddings.token_type_embeddings.weight")[0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        keep = mask[:, None, None, :].bool()
        for n in range(self._layers):
            x = self._layer(x, keep, f"encoder.layer.{n}.")
        return x

    def _layer(self, x: Any, keep: Any, p: str) -> Any:
        f = self._torch.nn.functional
        batch, length, dims = x.shape
        heads, width = self._heads, dims // self._heads

        def split(t: Any) -> Any:
            return t.view(batch, length, heads, width).transpose(1, 2)

        q, k, v = (self._linear(x, f"{p}attention.self.{w}") for w in ("query", "key", "value"))
        ctx = f.scaled_dot_product_attention(
            split(q), split(k), split(v), attn_mask=keep, scale=1 / math.sqrt(width)
        )
        ctx = ctx.transpose(1, 2).reshape(batch, length, dims)
        x = self._norm(
            self._linear(ctx, f"{p}attention.output.dense") + x, f"{p}attention.output.LayerNorm"
        )
        inner = f.gelu(self._linear(x, f"{p}intermediate.dense"))
        return self._norm(self._linear(inner, f"{p}output.dense") + x, f"{p}output.LayerNorm")

    def _linear(self, x: Any, name: str) -> Any:
        return self._torch.nn.functional.linear(
            x, self._w(name + ".weight"), self._w(name + ".bias")
        )

    def _norm(self, x: Any, name: str) -> Any:
        return self._torch.nn.functional.layer_norm(
            x, (x.shape[-1],), self._w(name + ".weight"), self._w(name + ".bias"), self._eps
        )

    def _pool(self, tokens: Any, mask: Any) -> Any:
        if self._pooling == "cls":
            return tokens[:, 0]
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        summed = (tokens * weights).sum(dim=1)
        return summed / weights.sum(dim=1).clamp(min=1e-9)


def _pooling_mode(config: Any) -> str | None:
    """``mean`` or ``cls`` when the pooling config asks for exactly that one, else None."""
    if not isinstance(config, dict):
        return None
    modes = {k for k, v in config.items() if k.startswith("pooling_mode_") and v}
    if modes == {"pooling_mode_mean_tokens"}:
        return "mean"
    if modes == {"pooling_mode_cls_token"}:
        return "cls"
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _map_safetensors(path: Path) -> tuple[mmap.mmap, dict[str, Any]]:
    """The file's tensors as views of a private (copy-on-write) mapping: weights become
    resident as they are read, and embedding rows never looked up never do."""
    import torch

    with path.open("rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    (size,) = struct.unpack("<Q", mapped[:8])
    header = json.loads(mapped[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, Any] = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] not in _DTYPES:
            continue
        dtype = getattr(torch, _DTYPES[meta["dtype"]])
        start, end = meta["data_offsets"]
        flat = torch.frombuffer(
            mapped, dtype=dtype, count=(end - start) // dtype.itemsize, offset=base + start
        )
        tensors[name] = flat.view(meta["shape"]).float()
    return mapped, tensors
