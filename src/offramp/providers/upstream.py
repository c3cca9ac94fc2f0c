"""How to reach one upstream API deployment: the part of a route's deployment entry that
its provider reads. Upstream providers are built from this, not from a model file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from offramp.errors import InvalidRequest


class UpstreamSpec(BaseModel):
    """One upstream model behind an HTTP API.

    ``backend`` names the provider in the registry (``openai-compatible``, ``openai``, ...);
    ``model`` is the name the upstream knows the model by. The API key is read from the
    environment variable ``api_key_env`` when the provider is built, never from the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field(min_length=1)
    model: str = Field(min_length=1)
    base_url: str | None = Field(
        default=None, description="Root of the API, e.g. http://127.0.0.1:8080/v1."
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable that holds the API key."
    )
    timeout_s: float | None = Field(
        default=60.0, gt=0, description="Seconds to wait for a connection or for each read."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers sent with every request."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend-specific knobs, checked by the backend."
    )

    def api_key(self, *, required: bool) -> str | None:
        """The key from ``api_key_env``; InvalidRequest (param ``config``) when a required
        key, or a named variable, is unset."""
        if self.api_key_env is None:
            if required:
                raise InvalidRequest(
                    f"deployment {self.backend}/{self.model} needs `api_key_env`: the name of "
                    "the environment variable holding its API key",
                    param="config",
                )
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise InvalidRequest(
                f"deployment {self.backend}/{self.model} reads its API key from "
                f"${self.api_key_env}, which is not set",
                param="config",
            )
        return key


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds an upstream asks to wait, from ``retry-after-ms`` or ``Retry-After``
    (delta-seconds or HTTP date); None if it names none."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - now)
    except (TypeError, ValueError):
        return None
