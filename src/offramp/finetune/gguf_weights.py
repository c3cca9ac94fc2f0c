"""A llama-architecture GGUF into transformers, and weights from transformers back into
the same GGUF layout.

Loading dequantises every tensor to float32 and un-permutes the query and key projections
(llama.cpp stores them with rotary halves interleaved), as transformers' own GGUF loader
(``from_pretrained(dir, gguf_file=...)``) does, with the same name table both ways.
Writing starts from
the base file: its metadata and tokenizer are copied, every tensor that did not change is
copied byte for byte, and each changed tensor (named as transformers names it) is mapped
back to its GGUF name, permuted back if it is a query or key projection, and encoded at
the output type asked for.

Output types (``quant``):

- ``auto`` (the default): changed tensors as Q8_0. A merged LoRA delta is small next to a
  4-bit step: requantised to Q4_1 it is rounded away (cosine 0.08 with the learned delta
  after a short run, bench/README.md), Q8_0 keeps most of it (0.80, enough for the learning
  test) at a quarter of F32's size; ``f16`` keeps all of it.
- ``base``: each changed tensor at the base file's type for it (what a round trip of
  unchanged weights uses: Q4_1 of dequantised Q4_1 gives back the same blocks).
- ``f32``, ``f16``, ``q8_0``, ``q4_1``, ``q4_0``: every changed tensor at that type.

A type that needs whole blocks (32 values) falls back to F16 for a tensor whose rows are
not a multiple of the block size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from offramp.errors import InvalidRequest, ModelSourceError

if TYPE_CHECKING:  # heavy: imported by the functions that need them
    import gguf
    import numpy as np
    import torch
    from transformers import PreTrainedModel

Quant = Literal["auto", "base", "f32", "f16", "q8_0", "q4_1", "q4_0"]
QUANTS: tuple[Quant, ...] = ("auto", "base", "f32", "f16", "q8_0", "q4_1", "q4_0")
SUPPORTED_ARCHITECTURES = ("llama",)


@dataclass(frozen=True)
class WriteReport:
    """What ``write_gguf`` wrote: tensor counts by how, and the file's size."""

    path: Path
    copied: int  # byte for byte from the base
    encoded: dict[str, int]  # type name -> changed tensors written at it
    bytes: int


def open_gguf(path: Path) -> gguf.GGUFReader:
    """The GGUF file at ``path``, its metadata parsed (the slow part: about 10 s for the
    bundled model's 49k-token vocabulary; keep the reader for both loading and writing);
    ModelSourceError if it is not a GGUF file."""
    import gguf

    try:
        return gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"{path} is not a readable GGUF file: {exc}") from exc


def architecture(reader: gguf.GGUFReader) -> str:
    """The file's ``general.architecture``."""
    import gguf

    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    return str(field.contents()) if field is not None else "unknown"


def check_tunable(reader: gguf.GGUFReader) -> None:
    """InvalidRequest unless the file is of an architecture this module maps."""
    arch = architecture(reader)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise InvalidRequest(
            f"{Path(str(reader.data.filename)).name} is a {arch!r} model; tuning supports "
            f"GGUF models of the {', '.join(SUPPORTED_ARCHITECTURES)} architecture",
            param="base",
        )


def load_model(reader: gguf.GGUFReader) -> PreTrainedModel:
    """The GGUF file of ``reader`` as a float32 transformers causal LM on the CPU.

    Each tensor is dequantised by gguf and mapped to its transformers name by the same
    table ``write_gguf`` uses (query and key projections un-permuted), into a model built
    from the file's hyper-parameters as transformers' own GGUF loader builds it; unlike
    that loader this reads the file once (about 5 s for the bundled model instead of 20).
    """
    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    check_tunable(reader)
    config = _config(reader)
    present = {t.name for t in reader.tensors}
    model: PreTrainedModel = cast(Any, AutoModelForCausalLM).from_config(
        config, dtype=torch.float32
    )
    names = _gguf_names(dict.fromkeys(model.state_dict()), "llama", config, present)
    state: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        hf_name = names.get(tensor.name)
        if hf_name is None:
            raise InvalidRequest(
                f"tensor {tensor.name} has no place in a {config.model_type} model",
                param="base",
            )
        values = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
        values = values.reshape([int(n) for n in reversed(tensor.shape.tolist())])
        state[hf_name] = torch.from_numpy(_from_gguf_layout(tensor.name, values, config))
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True)
    model.tie_weights()
    cast(Any, model).eval()
    return model


_CONFIG_KEYS = {  # llama.* GGUF keys -> transformers LlamaConfig fields
    "context_length": "max_position_embeddings",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "embedding_length": "hidden_size",
    "rope.dimension_count": "head_dim",
    "rope.freq_base": "rope_theta",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "vocab_size": "vocab_size",
}


def _config(reader: gguf.GGUFReader) -> Any:
    """A LlamaConfig from the file's ``llama.*`` keys (as transformers' GGUF loader maps
    them); embeddings are tied when the file has no ``output.weight``."""
    from transformers import LlamaConfig

    values: dict[str, Any] = {}
    for key, field_name in _CONFIG_KEYS.items():
        field = reader.get_field(f"llama.{key}")
        if field is not None:
            values[field_name] = field.contents()
    if "vocab_size" not in values:
        tokens = reader.get_field("tokenizer.ggml.tokens")
        values["vocab_size"] = len(tokens.data) if tokens is not None else 0
    for token in ("bos", "eos", "padding"):
        field = reader.get_field(f"tokenizer.ggml.{token}_token_id")
        if field is not None:
            values["pad_token_id" if token == "padding" else f"{token}_token_id"] = int(
                field.contents()
            )
    values["tie_word_embeddings"] = all(t.name != "output.weight" for t in reader.tensors)
    return LlamaConfig(**values)


def write_gguf(
    base: gguf.GGUFReader,
    out: Path,
    changed: Mapping[str, torch.Tensor],
    *,
    config: Any,
    quant: Quant = "auto",
    metadata: Mapping[str, str] | None = None,
) -> WriteReport:
    """Write the ``base`` file with the tensors of ``changed`` (transformers names, e.g.
    ``model.layers.0.self_attn.q_proj.weight``) replaced, to ``out``.

    ``config`` is the model's transformers config (heads, layers, tied embeddings);
    ``metadata`` sets string keys such as ``general.name``. InvalidRequest when a name has
    no tensor in the base or a shape differs.
    """
    import gguf

    reader = base
    arch = architecture(reader)
    by_gguf = _gguf_names(changed, arch, config, {t.name for t in reader.tensors})
    writer = gguf.GGUFWriter(str(out), arch)
    writer.data_alignment = reader.alignment
    _copy_metadata(reader, writer, metadata or {})
    copied = 0
    encoded: dict[str, int] = {}
    for tensor in reader.tensors:
        hf_name = by_gguf.get(tensor.name)
        if hf_name is None:
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            copied += 1
            continue
        values = _as_gguf_layout(tensor.name, changed[hf_name], config)
        expected = tuple(int(n) for n in reversed(tensor.shape.tolist()))
        if values.shape != expected:
            raise InvalidRequest(
                f"{hf_name} has shape {values.shape}, the base's {tensor.name} {expected}",
                param="weights",
            )
        qtype = _output_type(quant, tensor.tensor_type, values.shape)
        writer.add_tensor(tensor.name, _encode(values, qtype), raw_dtype=qtype)
        encoded[qtype.name] = encoded.get(qtype.name, 0) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return WriteReport(out, copied, encoded, out.stat().st_size)


def _gguf_names(
    changed: Mapping[str, object], arch: str, config: Any, present: set[str]
) -> dict[str, str]:
    """GGUF name -> transformers name for every changed tensor. A tied ``lm_head`` that
    the base stores only as the token embedding is left out (it is that tensor)."""
    import gguf

    arch_id = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), None)
    if arch_id is None:
        raise InvalidRequest(f"gguf does not know the {arch!r} architecture", param="base")
    names = gguf.get_tensor_name_map(arch_id, int(config.num_hidden_layers))
    out: dict[str, str] = {}
    for hf_name in changed:
        stem, _, suffix = hf_name.rpartition(".")
        mapped = names.get_name(stem)
        gguf_name = f"{mapped}.{suffix}" if mapped else None
        if gguf_name not in present:
            if hf_name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
                continue
            raise InvalidRequest(
                f"{hf_name} has no tensor in the base GGUF ({gguf_name or 'no GGUF name'})",
                param="weights",
            )
        out[str(gguf_name)] = hf_name
    return out


def _as_gguf_layout(gguf_name: str, tensor: torch.Tensor, config: Any) -> np.ndarray:
    """float32 numpy in llama.cpp's layout: query and key projections permuted back the
    way llama.cpp's converter stores them (transformers un-permuted them on loading)."""
    import numpy as np

    values = tensor.detach().to("cpu").float().numpy()
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    if ".attn_q." in gguf_name:
        values = _permute(values, heads)
    elif ".attn_k." in gguf_name:
        values = _permute(values, kv_heads)
    return np.ascontiguousarray(values, dtype=np.float32)


def _from_gguf_layout(gguf_name: str, values: np.ndarray, config: Any) -> np.ndarray:
    """The inverse of ``_as_gguf_layout``."""
    import numpy as np

    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    if ".attn_q." in gguf_name:
        values = _unpermute(values, heads)
    elif ".attn_k." in gguf_name:
        values = _unpermute(values, kv_heads)
    return np.array(values, dtype=np.float32)  # a copy: F32 tensors are views of the file


def _unpermute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' ``_reverse_permute_weights``: llama.cpp's rotary layout undone."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, rows // n_head // 2, 2, *weights.shape[1:])
        .swapaxes(2, 1)
        .reshape(weights.shape)
    )


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``permute`` (convert_hf_to_gguf.py): each head's rotary halves
    interleaved; the inverse of transformers' ``_reverse_permute_weights``."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _output_type(
    quant: Quant, base_type: gguf.GGMLQuantizationType, shape: tuple[int, ...]
) -> gguf.GGMLQuantizationType:
    import gguf

    types = gguf.GGMLQuantizationType
    chosen = {
        "auto": types.Q8_0,
        "base": base_type,
        "f32": types.F32,
        "f16": types.F16,
        "q8_0": types.Q8_0,
        "q4_1": types.Q4_1,
        "q4_0": types.Q4_0,
    }[quant]
    if chosen not in _ENCODABLE:
        raise InvalidRequest(
            f"the base stores a tensor as {chosen.name}, which gguf cannot encode; "
            "choose --quant q8_0, f16 or f32",
            param="quant",
        )
    block, _ = gguf.GGML_QUANT_SIZES[chosen]
    return types.F16 if shape[-1] % block else chosen


_ENCODABLE = frozenset({0, 1, 2, 3, 6, 7, 8, 30})  # F32 F16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 BF16


def _encode(values: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    from gguf import quants

    return quants.quantize(values, qtype)


def _copy_metadata(
    reader: gguf.GGUFReader, writer: gguf.GGUFWriter, overrides: Mapping[str, str]
) -> None:
    """Every key of the base (tokenizer, chat template, hyper-parameters) but those the
    writer sets itself, with ``overrides`` (string keys) replacing or adding."""
    import gguf

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name in overrides:
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
    for key, value in overrides.items():
        writer.add_string(key, value)
