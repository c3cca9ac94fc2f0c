"""What a hard-coded API host becomes: an endpoint read from the SDK's own environment
variable, defaulting to a local offramp, plus the rest of the original path."""

from __future__ import annotations

from dataclasses import dataclass

from offramp.migrate.scan.sites import (
    API_URL,
    OFFRAMP_ANTHROPIC_URL,
    OFFRAMP_URL,
    Sdk,
    base_url_var,
    url_sdk,
)


@dataclass(frozen=True)
class Endpoint:
    """``var`` with ``default``; ``strip_v1`` when the path that follows starts above /v1."""

    var: str
    default: str
    rest: str = ""
    strip_v1: bool = False


def for_client(sdk: Sdk) -> Endpoint:
    """The endpoint a client of ``sdk`` is built on (Azure clients become OpenAI clients)."""
    var = base_url_var(sdk)
    return Endpoint(var, OFFRAMP_ANTHROPIC_URL if var == "ANTHROPIC_BASE_URL" else OFFRAMP_URL)


def for_url(url: str) -> Endpoint | None:
    """The endpoint and remaining path for a URL on a vendor's host; None for an Azure
    REST URL (its deployment paths have no equivalent to rewrite to)."""
    match = API_URL.match(url)
    if match is None:
        return None
    sdk = url_sdk(match.group(1))
    if sdk == "azure-openai":
        return None
    path = url[match.end(1) :]
    if sdk == "anthropic":
        return Endpoint("ANTHROPIC_BASE_URL", OFFRAMP_ANTHROPIC_URL, path)
    if path == "/v1" or path.startswith(("/v1/", "/v1?")):
        return Endpoint("OPENAI_BASE_URL", OFFRAMP_URL, path[3:])
    return Endpoint("OPENAI_BASE_URL", OFFRAMP_URL, path, strip_v1=True)
