"""``offramp serve``, ``offramp chat`` and ``offramp embed``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from offramp.gateway.accounting import Accounting, Caller
from offramp.gateway.gateway import Gateway
from offramp.gateway.runtime import build_runtime
from offramp.models import sources
from offramp.models.tuned import load_with_tuned
from offramp.providers.registry import builtin_registry
from offramp.settings import Settings, load_settings
from offramp.types import ChatRequest, ChoiceDelta, EmbedRequest, Message, Sampling

_LOCAL = Caller("cli")  # the one local user of `offramp chat` / `embed`: no key, no ledger
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    config: ConfigOpt = None,
    max_queue: Annotated[int | None, typer.Option(help="Waiting requests per model.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes on the port (see `workers`).")
    ] = None,
) -> None:
    """Start the OpenAI-compatible server (default: the embedded models, 127.0.0.1:8000)."""
    from offramp import server
    from offramp import workers as worker_processes
    from offramp.observability.logs import logging_config

    settings = load_settings(config, host=host, port=port, max_queue=max_queue, workers=workers)
    worker_processes.check_shared_state(settings)
    # Missing weights are a one-line error here, not a traceback from inside the server.
    for spec in load_with_tuned(settings.config, settings.models_dir).specs:
        sources.resolve(spec.source, settings.models_dir)
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        "log_config": logging_config(settings),
        "access_log": False,  # offramp.access writes one line per request, with its id
    }
    if settings.workers > 1:
        worker_processes.serve_workers(settings, **options)
        return
    from offramp.app import create_app

    server.serve(create_app(settings), settings, **options)


def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[str, typer.Option(help="Model or alias.")] = "gpt-4o-mini",
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on generated tokens.")] = 512,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    config: ConfigOpt = None,
) -> None:
    """Ask a chat model once and stream the answer to the terminal."""
    settings = load_settings(config, preload=False)
    messages = [Message("system", system)] if system else []
    messages.append(Message("user", prompt))
    request = ChatRequest(
        model=model,
        messages=tuple(messages),
        sampling=Sampling(temperature=temperature, max_tokens=max_tokens),
    )
    asyncio.run(_chat(settings, request))


async def _chat(settings: Settings, request: ChatRequest) -> None:
    from offramp.app import build_pool

    pool = build_pool(settings)
    runtime = build_runtime(settings, pool, builtin_registry())
    try:
        stream = (await Gateway(runtime, Accounting()).stream_chat(_LOCAL, request)).value
        async for item in stream:
            if isinstance(item, ChoiceDelta) and item.text:
                sys.stdout.write(item.text)
                sys.stdout.flush()
        sys.stdout.write("\n")
    finally:
        await runtime.router.aclose()
        await pool.aclose()


def embed(
    texts: Annotated[list[str], typer.Argument(help="Texts to embed.")],
    model: Annotated[str, typer.Option(help="Model or alias.")] = "text-embedding-3-small",
    dimensions: Annotated[int | None, typer.Option(help="Shorten vectors to this size.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Embed texts and print one JSON vector per line."""
    settings = load_settings(config, preload=False)
    request = EmbedRequest(model=model, texts=tuple(texts), dimensions=dimensions)
    asyncio.run(_embed(settings, request))


async def _embed(settings: Settings, request: EmbedRequest) -> None:
    from offramp.app import build_pool

    pool = build_pool(settings)
    runtime = build_runtime(settings, pool, builtin_registry())
    try:
        result = (await Gateway(runtime, Accounting()).embed(_LOCAL, request)).value
        for vector in result.vectors:
            print(json.dumps([round(float(x), 6) for x in vector]))
    finally:
        await runtime.router.aclose()
        await pool.aclose()
