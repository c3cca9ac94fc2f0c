"""``/admin``: API keys and usage, for the bearer of ``settings.admin_key`` only."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from offramp.api.responses import JSONResponse
from offramp.errors import AuthenticationFailed, ModelNotFound, PermissionDenied, quoted
from offramp.keys.store import MAX_BUDGET_USD, MAX_COUNT, MAX_MODELS, MAX_NAME, KeyStore
from offramp.ledger import queries


def require_admin(request: Request) -> None:
    """401 without a bearer key, 403 with a wrong one or when admin routes are off."""
    admin = request.app.state.settings.admin_key
    if admin is None or not admin.get_secret_value():
        raise PermissionDenied("admin routes are off: set admin_key", code="admin_disabled")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthenticationFailed("admin routes need 'Authorization: Bearer ADMIN_KEY'")
    if not hmac.compare_digest(given.strip().encode(), admin.get_secret_value().encode()):
        raise PermissionDenied("this key is not the admin key", code="admin_key_required")


router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])


class NewKey(BaseModel):
    """A key to create; strict types and the bounds the ledger can store (a 400 naming the
    field otherwise: ``rpm: true`` or 2^63 or a budget of 1e400 are refused, not coerced)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=MAX_NAME)
    rpm: int | None = Field(default=None, gt=0, le=MAX_COUNT)
    tpm: int | None = Field(default=None, gt=0, le=MAX_COUNT)
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    models: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME)]] | None = Field(
        default=None, max_length=MAX_MODELS
    )


def _store(request: Request) -> KeyStore:
    return KeyStore(request.app.state.backing.engine)


@router.get("/keys")
async def list_keys(request: Request) -> JSONResponse:
    keys = await asyncio.to_thread(_store(request).list)
    return JSONResponse({"data": [dataclasses.asdict(k) for k in keys]})


@router.post("/keys")
async def create_key(body: NewKey, request: Request) -> JSONResponse:
    models = tuple(body.models) if body.models is not None else None
    key, secret = await asyncio.to_thread(
        lambda: _store(request).create(
            body.name, rpm=body.rpm, tpm=body.tpm, budget_usd=body.budget_usd, models=models
        )
    )
    return JSONResponse({**dataclasses.asdict(key), "secret": secret}, status_code=201)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> JSONResponse:
    if not await asyncio.to_thread(_store(request).revoke, key_id):
        raise ModelNotFound(
            f"no live API key {quoted(key_id)}", param="key_id", code="key_not_found"
        )
    return JSONResponse({"id": key_id, "revoked": True})


@router.get("/usage")
async def usage(request: Request, since_s: float | None = None) -> JSONResponse:
    summary: Any = await asyncio.to_thread(
        queries.summary, request.app.state.backing.engine, since_s
    )
    return JSONResponse(summary.as_dict())
