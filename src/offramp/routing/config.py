"""The ``routes:`` section of the YAML config, validated.

routes:
  - name: gpt-4o-mini                 # the public name clients ask for
    aliases: [chat-default]
    strategy: priority                # priority | weighted | least-latency | cheapest
    deadline_s: 60                    # one deadline for every attempt of a request
    retry: {max_attempts: 4, base_delay_s: 0.25, max_delay_s: 8, jitter: 0.5}
    breaker: {failure_threshold: 5, cooldown_s: 30}
    outlier_detection: {latency_factor: 3, min_latency_s: 1, base_ejection_s: 30}
    capture: {sample_rate: 0.5}       # keep served requests as samples (off by default)
    shadow: {route: gpt-4o, share: 0.3}  # a teacher's answer as the samples' reference
    deployments:
      - model: smollm2-135m-instruct  # no provider: an entry of `models:`
      - provider: openai              # an upstream backend of the provider registry
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
        timeout_s: 20
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from offramp.errors import InvalidRequest
from offramp.providers.upstream import UpstreamSpec
from offramp.settings import read_config_file
from offramp.types import Kind

Strategy = Literal["priority", "weighted", "least-latency", "cheapest"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceSpec(_Spec):
    """USD per million tokens; ``cached_input`` and ``cache_write`` default to ``input``."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class RetrySpec(_Spec):
    """How often and how patiently one request is tried, across all deployments."""

    max_attempts: int | None = Field(
        default=None, ge=1, description="Attempts per request in all; None: deployments + 2."
    )
    base_delay_s: float = Field(default=0.25, ge=0, description="First backoff delay.")
    max_delay_s: float = Field(default=8.0, ge=0, description="Cap on one backoff delay.")
    jitter: float = Field(
        default=0.5, ge=0, le=1, description="Each delay is cut by a random share up to this."
    )


class BreakerSpec(_Spec):
    """The circuit breaker each deployment of the route gets."""

    enabled: bool = True
    failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open the circuit."
    )
    cooldown_s: float = Field(
        default=30.0, ge=0, description="How long an open circuit refuses before one probe."
    )
    half_open_probes: int = Field(
        default=1, ge=1, description="Requests let through at once while half-open."
    )


class OutlierSpec(_Spec):
    """Ejection of a deployment that answers far slower than the route's others."""

    enabled: bool = Field(default=True, description="Whether slow deployments are ejected.")
    latency_factor: float = Field(
        default=3.0,
        gt=1,
        description="Ejected when its median latency exceeds this many times the median "
        "of the other deployments' medians.",
    )
    min_latency_s: float = Field(
        default=1.0, ge=0, description="A deployment answering faster than this is never ejected."
    )
    window: int = Field(default=20, ge=1, description="Recent answers each median is taken over.")
    min_samples: int = Field(
        default=5, ge=1, description="Answers a deployment needs before its median counts."
    )
    base_ejection_s: float = Field(
        default=30.0, gt=0, description="First ejection; the n-th in a row lasts n times this."
    )
    max_ejection_s: float = Field(default=300.0, gt=0, description="Cap on one ejection.")

    @model_validator(mode="after")
    def _samples_fit(self) -> OutlierSpec:
        if self.min_samples > self.window:
            raise ValueError("outlier_detection: min_samples must not exceed window")
        return self


class DeploymentSpec(_Spec):
    """One way to serve a route: a configured model, or a model behind an upstream API."""

    provider: str | None = Field(
        default=None,
        description="An upstream backend (openai-compatible, openai, ...); None: `model` "
        "names an entry of `models:`.",
    )
    model: str = Field(min_length=1)
    name: str | None = Field(default=None, description="Shown in headers and /admin/routes.")
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = Field(
        default=60.0, gt=0, description="Limit on one attempt (to the first token when streaming)."
    )
    weight: float = Field(default=1.0, gt=0, description="Share of traffic under `weighted`.")
    price: PriceSpec | None = Field(
        default=None, description="Overrides the price table; local models default to 0."
    )
    headers: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        return f"{self.provider}/{self.model}" if self.provider else f"local/{self.model}"

    def upstream(self) -> UpstreamSpec:
        """The provider's part of this entry (only for deployments with a ``provider``)."""
        assert self.provider is not None
        return UpstreamSpec(
            backend=self.provider,
            model=self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            timeout_s=self.timeout_s,
            headers=self.headers,
            options=self.options,
        )


class CaptureSpec(_Spec):
    """Capture of served requests as samples (``capture: true`` is ``{sample_rate: 1}``)."""

    enabled: bool = Field(default=True, description="`capture: false` turns it off.")
    sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Share of served requests that are captured."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


class ShadowSpec(_Spec):
    """Shadow mode: the answer comes from the route itself; a sampled ``share`` of its
    served requests is sent again, in the background, to the teacher ``route`` (through
    the gateway, endpoint ``shadow``) and the teacher's answer stored as the captured
    sample's reference. The teacher never delays or fails the client's answer."""

    route: str = Field(min_length=1, description="The teacher: a route or model name.")
    share: float = Field(default=1.0, ge=0, le=1, description="Share of requests shadowed.")
    timeout_s: float | None = Field(
        default=None, gt=0, description="Teacher time limit; None: `shadow_timeout_s`."
    )


class InContextSpec(_Spec):
    """In-context examples: the ``k`` captured samples (of the same route or task) most
    similar to a request's last user message, inserted as earlier turns of its prompt."""

    k: int = Field(default=4, ge=1, le=32, description="Examples inserted at most.")
    metric: str | None = Field(
        default=None, description="Only samples whose latest feedback on this metric..."
    )
    min_value: float = Field(default=1.0, description="...is at least this.")
    embedding_model: str = Field(
        default="text-embedding-3-small", min_length=1, description="Embeds the messages."
    )
    refresh_s: float = Field(
        default=60.0, ge=0, description="How often the candidates are read from the ledger."
    )
    max_candidates: int = Field(
        default=2000, ge=1, description="The newest samples considered at most."
    )


class RouteSpec(_Spec):
    """A public model name and the deployments that serve it."""

    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    kind: Kind = "chat"
    strategy: Strategy = "priority"
    deployments: tuple[DeploymentSpec, ...] = Field(min_length=1)
    deadline_s: float | None = Field(
        default=120.0, gt=0, description="Every attempt and backoff of one request fits in it."
    )
    retry: RetrySpec = RetrySpec()
    breaker: BreakerSpec = BreakerSpec()
    outlier_detection: OutlierSpec = OutlierSpec()
    openai_equivalent: str | None = Field(
        default=None,
        description="OpenAI model whose list price the x-offramp-openai-equivalent-usd "
        "header uses; None: the name asked for if OpenAI prices it, else the table default.",
    )
    capture: CaptureSpec | None = Field(
        default=None, description="Capture this route's served requests as samples."
    )
    shadow: ShadowSpec | None = Field(
        default=None, description="Send a share of requests to a teacher in the background."
    )
    in_context: InContextSpec | None = Field(
        default=None, description="Put the most similar good captured samples in the prompt."
    )

    @model_validator(mode="after")
    def _unique_deployments(self) -> RouteSpec:
        ids = [d.id for d in self.deployments]
        if len(set(ids)) != len(ids):
            raise ValueError(f"route {self.name!r} lists a deployment twice; give each a `name`")
        if self.shadow is not None and self.shadow.route in (self.name, *self.aliases):
            raise ValueError(f"route {self.name!r} cannot shadow itself")
        return self

    @property
    def attempts(self) -> int:
        return self.retry.max_attempts or len(self.deployments) + 2


def load_routes(config: Path | None) -> list[RouteSpec]:
    """The ``routes:`` list of ``config`` (empty when absent or no file is given)."""
    if config is None:
        return []
    raw = read_config_file(config).get("routes") or []
    if not isinstance(raw, list):
        raise InvalidRequest(f"`routes` in {config} must be a list", param="config")
    try:
        return [RouteSpec.model_validate(item) for item in raw]
    except ValidationError as exc:
        raise InvalidRequest(f"config file {config}: routes: {exc}", param="config") from exc
