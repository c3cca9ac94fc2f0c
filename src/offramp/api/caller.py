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
    wanted = _read(request.scope["headers"])
    resolver: KeyResolver | None = request.app.state.keys
    key = None
    if resolver is not None:
        key = await resolver.resolve(_bearer(wanted.get(b"authorization")) or _api_key(wanted))
    cache_control = wanted.get(b"cache-control", "").lower()
    use_cache = "no-cache" not in cache_control and "no-store" not in cache_control
    request_id = request.scope.get("state", {}).get("request_id") or "unknown"
    session = wanted.get(_SESSION, "").strip()[:256] or None
    return Caller(request_id=request_id, key=key, use_cache=use_cache, session=session)


_SESSION = SESSION_HEADER.encode()
_READ = frozenset({b"authorization", b"x-api-key", b"cache-control", _SESSION})


def _read(headers: list[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The headers this module reads, from the raw list in one pass (the first of each)."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name in _READ and name not in found:
            found[name] = value.decode("latin-1")
    return found


def _bearer(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _api_key(headers: dict[bytes, str]) -> str | None:
    value = headers.get(b"x-api-key", "").strip()
    return value or None
