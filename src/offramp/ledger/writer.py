"""Writes usage records in batches on its own thread, off the request path.

``submit`` never blocks a request: records wait in a bounded queue and the writer thread
inserts them a batch at a time. ``close`` writes everything still queued, so a clean
shutdown loses nothing. A full queue (the database far behind) drops new records and
counts them in ``dropped``; a failing database is retried a few times per batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_BATCH = 500
_ATTEMPTS = 3


class LedgerWriter(Generic[T]):
    """A bounded queue of records (usage records, captured samples) and the thread that
    drains it into ``sink``; ``what`` names them in logs and the thread's name."""

    def __init__(
        self,
        sink: Callable[[Sequence[T]], None],
        *,
        max_queue: int,
        flush_s: float,
        what: str = "usage",
    ):
        self._sink = sink
        self._what = what
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=max_queue)
        self._flush_s = flush_s
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"ledger-writer-{self._what}", daemon=True
            )
            self._thread.start()

    def submit(self, record: T) -> None:
        """Queue ``record`` for writing; never blocks (drops and counts when full)."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s ledger queue full: %d records dropped", self._what, self.dropped)

    def depth(self) -> int:
        """Records waiting to be written."""
        return self._queue.qsize()

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued record, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)  # the stop mark, after every record
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[T] = []
            item = self._queue.get()
            deadline = time.monotonic() + self._flush_s
            while item is not None:
                batch.append(item)
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
                except queue.Empty:
                    break
            stopping = item is None
            self._write(batch)

    def _write(self, batch: list[T]) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            if not batch:
                return
            try:
                self._sink(batch)
            except Exception as exc:
                log.error("%s ledger write failed (attempt %d): %s", self._what, attempt, exc)
                time.sleep(0.5 * attempt)
                continue
            self.written += len(batch)
            return
        self.dropped += len(batch)
