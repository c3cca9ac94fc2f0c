"""Routed calls below the gateway: a resolved route, the capability checks of each
deployment, the provider call, output validation. Nothing here meters or caches."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from offramp.errors import (
    QUOTE_LIMIT,
    OutputValidationFailed,
    UnknownParameter,
    UnsupportedParameter,
)
from offramp.providers.base import Capabilities, Provider
from offramp.routing.outcome import Routed
from offramp.routing.route import Route
from offramp.routing.router import Router
from offramp.routing.strategies import Hint
from offramp.schemas import validator_for
from offramp.structured.repair import Adapt
from offramp.types import (
    ChatRequest,
    ChoiceDelta,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    OutputFormat,
    Sampling,
    StreamItem,
)

DEFAULT_COMPLETION_ESTIMATE = 256  # tokens assumed for cost ordering when max_tokens is unset


async def chat(
    router: Router,
    route: Route,
    request: ChatRequest,
    adapt: Adapt | None = None,
    validate: bool = True,
) -> Routed[CompletionResult]:
    """Answer a chat request whole on ``route``; JSON outputs are validated before they
    are returned unless ``validate`` is False (the structured-output loop validates and
    repairs). ``adapt`` rewrites the request for the deployment that takes it; the route's
    experiment arm may set its system prompt first."""
    request = route.prompted(request)
    shape = adapt or _unchanged
    routed = await router.call(
        route,
        request.model,
        _chat_hint(request),
        lambda caps: check_chat(caps, shape(request, caps)),
        lambda provider: provider.chat(shape(request, provider.capabilities)),
    )
    for choice in routed.value.choices if validate else ():
        if choice.finish_reason == "stop" and choice.text is not None:
            validate_output(choice.text, request.output)
    return routed


async def stream_chat(
    router: Router,
    route: Route,
    request: ChatRequest,
    adapt: Adapt | None = None,
    validate: bool = True,
) -> Routed[AsyncIterator[StreamItem]]:
    """Stream a chat answer from the first deployment of ``route`` that produces content.
    A JSON output is validated when each choice ends (unless ``validate`` is False): one
    that breaks the schema ends the stream with OutputValidationFailed instead of its
    finish."""
    request = route.prompted(request)
    shape = adapt or _unchanged
    routed = await router.stream(
        route,
        request.model,
        _chat_hint(request),
        lambda caps: check_chat(caps, shape(request, caps)),
        lambda provider: provider.stream_chat(shape(request, provider.capabilities)),
    )
    if validate and request.output.kind != "text" and not request.tools:
        return Routed(_validated(routed.value, request.output), routed.outcome)
    return routed


async def _validated(
    items: AsyncIterator[StreamItem], output: OutputFormat
) -> AsyncIterator[StreamItem]:
    texts: dict[int, list[str]] = {}
    try:
        async for item in items:
            if isinstance(item, ChoiceDelta):
                texts.setdefault(item.index, []).append(item.text)
                if item.finish_reason == "stop":
                    validate_output("".join(texts[item.index]), output)
            yield item
    finally:
        closer = getattr(items, "aclose", None)
        if closer is not None:
            await closer()


async def count_tokens(router: Router, route: Route, request: ChatRequest) -> Routed[int]:
    """The prompt tokens of ``request`` on the first deployment of ``route`` that takes it
    (its own count, or an estimate from characters where it cannot count)."""
    request = route.prompted(request)

    async def counted(provider: Provider) -> int:
        tokens = await provider.count_chat_tokens(request)
        return prompt_estimate(request) if tokens is None else tokens

    return await router.call(
        route,
        request.model,
        _chat_hint(request),
        lambda caps: check_chat(caps, request),
        counted,
    )


async def complete(
    router: Router, route: Route, request: CompletionRequest
) -> Routed[CompletionResult]:
    """Answer a legacy text completion request whole."""
    return await router.call(
        route,
        request.model,
        _completion_hint(request),
        lambda caps: check_completion(caps, request),
        lambda provider: provider.complete(request),
    )


async def stream_complete(
    router: Router, route: Route, request: CompletionRequest
) -> Routed[AsyncIterator[StreamItem]]:
    """Stream a legacy text completion."""
    return await router.stream(
        route,
        request.model,
        _completion_hint(request),
        lambda caps: check_completion(caps, request),
        lambda provider: provider.stream_complete(request),
    )


async def embed(router: Router, route: Route, request: EmbedRequest) -> Routed[EmbedResult]:
    """Embed every text, one vector per text, in order (local models L2-normalise)."""
    hint = Hint(sum(len(t) for t in request.texts) // 4, 0)
    return await router.call(
        route,
        request.model,
        hint,
        lambda caps: check_embed(caps, request),
        lambda provider: provider.embed(request),
    )


def _unchanged(request: ChatRequest, caps: Capabilities) -> ChatRequest:
    return request


def validate_output(text: str, output: OutputFormat) -> None:
    """Raise OutputValidationFailed when ``text`` breaks the requested JSON output."""
    if output.kind == "text":
        return
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise OutputValidationFailed(f"the model's output is not valid JSON: {exc}") from exc
    if output.kind == "json_object" and not isinstance(value, dict):
        raise OutputValidationFailed("the model's output is JSON but not an object")
    if output.kind == "json_schema" and output.schema is not None:
        error = next(validator_for(output.schema).iter_errors(value), None)
        if error is not None:
            raise OutputValidationFailed(
                f"the model's output does not match the schema at {error.json_path}: "
                f"{error.message}"
            )


def check_chat(caps: Capabilities, request: ChatRequest) -> None:
    """Raise the 400 a deployment with ``caps`` would give ``request`` (None if it can)."""
    check_extra(caps, request.extra)
    check_sampling(caps, request.sampling)
    if request.tools and not caps.tools:
        raise UnsupportedParameter("this model cannot call tools", param="tools")


def check_completion(caps: Capabilities, request: CompletionRequest) -> None:
    if not caps.completions:
        raise UnsupportedParameter("this model serves chat completions only", param="model")
    check_extra(caps, request.extra)
    check_sampling(caps, request.sampling)


def check_embed(caps: Capabilities, request: EmbedRequest) -> None:
    if not caps.embeddings:
        raise UnsupportedParameter("this model does not serve embeddings", param="model")
    check_extra(caps, request.extra)


def check_extra(caps: Capabilities, extra: Mapping[str, Any]) -> None:
    """Fields offramp does not model go only to deployments that pass them on."""
    if extra and not caps.passthrough:
        name = next(iter(extra))[:QUOTE_LIMIT]
        raise UnknownParameter(f"Unrecognized request argument supplied: {name}", param=name)


def check_sampling(caps: Capabilities, sampling: Sampling) -> None:
    if sampling.logprobs and not caps.logprobs:
        raise UnsupportedParameter("this model does not return logprobs", param="logprobs")
    if sampling.top_logprobs > caps.max_top_logprobs:
        raise UnsupportedParameter(
            f"top_logprobs can be at most {caps.max_top_logprobs} for this model",
            param="top_logprobs",
        )


def prompt_estimate(request: ChatRequest | CompletionRequest) -> int:
    """Prompt tokens guessed from characters, where no tokenizer has counted them."""
    if isinstance(request, CompletionRequest):
        return len(request.prompt) // 4
    return sum(len(m.content or "") for m in request.messages) // 4


def _chat_hint(request: ChatRequest) -> Hint:
    chars = sum(len(m.content or "") for m in request.messages)
    return Hint(chars // 4, request.sampling.max_tokens or DEFAULT_COMPLETION_ESTIMATE)


def _completion_hint(request: CompletionRequest) -> Hint:
    return Hint(
        len(request.prompt) // 4, request.sampling.max_tokens or DEFAULT_COMPLETION_ESTIMATE
    )
