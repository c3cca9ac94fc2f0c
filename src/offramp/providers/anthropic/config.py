"""What an Anthropic deployment configures: where the API is, which key, how long to wait.

Two config shapes lead here. A route's upstream deployment (``provider: anthropic`` with
``model``, ``base_url``, ``api_key_env``, ``timeout_s``, ``headers`` and ``options``) comes
through ``from_upstream``; a ``models:`` entry with ``backend: anthropic`` keeps the same
keys flat in its ``options`` and comes through ``from_options``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from offramp.errors import InvalidRequest

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
API_VERSION = "2023-06-01"
FALLBACK_MAX_TOKENS = 4096


class UpstreamEntry(Protocol):
    """The fields of a route's upstream deployment that this provider reads."""

    @property
    def model(self) -> str: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def api_key_env(self) -> str | None: ...
    @property
    def timeout_s(self) -> float | None: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def options(self) -> Mapping[str, Any]: ...


class AnthropicConfig(BaseModel):
    """One upstream Claude model and how to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="The upstream model name, e.g. claude-sonnet-4-5.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="Root URL of the Messages API.")
    api_key_env: str = Field(
        default=DEFAULT_KEY_ENV, min_length=1, description="Environment variable with the key."
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="Seconds one request may wait to connect or per read."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers (e.g. anthropic-beta)."
    )
    default_max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="max_tokens sent when a request names none (the Messages API requires "
        "one); None uses the server's default_max_tokens, then 4096.",
    )
    concurrency: int = Field(
        default=64, ge=1, description="Requests sent upstream at once; more wait in the queue."
    )
    max_connections: int = Field(default=64, ge=1, description="Pooled HTTP connections.")
    anthropic_version: str = Field(default=API_VERSION, description="anthropic-version header.")

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> AnthropicConfig:
        """A ``models:`` entry's ``options``; InvalidRequest (param ``config``) if bad."""
        return _validated(name, dict(options))

    @classmethod
    def from_upstream(cls, entry: UpstreamEntry) -> AnthropicConfig:
        """A route deployment's fields, its ``options`` holding the rest; None keeps a default."""
        given: dict[str, Any] = {
            "model": entry.model,
            "base_url": entry.base_url,
            "api_key_env": entry.api_key_env,
            "timeout_s": entry.timeout_s,
        }
        fields = {k: v for k, v in given.items() if v is not None}
        for key in entry.options:
            if key in given or key == "headers":
                raise InvalidRequest(
                    f"deployment anthropic/{entry.model}: give {key!r} on the deployment, "
                    "not in its options",
                    param="config",
                )
        values = {**fields, "headers": dict(entry.headers), **entry.options}
        return _validated(f"anthropic/{entry.model}", values)

    def api_key(self, name: str) -> str:
        """The key from ``api_key_env``; a one-line InvalidRequest (``config``) when unset."""
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise InvalidRequest(
                f"{name} (anthropic) reads its API key from ${self.api_key_env}, which is not set",
                param="config",
                code="missing_api_key",
            )
        return key


def _validated(name: str, values: dict[str, Any]) -> AnthropicConfig:
    try:
        return AnthropicConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise InvalidRequest(f"{name}: {where}: {first['msg']}", param="config") from exc
