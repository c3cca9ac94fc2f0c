"""``create_app(settings)``: wires the HTTP layer to a model pool; nothing at import time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from offramp.api import (
    admin,
    admin_keys,
    admin_models,
    batch,
    errors,
    feedback,
    health,
    metrics,
    tasks,
)
from offramp.api.anthropic import errors as anthropic_errors
from offramp.api.anthropic import routes as anthropic_messages
from offramp.api.anthropic.protocol import MessagesRequest
from offramp.api.caller import caller_of
from offramp.api.context import RequestContext
from offramp.api.drain import Drain, DrainGate
from offramp.api.hot_doors import Door, HotDoors
from offramp.api.limits import BodySizeLimit
from offramp.api.openai import chat, completions, embeddings, models
from offramp.api.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequestWire,
    EmbeddingRequestWire,
)
from offramp.api.responses_api import routes as responses_api
from offramp.api.responses_api.protocol import ResponsesRequest
from offramp.api.streaming import ClientGone
from offramp.console.router import console_router
from offramp.gateway.backing import Backing
from offramp.gateway.gateway import Gateway
from offramp.gateway.runtime import build_runtime
from offramp.ledger.feedback import load_metrics
from offramp.local.pool import ModelPool
from offramp.models.tuned import load_with_tuned
from offramp.providers.registry import builtin_registry
from offramp.routing.experiment import poll as poll_experiments
from offramp.settings import Settings
from offramp.tasks.builtin import builtin_hooks
from offramp.tasks.catalog import TaskCatalog
from offramp.tasks.engine import TaskEngine
from offramp.tasks.history import SessionStore

log = logging.getLogger(__name__)


def build_pool(settings: Settings) -> ModelPool:
    """A pool over the configured models, the tuned ones in the models dir and the
    built-in providers."""
    return ModelPool(
        settings, load_with_tuned(settings.config, settings.models_dir), builtin_registry()
    )


def build_tasks(settings: Settings, sessions: SessionStore) -> TaskEngine:
    """The task engine over the built-in tasks and those in ``settings.tasks_dir``;
    InvalidRequest naming the file when a task file is malformed."""
    hooks = builtin_hooks()
    return TaskEngine(TaskCatalog.load(hooks, settings.tasks_dir), hooks, sessions)


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


class OfframpApp(FastAPI):
    """The FastAPI app behind offramp's own front: request context, drain gate and body
    limit for every HTTP request, then the hot model doors (``api.hot_doors``) or the
    framework. ``front`` is set by ``create_app``."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.front is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await self.front(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The FastAPI app itself (routing, dependencies, exception handlers)."""
        await super().__call__(scope, receive, send)


def _hot_doors() -> dict[str, Door]:
    return {
        "/v1/chat/completions": Door(ChatCompletionRequest, chat.create_chat_completion),
        "/v1/completions": Door(CompletionRequestWire, completions.create_completion),
        "/v1/embeddings": Door(EmbeddingRequestWire, embeddings.create_embeddings),
        "/v1/responses": Door(ResponsesRequest, responses_api.create_response),
        "/v1/messages": Door(MessagesRequest, anthropic_messages.create_message),
    }


def create_app(
    settings: Settings, pool: ModelPool | None = None, worker: int | None = None
) -> FastAPI:
    """The ASGI app. With ``pool`` given, the caller owns it (models already shared);
    otherwise the app builds one, preloads it if configured, and closes it on shutdown.
    The routes of ``settings.config`` are built here (bad ones raise InvalidRequest) and
    their upstream connections closed on shutdown. ``worker``: this process's number
    among several serving one port, sent in each response's ``x-offramp-worker``."""
    owned = pool is None
    the_pool = pool if pool is not None else build_pool(settings)
    runtime = build_runtime(settings, the_pool, builtin_registry())
    backing = Backing(settings, runtime.admission, runtime.router)
    gateway = Gateway(
        runtime,
        backing.accounting,
        build_tasks(settings, backing.sessions),
        settings.structured_max_attempts,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = False
        await backing.open()
        app.state.keys = backing.keys
        assert backing.engine is not None
        # a rollout under way applies before the first request, then every few seconds
        await gateway.runtime.experiments.refresh_now(backing.engine)
        polling = asyncio.create_task(
            poll_experiments(
                lambda: gateway.runtime.experiments, backing.engine, settings.experiment_refresh_s
            )
        )
        # The server answers (/health, /ready: loading) while the models load behind it.
        loading = asyncio.create_task(_load_models(app, the_pool, settings.preload))
        try:
            yield
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            if not loading.done():
                loading.cancel()
                await asyncio.gather(loading, return_exceptions=True)
            await backing.aclose()  # after in-flight requests: their records are written
            await runtime.router.aclose()
            if owned:
                await the_pool.aclose()

    app = OfframpApp(title="offramp", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.gateway = gateway
    app.state.settings = settings
    app.state.feedback_metrics = load_metrics(settings.config)
    app.state.backing = backing
    app.state.keys = None
    app.state.drain = Drain(settings.drain_timeout_s)
    app.state.started = int(time.time())
    app.state.ready = False
    app.state.load_error = None
    errors.install(app, [errors.Dialect(anthropic_errors.PREFIX, anthropic_errors.envelope)])

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, __: ClientGone) -> Response:
        return Response(status_code=499)  # nobody is listening any more

    doors = (chat, completions, embeddings, responses_api, anthropic_messages)
    for module in (*doors, feedback, health, admin, admin_keys, admin_models, metrics):
        app.include_router(module.router)
    for module in (models, tasks, batch):  # a key, with auth on
        app.include_router(module.router, dependencies=[Depends(caller_of)])
    app.include_router(console_router())  # 404 everywhere unless admin_key is set
    # offramp's own front, outermost first: every HTTP request gets its id and access log
    # line, the drain gate and the body limit; the hot doors then answer, or FastAPI does
    hot = HotDoors(_hot_doors(), app.framework)
    limited = BodySizeLimit(hot, settings.max_body_bytes, settings.read_timeout_s)
    gated = DrainGate(limited, app.state.drain)
    app.front = RequestContext(gated, log_bodies=settings.log_prompts, worker=worker)
    return app
