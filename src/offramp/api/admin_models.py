"""``POST /admin/models/reload``: re-read the model registry (the config's ``models:`` and
the tuned models in the models dir) and serve what changed without a restart.

New models load on first use, or before the answer when ``preload`` is set; a model that
then fails to load is named under ``failed`` (and fails again on first use, with its
error). The answer says what was added, removed and re-aliased, and which loaded models
run with settings the config no longer has (those need a restart).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from offramp.api.admin import admin_when_auth
from offramp.api.deps import runtime_of
from offramp.api.responses import JSONResponse
from offramp.errors import OfframpError
from offramp.models.tuned import load_with_tuned

router = APIRouter(dependencies=[Depends(admin_when_auth)])


@router.post("/admin/models/reload")
async def reload_models(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    runtime = runtime_of(request)
    registry = await asyncio.to_thread(load_with_tuned, settings.config, settings.models_dir)
    changes = runtime.reload_models(registry)
    failed: dict[str, str] = {}
    if settings.preload:
        for name in changes.added:
            try:
                await runtime.pool.preload_models([registry.resolve(name)])
            except OfframpError as exc:
                failed[name] = exc.message
    return JSONResponse(
        {
            "object": "models.reload",
            **changes.as_json(),
            "failed": failed,
            "models": [
                {"id": spec.name, "aliases": list(spec.aliases), "kind": spec.kind}
                for spec in registry.specs
            ],
        }
    )
