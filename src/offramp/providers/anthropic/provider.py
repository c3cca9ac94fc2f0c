"""The Anthropic provider: a thin httpx shell around the pure translators.

One pooled ``httpx.AsyncClient`` per model sends ``POST /v1/messages`` with the
``x-api-key`` and ``anthropic-version`` headers. The provider never retries: retries,
fallback and breakers belong to the router, so attempts do not multiply across layers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager

import httpx
import orjson
from pydantic import ValidationError

from offramp.models.registry import ModelSpec
from offramp.providers.anthropic import failures
from offramp.providers.anthropic.config import (
    FALLBACK_MAX_TOKENS,
    AnthropicConfig,
    UpstreamEntry,
)
from offramp.providers.anthropic.request import Json, to_upstream
from offramp.providers.anthropic.response import from_upstream
from offramp.providers.anthropic.stream import SSEDecoder, StreamTranslator, parse_event
from offramp.providers.anthropic.wire import WireMessage
from offramp.providers.base import Capabilities, Provider
from offramp.settings import Settings
from offramp.types import ChatRequest, CompletionResult, StreamItem

MESSAGES_PATH = "/v1/messages"


class AnthropicProvider(Provider):
    """Serves chat (whole and streamed, with tools and JSON output) from a Claude model.

    ``name`` says which config entry this is, in messages. Construction fails with a
    one-line InvalidRequest (param ``config``) when the API key's variable is unset. Requests the Messages API cannot express raise
    UnsupportedParameter naming the field before anything is sent; upstream failures
    raise the errors listed in ``failures``.
    """

    def __init__(
        self,
        name: str,
        config: AnthropicConfig,
        *,
        context_length: int = 0,
        default_max_tokens: int | None = None,
    ):
        self.name = name
        self.config = config
        self._max_tokens = config.default_max_tokens or default_max_tokens or FALLBACK_MAX_TOKENS
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers={
                **config.headers,
                "x-api-key": config.api_key(name),
                "anthropic-version": config.anthropic_version,
                "content-type": "application/json",
            },
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
        )
        self.capabilities = Capabilities(
            chat=True,
            tools=True,
            context_length=context_length,
            concurrency=config.concurrency,
        )

    @classmethod
    def from_spec(cls, spec: ModelSpec, settings: Settings) -> AnthropicProvider:
        """The provider for a ``models:`` entry (its ``options`` hold the config)."""
        config = AnthropicConfig.from_options(f"model {spec.name!r}", spec.options)
        return cls(
            f"model {spec.name!r}",
            config,
            context_length=spec.context_length,
            default_max_tokens=settings.default_max_tokens,
        )

    @classmethod
    def from_upstream(cls, entry: UpstreamEntry, settings: Settings) -> AnthropicProvider:
        """The provider for a route's ``provider: anthropic`` deployment."""
        config = AnthropicConfig.from_upstream(entry)
        name = f"deployment anthropic/{config.model}"
        return cls(name, config, default_max_tokens=settings.default_max_tokens)

    async def chat(self, request: ChatRequest) -> CompletionResult:
        body = self._body(request, stream=False)
        upstream = self._client.build_request("POST", MESSAGES_PATH, content=orjson.dumps(body))
        with self._transport():
            response = await self._client.send(upstream, stream=True)
        try:
            with self._transport(response.status_code):
                await response.aread()
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise failures.from_response(response.status_code, response.content, response.headers)
        try:
            message = WireMessage.model_validate_json(response.content)
        except ValidationError as exc:
            raise failures.malformed("response", exc) from exc
        return from_upstream(message, request.model, request.output)

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        """Stream the answer; closing the iterator closes the upstream HTTP response."""
        body = self._body(request, stream=True)
        upstream = self._client.build_request("POST", MESSAGES_PATH, content=orjson.dumps(body))
        with self._transport():
            response = await self._client.send(upstream, stream=True)
        try:
            if response.status_code != 200:
                with self._transport(response.status_code):
                    content = await response.aread()
                raise failures.from_response(response.status_code, content, response.headers)
            translator = StreamTranslator(request.output)
            decoder = SSEDecoder()
            with self._transport(response.status_code):
                async for line in response.aiter_lines():
                    for data in decoder.feed(line):
                        for item in translator.feed(parse_event(data)):
                            yield item
            for data in decoder.close():
                for item in translator.feed(parse_event(data)):
                    yield item
            translator.finish()
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, request: ChatRequest, *, stream: bool) -> Json:
        body = to_upstream(request, self.config.model, self._max_tokens)
        if stream:
            body["stream"] = True
        return body

    @contextmanager
    def _transport(self, status: int | None = None) -> Iterator[None]:
        """Maps transport errors; ``status`` once the upstream has begun its answer."""
        try:
            yield
        except httpx.HTTPError as exc:
            raise failures.from_transport(exc, self.config.base_url, status) from exc
