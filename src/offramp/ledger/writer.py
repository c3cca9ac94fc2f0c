"""Writes usage records in batches on its own thread, off the request path.

``submit`` never blocks a request: records wait in a bounded queue and the writer thread
inserts them a batch at a time. ``close`` writes everything still queued, so a clean
shutdown loses nothing. A full queue (the database far behind) drops new records and
counts them in ``dropped``; a failing database is retried a few times per batch.

The queue is a plain deque and ``submit`` does not wake the thread: the thread wakes
every ``flush_s`` and takes what has gathered. Waking it for each record (a condition
variable) made every request hand the GIL to the writer and back, which cost the serving
thread more than the insert itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
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
        self._queue: deque[T] = deque()
        self._max_queue = max_queue
        self._flush_s = flush_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._closed = False
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"ledger-writer-{self._what}", daemon=True
            )
            self._thread.start()

    def submit(self, record: T) -> None:
        """Queue ``record`` for writing; never blocks (drops and counts when full). After
        ``close`` (a stream a drain cut, ending after shutdown began) it is written at once."""
        if self._closed:
            self._write([record])
            return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s ledger queue full: %d records dropped", self._what, self.dropped)
            return
        self._queue.append(record)  # atomic; the thread takes it at its next wake-up

    def depth(self) -> int:
        """Records waiting to be written."""
        return len(self._queue)

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued record, then stop the thread."""
        if self._thread is None:
            return
        self._stop.set()
        thread, self._thread = self._thread, None
        thread.join(timeout)
        if thread.is_alive():  # still writing a slow batch: it drains the rest itself
            return
        self._closed = True
        while self._queue:  # submitted while the thread made its last pass
            self._write([self._queue.popleft() for _ in range(min(len(self._queue), _MAX_BATCH))])

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self._flush_s)
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), _MAX_BATCH))]
                self._write(batch)
            if stopping:
                return

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
