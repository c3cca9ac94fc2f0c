"""EmbedBatcher: requests that wait together are encoded in one pass, each gets its rows."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from offramp.errors import ContextLengthExceeded
from offramp.providers.embed_batcher import EmbedBatcher, Vectors


def _encoder(calls: list[list[str]], gate: threading.Event, busy: threading.Event) -> object:
    def encode(texts: list[str]) -> Vectors:
        busy.set()
        gate.wait(5)
        calls.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    return encode


@dataclass(frozen=True)
class _Plan:
    pieces: tuple[str, ...]
    tokens: int


def _check(texts: tuple[str, ...]) -> _Plan:
    if any(t == "bad" for t in texts):
        raise ContextLengthExceeded("too long", param="input")
    return _Plan(texts, sum(len(t) for t in texts))


def test_waiting_requests_share_one_encode_and_get_their_own_rows() -> None:
    calls: list[list[str]] = []
    gate, busy = threading.Event(), threading.Event()
    batcher = EmbedBatcher(
        plan=_check,
        encode=_encoder(calls, gate, busy),
        window=0.0,
        max_texts=64,  # type: ignore[arg-type]
    )
    try:
        first = batcher.submit(("a",))  # occupies the worker until the gate opens
        assert busy.wait(5)
        later = [batcher.submit(("b" * n, "c" * n)) for n in range(2, 6)]
        bad = batcher.submit(("bad",))
        gate.set()
        assert first.result(5)[0][0, 0] == 1.0
        for n, future in zip(range(2, 6), later, strict=True):
            rows, plan = future.result(5)
            assert rows[:, 0].tolist() == [float(n), float(n)]
            assert plan.tokens == 2 * n
        with pytest.raises(ContextLengthExceeded):
            bad.result(5)
        assert calls[0] == ["a"]
        assert len(calls) == 2  # the four that waited were encoded together
        assert len(calls[1]) == 8
    finally:
        batcher.close()


def test_a_failing_encode_fails_its_requests_not_the_worker() -> None:
    state = {"fail": True}

    def encode(texts: list[str]) -> Vectors:
        if state.pop("fail", False):
            raise RuntimeError("boom")
        return np.ones((len(texts), 2), dtype=np.float32)

    batcher = EmbedBatcher(plan=_check, encode=encode, window=0.0, max_texts=8)
    try:
        with pytest.raises(Exception, match="embedding failed: boom"):
            batcher.submit(("x",)).result(5)
        assert batcher.submit(("y",)).result(5)[0].shape == (1, 2)
    finally:
        batcher.close()
