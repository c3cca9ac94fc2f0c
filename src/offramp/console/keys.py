"""The console's Keys page: every key with its use against its limits; the admin creates
and revokes keys (the same store and rules as ``/admin/keys``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from fastapi import APIRouter, Depends, Request

from offramp.api.admin_keys import NewKey
from offramp.api.responses import JSONResponse
from offramp.console.access import admin_change, signed_in
from offramp.console.status import engine_of
from offramp.errors import ModelNotFound
from offramp.keys.auth import KeyResolver
from offramp.keys.store import KeyStore
from offramp.ledger import explorer

RECENT_S = 60.0

router = APIRouter(prefix="/console/api/keys")


@router.get("", dependencies=[Depends(signed_in)])
async def list_keys(request: Request, revoked: bool = False) -> JSONResponse:
    engine = engine_of(request)

    def read() -> JSONResponse:
        keys = KeyStore(engine).list(include_revoked=revoked)
        used = explorer.key_usage(engine, time.time(), RECENT_S)
        empty = {"requests": 0, "recent_requests": 0, "recent_tokens": 0, "spent_usd": 0.0}
        data = [{**dataclasses.asdict(k), "usage": used.get(k.id, empty)} for k in keys]
        return JSONResponse({"data": data, "recent_s": RECENT_S})

    return await asyncio.to_thread(read)


@router.post("", dependencies=[Depends(admin_change)])
async def create_key(body: NewKey, request: Request) -> JSONResponse:
    store = KeyStore(engine_of(request))
    models = tuple(body.models) if body.models else None
    key, secret = await asyncio.to_thread(
        lambda: store.create(
            body.name, rpm=body.rpm, tpm=body.tpm, budget_usd=body.budget_usd, models=models
        )
    )
    return JSONResponse({**dataclasses.asdict(key), "secret": secret}, status_code=201)


@router.delete("/{key_id}", dependencies=[Depends(admin_change)])
async def revoke_key(key_id: str, request: Request) -> JSONResponse:
    if not await asyncio.to_thread(KeyStore(engine_of(request)).revoke, key_id):
        raise ModelNotFound(f"no live API key {key_id!r}", param="key_id", code="key_not_found")
    resolver: KeyResolver | None = request.app.state.keys
    if resolver is not None:
        resolver.forget(key_id)
    return JSONResponse({"id": key_id, "revoked": True})
