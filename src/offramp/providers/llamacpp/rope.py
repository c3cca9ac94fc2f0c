"""Context extension by RoPE scaling: a model's ``rope_scaling`` option, given to llama.cpp.

    options: {rope_scaling: {type: yarn, factor: 2, original_context: 8192}}

stretches the positions a model was trained on by ``factor`` (YaRN, or ``linear``), so
``context_length`` may go up to ``original_context * factor``. Models trained for it
(Qwen2.5, Llama 3.1 style) lose little; others lose some quality on short prompts too, so
it is off unless configured. ``original_context`` defaults to the model's trained context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offramp.errors import InvalidRequest

_TYPES = {"yarn": 2, "linear": 1}  # llama.cpp's LLAMA_ROPE_SCALING_TYPE_*


@dataclass(frozen=True)
class RopeScaling:
    """How far to stretch the model's positions, and how."""

    kind: str
    factor: float
    original_context: int = 0  # 0: the context the model was trained for

    @classmethod
    def from_option(cls, value: object) -> RopeScaling | None:
        """Read the ``rope_scaling`` option (InvalidRequest, param ``config``, if bad)."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise InvalidRequest("rope_scaling must be a mapping", param="config")
        raw: Mapping[str, Any] = value
        unknown = set(raw) - {"type", "factor", "original_context"}
        kind = raw.get("type", "yarn")
        factor = raw.get("factor")
        original = raw.get("original_context", 0)
        if unknown:
            raise InvalidRequest(f"rope_scaling: unknown key {sorted(unknown)[0]}", param="config")
        if kind not in _TYPES:
            raise InvalidRequest("rope_scaling.type must be yarn or linear", param="config")
        if not isinstance(factor, int | float) or factor < 1:
            raise InvalidRequest("rope_scaling.factor must be a number >= 1", param="config")
        if not isinstance(original, int) or original < 0:
            raise InvalidRequest(
                "rope_scaling.original_context must be a token count", param="config"
            )
        return cls(str(kind), float(factor), original)

    def apply(self, cparams: Any) -> None:
        """Set llama.cpp context parameters for this scaling."""
        cparams.rope_scaling_type = _TYPES[self.kind]
        cparams.rope_freq_scale = 1.0 / self.factor
        cparams.yarn_orig_ctx = self.original_context
