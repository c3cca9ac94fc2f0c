"""Cache keys: equal requests get equal keys whatever their wire spelling.

Keys are built from the validated domain request, so field order, defaults spelled out
or left out, and wire-only options (``stream``, ``stream_options``) do not split them;
``user`` (who asked, not what) is left out. Every key carries its partition (the API
key's id), so one key never sees another's answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

import orjson

from offramp.types import ChatRequest, CompletionRequest

_IGNORED = frozenset({"user"})
_VERSION = "v1"


def is_deterministic(request: ChatRequest | CompletionRequest) -> bool:
    """Whether the same request gives the same answer: temperature 0 or a fixed seed."""
    return request.sampling.temperature == 0 or request.sampling.seed is not None


def response_key(partition: str, request: ChatRequest | CompletionRequest) -> str:
    """The cache key of a chat or text completion request."""
    fields = {k: v for k, v in dataclasses.asdict(request).items() if k not in _IGNORED}
    kind = "chat" if isinstance(request, ChatRequest) else "completion"
    return f"offramp:{_VERSION}:{kind}:{_digest(partition, fields)}"


def embedding_key(partition: str, model: str, dimensions: int | None, text: str) -> str:
    """The cache key of one text's vector."""
    fields = {"model": model, "dimensions": dimensions, "text": text}
    return f"offramp:{_VERSION}:embedding:{_digest(partition, fields)}"


def _digest(partition: str, fields: Mapping[str, object]) -> str:
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(partition.encode() + b"\0" + body).hexdigest()
