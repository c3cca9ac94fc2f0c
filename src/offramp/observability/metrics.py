"""Prometheus metrics of one app, in the app's own registry (no process globals)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

_BREAKER_STATES = ("closed", "open", "half-open")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class Gauges:
    """Readings taken at scrape time from the parts that own them."""

    queue_depth: Callable[[], Mapping[str, int]] = dict
    ledger_queue: Callable[[], int] = lambda: 0
    ledger_dropped: Callable[[], int] = lambda: 0
    redis_failures: Callable[[], int] = lambda: 0
    # (route, deployment, state) for every deployment's circuit breaker
    breakers: Callable[[], Iterable[tuple[str, str, str]]] = tuple


class _Readings:
    def __init__(self, gauges: Gauges):
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "offramp_queue_depth", "Requests running or waiting per model", labels=["model"]
        )
        for model, n in sorted(self._gauges.queue_depth().items()):
            depth.add_metric([model], n)
        yield depth
        yield GaugeMetricFamily(
            "offramp_ledger_queue_depth",
            "Usage records waiting to be written",
            value=self._gauges.ledger_queue(),
        )
        yield CounterMetricFamily(
            "offramp_ledger_dropped",
            "Usage records dropped (queue full or database failing)",
            value=self._gauges.ledger_dropped(),
        )
        yield CounterMetricFamily(
            "offramp_redis_failures",
            "Times Redis failed and the in-process path took over",
            value=self._gauges.redis_failures(),
        )
        states = GaugeMetricFamily(
            "offramp_breaker_state",
            "1 for the state each deployment's circuit breaker is in",
            labels=["route", "deployment", "state"],
        )
        for route, deployment, state in self._gauges.breakers():
            for each in _BREAKER_STATES:
                states.add_metric([route, deployment, each], 1.0 if each == state else 0.0)
        yield states


@dataclass(frozen=True)
class _Served:
    requests: Counter
    latency: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter
    cost: Counter
    openai_cost: Counter


class Metrics:
    """Counters and histograms the accounting updates per request; ``render`` is the
    text exposition ``/metrics`` serves."""

    def __init__(self, gauges: Gauges | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "offramp_requests", "Model requests", ["endpoint", "model", "status"], registry=r
        )
        self.latency = Histogram(
            "offramp_request_latency_seconds",
            "Time to the whole answer",
            ["endpoint", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "offramp_time_to_first_token_seconds",
            "Time to the first streamed token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("offramp_tokens", "Tokens", ["model", "kind"], registry=r)
        self.cost = Counter("offramp_cost_usd", "Spend", ["model"], registry=r)
        self.openai_cost = Counter(
            "offramp_openai_equivalent_cost_usd",
            "OpenAI list price of the same",
            ["model"],
            registry=r,
        )
        self.cache_lookups = Counter("offramp_cache_lookups", "Cache lookups", ["kind"], registry=r)
        self.cache_hits = Counter("offramp_cache_hits", "Cache hits", ["kind"], registry=r)
        r.register(_Readings(gauges or Gauges()))
        self._served: dict[tuple[str, str], _Served] = {}

    def served(self, endpoint: str, model: str) -> _Served:
        """The series one served request (status 200) of ``endpoint`` and ``model``
        updates, looked up once per pair (``labels`` takes a lock and builds a key)."""
        pair = (endpoint, model)
        found = self._served.get(pair)
        if found is None:
            found = self._served[pair] = _Served(
                self.requests.labels(endpoint, model, "200"),
                self.latency.labels(endpoint, model),
                self.tokens.labels(model, "prompt"),
                self.tokens.labels(model, "completion"),
                self.cost.labels(model),
                self.openai_cost.labels(model),
            )
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
