"""Chat and text completions: capability checks, the provider call, output validation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import jsonschema

from offramp.errors import OutputValidationFailed, UnsupportedParameter
from offramp.providers.base import Capabilities, Provider, StreamItem
from offramp.services.runtime import Runtime
from offramp.types import ChatRequest, CompletionRequest, CompletionResult, OutputFormat, Sampling


async def chat(runtime: Runtime, request: ChatRequest, validate: bool = True) -> CompletionResult:
    """Answer a chat request whole; JSON outputs are validated before they are returned
    unless ``validate`` is False (the structured-output loop validates and repairs)."""
    name, provider = await _chat_provider(runtime, request)
    with runtime.admission.slot(name, provider.capabilities.concurrency):
        result = await provider.chat(request)
    if not validate:
        return result
    for choice in result.choices:
        if choice.finish_reason == "stop" and choice.text is not None:
            validate_output(choice.text, request.output)
    return result


async def stream_chat(runtime: Runtime, request: ChatRequest) -> AsyncIterator[StreamItem]:
    """Stream a chat answer; the provider is checked now, admission at the first item."""
    name, provider = await _chat_provider(runtime, request)
    concurrency = provider.capabilities.concurrency
    return runtime.admission.stream(name, concurrency, provider.stream_chat(request))


async def complete(runtime: Runtime, request: CompletionRequest) -> CompletionResult:
    """Answer a legacy text completion request whole."""
    name, provider = await _completion_provider(runtime, request)
    with runtime.admission.slot(name, provider.capabilities.concurrency):
        return await provider.complete(request)


async def stream_complete(
    runtime: Runtime, request: CompletionRequest
) -> AsyncIterator[StreamItem]:
    """Stream a legacy text completion."""
    name, provider = await _completion_provider(runtime, request)
    concurrency = provider.capabilities.concurrency
    return runtime.admission.stream(name, concurrency, provider.stream_complete(request))


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
        try:
            jsonschema.validate(value, output.schema)
        except jsonschema.ValidationError as exc:
            raise OutputValidationFailed(
                f"the model's output does not match the schema: {exc.message}"
            ) from exc


async def _chat_provider(runtime: Runtime, request: ChatRequest) -> tuple[str, Provider]:
    spec, provider = await runtime.pool.get(request.model, "chat")
    caps = provider.capabilities
    _check_sampling(caps, request.sampling)
    if request.tools and not caps.tools:
        raise UnsupportedParameter("this model cannot call tools", param="tools")
    return spec.name, provider


async def _completion_provider(
    runtime: Runtime, request: CompletionRequest
) -> tuple[str, Provider]:
    spec, provider = await runtime.pool.get(request.model, "chat")
    if not provider.capabilities.completions:
        raise UnsupportedParameter("this model serves chat completions only", param="model")
    _check_sampling(provider.capabilities, request.sampling)
    return spec.name, provider


def _check_sampling(caps: Capabilities, sampling: Sampling) -> None:
    if sampling.logprobs and not caps.logprobs:
        raise UnsupportedParameter("this model does not return logprobs", param="logprobs")
    if sampling.top_logprobs > caps.max_top_logprobs:
        raise UnsupportedParameter(
            f"top_logprobs can be at most {caps.max_top_logprobs} for this model",
            param="top_logprobs",
        )
