"""Recent health of one deployment: latency and error rate over its last requests."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median


@dataclass
class DeploymentStats:
    """Outcomes of the last ``window`` attempts, and a smoothed latency.

    Latency is the time until the answer started: the whole answer for plain requests,
    the first content for streams. ``ewma_ms`` is None until the first success.
    """

    window: int = 100
    alpha: float = 0.2
    ewma_ms: float | None = None
    requests: int = 0
    failures: int = 0
    in_flight: int = 0
    _recent: deque[tuple[bool, float]] = field(default_factory=deque)

    def record(self, ok: bool, seconds: float) -> None:
        ms = seconds * 1000
        self.requests += 1
        if ok:
            self.ewma_ms = (
                ms if self.ewma_ms is None else self.ewma_ms + self.alpha * (ms - self.ewma_ms)
            )
        else:
            self.failures += 1
        self._recent.append((ok, ms))
        if len(self._recent) > self.window:
            self._recent.popleft()

    def error_rate(self) -> float:
        """Share of the recent attempts that failed (0 with none)."""
        if not self._recent:
            return 0.0
        return sum(1 for ok, _ in self._recent if not ok) / len(self._recent)

    def p50_ms(self) -> float | None:
        """Median latency of the recent successes."""
        oks = [ms for ok, ms in self._recent if ok]
        return median(oks) if oks else None
