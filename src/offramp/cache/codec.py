"""Cached values as bytes: whole completion results, and one vector with its tokens."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from offramp.types import Choice, CompletionResult, TokenLogprob, ToolCall, TopLogprob, Usage


def dump_result(result: CompletionResult) -> bytes:
    return orjson.dumps(
        {
            "model": result.model,
            "usage": dataclasses.astuple(result.usage),
            "choices": [_choice(c) for c in result.choices],
        }
    )


def load_result(data: bytes) -> CompletionResult:
    raw = orjson.loads(data)
    choices = tuple(
        Choice(
            index=c["index"],
            text=c["text"],
            finish_reason=c["finish_reason"],
            tool_calls=tuple(ToolCall(*t) for t in c["tool_calls"]),
            logprobs=None
            if c["logprobs"] is None
            else tuple(_load_logprob(lp) for lp in c["logprobs"]),
        )
        for c in raw["choices"]
    )
    return CompletionResult(raw["model"], choices, Usage(*raw["usage"]))


_WINDOWED = 1 << 31  # set in the token word when a window count follows it


def dump_vector(vector: npt.NDArray[np.float32], tokens: int, windows: int | None = None) -> bytes:
    """A vector, its tokens and (when known) how many windows were pooled into it."""
    if windows is None:
        head = struct.pack("<I", tokens)
    else:
        head = struct.pack("<II", tokens | _WINDOWED, windows)
    return head + vector.astype("<f4").tobytes()


def load_vector(data: bytes) -> tuple[npt.NDArray[np.float32], int, int | None]:
    """(vector, tokens, windows or None); entries written without windows load too."""
    (word,) = struct.unpack_from("<I", data)
    if not word & _WINDOWED:
        return np.frombuffer(data, dtype="<f4", offset=4).astype(np.float32), word, None
    (windows,) = struct.unpack_from("<I", data, 4)
    vector = np.frombuffer(data, dtype="<f4", offset=8).astype(np.float32)
    return vector, word & ~_WINDOWED, windows


def _choice(c: Choice) -> dict[str, Any]:
    return {
        "index": c.index,
        "text": c.text,
        "finish_reason": c.finish_reason,
        "tool_calls": [[t.id, t.name, t.arguments] for t in c.tool_calls],
        "logprobs": None if c.logprobs is None else [_dump_logprob(lp) for lp in c.logprobs],
    }


def _dump_logprob(lp: TokenLogprob) -> list[Any]:
    return [
        lp.token,
        lp.logprob,
        list(lp.bytes),
        [[t.token, t.logprob, list(t.bytes)] for t in lp.top],
    ]


def _load_logprob(raw: list[Any]) -> TokenLogprob:
    token, logprob, data, top = raw
    return TokenLogprob(
        token, logprob, tuple(data), tuple(TopLogprob(t, p, tuple(b)) for t, p, b in top)
    )
