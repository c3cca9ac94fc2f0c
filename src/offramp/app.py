"""``create_app(settings)``: wires the HTTP layer to a model pool; nothing at import time."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from offramp.api import admin, admin_keys, batch, errors, health, metrics, tasks
from offramp.api.caller import caller_of
from offramp.api.context import RequestContext
from offramp.api.limits import BodySizeLimit
from offramp.api.openai import chat, completions, embeddings, models
from offramp.api.streaming import ClientGone
from offramp.backing import Backing
from offramp.models.registry import load_registry
from offramp.providers.registry import builtin_registry
from offramp.services.pool import ModelPool
from offramp.services.runtime import Runtime, build_runtime
from offramp.services.structured import RuntimeBackend
from offramp.settings import Settings
from offramp.tasks.catalog import TaskCatalog
from offramp.tasks.engine import TaskEngine
from offramp.tasks.history import SessionHistory
from offramp.tasks.hooks import builtin_hooks
from offramp.types import Usage

log = logging.getLogger(__name__)


def build_pool(settings: Settings) -> ModelPool:
    """A pool over the configured models and the built-in providers."""
    return ModelPool(settings, load_registry(settings.config), builtin_registry())


def build_tasks(settings: Settings, runtime: Runtime) -> TaskEngine:
    """The task engine over the built-in tasks and those in ``settings.tasks_dir``;
    InvalidRequest naming the file when a task file is malformed."""
    hooks = builtin_hooks()
    catalog = TaskCatalog.load(hooks, settings.tasks_dir)
    history = SessionHistory(settings.task_sessions)

    def pricing(model: str, usage: Usage) -> float:
        # the price of the route's first deployment, the one a task's calls go to first
        return runtime.router.resolve(model, "chat").deployments[0].price.cost(usage)

    return TaskEngine(catalog, hooks, RuntimeBackend(runtime), history, pricing)


async def _load_models(app: FastAPI, pool: ModelPool, preload: bool) -> None:
    """Preload the pool (if configured), then mark the app ready; a model that fails to
    load is logged and reported by /ready, and is tried again by the next request for it."""
    if preload:
        try:
            await pool.preload()
        except Exception as exc:
            log.exception("loading the models failed")
            app.state.load_error = str(exc)
            return
    app.state.ready = True
    log.info("offramp ready on %s:%s", app.state.settings.host, app.state.settings.port)


def create_app(settings: Settings, pool: ModelPool | None = None) -> FastAPI:
    """The ASGI app. With ``pool`` given, the caller owns it (models already shared);
    otherwise the app builds one, preloads it if configured, and closes it on shutdown.
    The routes of ``settings.config`` are built here (bad ones raise InvalidRequest) and
    their upstream connections closed on shutdown."""
    owned = pool is None
    the_pool = pool if pool is not None else build_pool(settings)
    routed = build_runtime(settings, the_pool, builtin_registry())
    backing = Backing(settings, routed.admission, routed.router)
    runtime = dataclasses.replace(routed, accounting=backing.accounting)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = False
        await backing.open()
        app.state.keys = backing.keys
        # The server answers (/health, /ready: loading) while the models load behind it.
        loading = asyncio.create_task(_load_models(app, the_pool, settings.preload))
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
                await asyncio.gather(loading, return_exceptions=True)
            await backing.aclose()  # after in-flight requests: their records are written
            await runtime.router.aclose()
            if owned:
                await the_pool.aclose()

    app = FastAPI(title="offramp", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.backing = backing
    app.state.keys = None
    app.state.tasks = build_tasks(settings, runtime)
    app.state.started = int(time.time())
    app.state.ready = False
    app.state.load_error = None
    errors.install(app)

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, __: ClientGone) -> Response:
        return Response(status_code=499)  # nobody is listening any more

    for module in (chat, completions, embeddings, health, admin, admin_keys, metrics):
        app.include_router(module.router)
    for module in (models, tasks, batch):  # a key, with auth on
        app.include_router(module.router, dependencies=[Depends(caller_of)])
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, log_bodies=settings.log_prompts)
    return app
