"""Turns a bearer secret into its ApiKey, without a database query on most requests."""

from __future__ import annotations

import asyncio
import time

from offramp.errors import AuthenticationFailed
from offramp.keys.store import ApiKey, KeyStore


class KeyResolver:
    """Looks keys up in the store and remembers them for ``ttl_s`` seconds (so a
    revocation takes effect within ``ttl_s`` on every replica)."""

    def __init__(self, store: KeyStore, ttl_s: float = 10.0):
        self._store = store
        self._ttl_s = ttl_s
        self._seen: dict[str, tuple[float, ApiKey | None]] = {}

    async def resolve(self, secret: str | None) -> ApiKey:
        """The live key for ``secret``; AuthenticationFailed if missing, unknown or revoked."""
        if not secret:
            raise AuthenticationFailed(
                "You didn't provide an API key. Pass it as 'Authorization: Bearer KEY' "
                "or 'x-api-key: KEY'."
            )
        now = time.monotonic()
        entry = self._seen.get(secret)
        if entry is None or entry[0] <= now:
            key = await asyncio.to_thread(self._store.find, secret)
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[secret] = (now + self._ttl_s, key)
        else:
            key = entry[1]
        if key is None or key.revoked_at is not None:
            shown = secret[:8] + "..." if len(secret) > 8 else "***"
            raise AuthenticationFailed(f"Incorrect API key provided: {shown}")
        return key

    def forget(self, key_id: str) -> None:
        """Drop what is remembered of ``key_id`` (after revoking it here, so the
        revocation takes effect on this replica at once)."""
        self._seen = {
            secret: entry
            for secret, entry in self._seen.items()
            if entry[1] is None or entry[1].id != key_id
        }
