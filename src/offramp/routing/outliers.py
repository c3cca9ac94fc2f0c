"""Ejection of slow deployments, after Envoy's outlier detection: a deployment that is
alive but answers far slower than the route's others is set aside for a while, so it does
not eat the requests' deadlines.

After each answer slower than ``min_latency_s``, the deployment's median latency over its
last ``window`` answers is compared with the median of the other deployments' medians
(each over at least ``min_samples`` answers, ejected ones left out). Above
``latency_factor`` times that, it is ejected for ``base_ejection_s`` times n, where n counts
its ejections in a row (capped at ``max_ejection_s``); n starts over once it has gone as
long as its last ejection lasted without another. An ejection clears its samples, so it
returns judged on fresh answers. The last deployment that is neither ejected nor has an
open circuit is never ejected, and an ejected one is still tried when no other deployment
can take a request at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median

from offramp.routing.config import OutlierSpec
from offramp.routing.deployment import Deployment


@dataclass
class _Record:
    recent: deque[float]
    until: float = 0.0  # ejected until this time on the clock
    streak: int = 0  # ejections in a row
    ejections: int = 0
    last: float | None = None  # when it was last ejected


class Outliers:
    """The ejection state of one route's deployments."""

    def __init__(
        self, spec: OutlierSpec, deployments: Sequence[Deployment], clock: Callable[[], float]
    ):
        self._spec = spec
        self._deployments = tuple(deployments)
        self._clock = clock
        self._records = {d.id: _Record(deque(maxlen=spec.window)) for d in deployments}
        self._enabled = spec.enabled and len(self._deployments) > 1

    def ejected(self, deployment: Deployment) -> bool:
        """Whether ``deployment`` is ejected now."""
        return self._enabled and self._clock() < self._records[deployment.id].until

    def ejected_for(self, deployment: Deployment) -> float:
        """Seconds its ejection still lasts (0 when not ejected)."""
        return max(0.0, self._records[deployment.id].until - self._clock())

    def ejections(self, deployment: Deployment) -> int:
        """Times it has been ejected."""
        return self._records[deployment.id].ejections

    def last_ejected(self, deployment: Deployment) -> float | None:
        """When (on the clock) it was last ejected; None if never."""
        return self._records[deployment.id].last

    def answered(self, deployment: Deployment, seconds: float) -> None:
        """``deployment`` answered after ``seconds``; ejects it if that makes it an outlier."""
        if not self._enabled:
            return
        record = self._records[deployment.id]
        record.recent.append(seconds)
        if seconds < self._spec.min_latency_s or len(record.recent) < self._spec.min_samples:
            return
        if self.ejected(deployment) or median(record.recent) < self._spec.min_latency_s:
            return
        baseline = self._baseline(deployment)
        if baseline is None or median(record.recent) <= self._spec.latency_factor * baseline:
            return
        if any(self._healthy(d) for d in self._deployments if d is not deployment):
            self._eject(record)

    def _baseline(self, deployment: Deployment) -> float | None:
        medians = [
            median(self._records[d.id].recent)
            for d in self._deployments
            if d is not deployment
            and len(self._records[d.id].recent) >= self._spec.min_samples
            and not self.ejected(d)
        ]
        return median(medians) if medians else None

    def _healthy(self, deployment: Deployment) -> bool:
        return not self.ejected(deployment) and deployment.breaker.state == "closed"

    def _eject(self, record: _Record) -> None:
        now = self._clock()
        if record.streak and now - record.until >= self._duration(record.streak):
            record.streak = 0
        record.streak += 1
        record.ejections += 1
        record.until = now + self._duration(record.streak)
        record.last = now
        record.recent.clear()

    def _duration(self, streak: int) -> float:
        return min(self._spec.max_ejection_s, self._spec.base_ejection_s * streak)
