"""API keys in the ledger database. Only a key's SHA-256 is stored; the secret is shown
once, when the key is created."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update

from offramp.errors import InvalidRequest
from offramp.ledger.schema import api_keys, usage

SECRET_PREFIX = "sk-offramp-"


@dataclass(frozen=True)
class ApiKey:
    """A key's identity and policy; ``None`` limits are unlimited, ``models`` None allows all."""

    id: str
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    models: tuple[str, ...] | None = None

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Creates, lists, finds and revokes keys; every call is one short transaction."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def create(
        self,
        name: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        models: tuple[str, ...] | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (returned only here)."""
        for param, value in (("rpm", rpm), ("tpm", tpm), ("budget_usd", budget_usd)):
            if value is not None and value <= 0:
                raise InvalidRequest(f"{param} must be positive, got {value}", param=param)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            name=name,
            prefix=secret[: len(SECRET_PREFIX) + 4],
            created_at=time.time(),
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            models=models,
        )
        row = _row(key) | {"secret_hash": hash_secret(secret)}
        with self._engine.begin() as conn:
            conn.execute(api_keys.insert().values(**row))
        return key, secret

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self._engine.connect() as conn:
            return [_key(r._mapping) for r in conn.execute(query)]

    def find(self, secret: str) -> ApiKey | None:
        """The key whose secret this is (revoked ones too), or None."""
        query = select(api_keys).where(api_keys.c.secret_hash == hash_secret(secret))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _key(row._mapping)

    def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id``; False if no such live key."""
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
        with self._engine.begin() as conn:
            return bool(conn.execute(query).rowcount)

    def spent(self, key_id: str) -> float:
        """What the ledger says ``key_id`` has spent (USD)."""
        query = select(func.coalesce(func.sum(usage.c.cost_usd), 0.0)).where(
            usage.c.key_id == key_id
        )
        with self._engine.connect() as conn:
            return float(conn.execute(query).scalar_one())


def _row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "budget_usd": key.budget_usd,
        "models": None if key.models is None else json.dumps(list(key.models)),
    }


def _key(row: Any) -> ApiKey:
    models = row["models"]
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        budget_usd=row["budget_usd"],
        models=None if models is None else tuple(json.loads(models)),
    )
