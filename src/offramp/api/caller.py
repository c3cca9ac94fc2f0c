"""Who is calling: the API key (when auth is on), the request id, cache permission."""

from __future__ import annotations

from fastapi import Request

from offramp.gateway.accounting import Caller
from offramp.keys.auth import KeyResolver

SESSION_HEADER = "x-session-id"  # the client's session, for experiments sticky by session


async def caller_of(request: Request) -> Caller:
    """A FastAPI dependency of the /v1 routes; raises AuthenticationFailed (401) when
    auth is on and the key is missing, unknown or revoked. The key is read from
    ``Authorization: Bearer KEY`` (OpenAI's clients) or, without one, from
    ``x-api-key: KEY`` (Anthropic's)."""
    resolver: KeyResolver | None = request.app.state.keys
    key = None
    if resolver is not None:
        key = await resolver.resolve(_bearer(request) or _api_key_header(request))
    cache_control = request.headers.get("cache-control", "").lower()
    use_cache = "no-cache" not in cache_control and "no-store" not in cache_control
    request_id = getattr(request.state, "request_id", None) or "unknown"
    session = request.headers.get(SESSION_HEADER, "").strip()[:256] or None
    return Caller(request_id=request_id, key=key, use_cache=use_cache, session=session)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _api_key_header(request: Request) -> str | None:
    value = request.headers.get("x-api-key", "").strip()
    return value or None
