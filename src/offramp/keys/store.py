"""API keys in the ledger database. Only a key's SHA-256 is stored; the secret is shown
once, when the key is created."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update

from offramp.errors import InvalidRequest
from offramp.ledger.schema import api_keys, usage

SECRET_PREFIX = "sk-offramp-"
MAX_COUNT = 2**31 - 1  # rpm/tpm: the ledger's INTEGER columns (PostgreSQL's int4)
MAX_BUDGET_USD = 1e9
MAX_NAME = 128  # the ledger's name and model columns
MAX_MODELS = 256


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
        """A new key and its secret (returned only here); InvalidRequest naming the field
        for a limit of the wrong type or out of bounds, or a name too long to store."""
        check_key_fields(name, rpm, tpm, budget_usd, models)
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


def check_key_fields(
    name: str,
    rpm: object,
    tpm: object,
    budget_usd: object,
    models: tuple[str, ...] | None,
) -> None:
    """Refuse (InvalidRequest naming the field) what the ledger could not store exactly:
    counts that are not integers in 1..2^31-1 (``true`` is not a count), budgets that are
    not finite numbers in (0, 1e9], names and model names over 128 characters."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise InvalidRequest(f"name must be 1 to {MAX_NAME} characters", param="name")
    for param, count in (("rpm", rpm), ("tpm", tpm)):
        if count is None:
            continue
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidRequest(f"{param} must be an integer", param=param)
        if not 0 < count <= MAX_COUNT:
            raise InvalidRequest(f"{param} must be between 1 and {MAX_COUNT}", param=param)
    if budget_usd is not None:
        if isinstance(budget_usd, bool) or not isinstance(budget_usd, int | float):
            raise InvalidRequest("budget_usd must be a number", param="budget_usd")
        if not math.isfinite(budget_usd) or not 0 < budget_usd <= MAX_BUDGET_USD:
            raise InvalidRequest(
                f"budget_usd must be above 0 and at most {MAX_BUDGET_USD:g}", param="budget_usd"
            )
    if models is not None:
        if len(models) > MAX_MODELS:
            raise InvalidRequest(f"at most {MAX_MODELS} models per key", param="models")
        for i, model in enumerate(models):
            if not 0 < len(model) <= MAX_NAME:
                raise InvalidRequest(
                    f"model names are 1 to {MAX_NAME} characters", param=f"models[{i}]"
                )
