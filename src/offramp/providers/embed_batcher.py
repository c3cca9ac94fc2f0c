"""Dynamic batching for embeddings: requests that arrive together are encoded together.

One worker thread owns the model. It takes the first waiting request, gathers whatever
else arrives within ``window`` seconds (up to ``max_texts`` texts), plans each request on
its own (one bad request fails alone), encodes every accepted plan's pieces in one pass
and hands each request the rows of its pieces with its plan. Works for callers on any
event loop, or none.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from offramp.errors import OfframpError, ProviderError

Vectors = npt.NDArray[np.float32]


class Plan(Protocol):
    """What one request asks the model to encode."""

    @property
    def pieces(self) -> tuple[str, ...]: ...


P = TypeVar("P", bound=Plan)


@dataclass
class _Item(Generic[P]):
    texts: tuple[str, ...]
    future: Future[tuple[Vectors, P]]


class EmbedBatcher(Generic[P]):
    """``submit(texts)`` -> Future of (rows, plan): ``plan(texts)``, and one row per piece."""

    def __init__(
        self,
        *,
        plan: Callable[[tuple[str, ...]], P],
        encode: Callable[[list[str]], Vectors],
        window: float,
        max_texts: int,
    ):
        self._plan = plan  # raises an OfframpError for a bad request
        self._encode = encode
        self._window = window
        self._max_texts = max_texts
        self._queue: queue.Queue[_Item[P] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="embed-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: tuple[str, ...]) -> Future[tuple[Vectors, P]]:
        future: Future[tuple[Vectors, P]] = Future()
        self._queue.put(_Item(texts, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            count = len(first.texts)
            deadline = time.monotonic() + self._window
            closing = False
            while count < self._max_texts:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
                count += len(item.texts)
            self._run(batch)
            if closing:
                return

    def _run(self, batch: list[_Item[P]]) -> None:
        accepted: list[tuple[_Item[P], P]] = []
        for item in batch:
            if not item.future.set_running_or_notify_cancel():
                continue  # its caller went away
            try:
                accepted.append((item, self._plan(item.texts)))
            except OfframpError as exc:
                item.future.set_exception(exc)
        if not accepted:
            return
        texts = [t for _, plan in accepted for t in plan.pieces]
        try:
            vectors = self._encode(texts)
        except Exception as exc:  # the model failing must fail these requests, not the thread
            for item, _ in accepted:
                item.future.set_exception(ProviderError(f"embedding failed: {exc}"))
            return
        offset = 0
        for item, plan in accepted:
            rows = vectors[offset : offset + len(plan.pieces)]
            offset += len(plan.pieces)
            item.future.set_result((rows, plan))
