"""What the ledger stores about one request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsageRecord:
    """One request that reached a model: who asked, what served it, what it cost, how fast.

    ``model`` is the name the client asked for, ``route`` the route that handled it and
    ``deployment`` the model that served it (the same as ``route`` for local models).
    ``cost_usd`` is what serving it cost; ``openai_cost_usd`` what OpenAI's list price for
    ``model`` would have been. ``status`` is the HTTP status the client saw (499: it left).
    """

    request_id: str
    ts: float
    endpoint: str
    model: str
    route: str | None
    deployment: str | None
    status: int
    key_id: str | None = None
    end_user: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    openai_cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cache_hit: bool = False
    stream: bool = False
    error_code: str | None = None
    task: str | None = None  # the task a task run (endpoint ``task``) ran
    experiment: str | None = None  # the route's experiment (or rollout) that assigned an arm
    arm: str | None = None  # the arm of ``experiment`` that served the request
