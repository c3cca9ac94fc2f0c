"""The HTTP shell around ``translate``: one ``HttpPool`` of keep-alive connections per
deployment.

Neither httpx nor aiohttp: against a fixed-response upstream on loopback, httpx's pool
served 1.1k requests/s at 10 concurrent requests and collapsed to ~300/s at 50, where
aiohttp served 10k and 7k; aiohttp's own request machinery was then still ~15% of a
gateway process's CPU per request, which the lean client in ``http_pool`` does not
spend (see bench/README.md, proxy overhead and gateway throughput).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson

from offramp.errors import InvalidRequest
from offramp.providers.base import Capabilities, Provider
from offramp.providers.http_pool import HttpPool, TransportError
from offramp.providers.openai_compat import failures, translate
from offramp.providers.openai_compat.sse import SSEDecoder
from offramp.providers.openai_compat.translate import Dialect, Json, Malformed, StreamFailed
from offramp.providers.upstream import UpstreamSpec
from offramp.settings import Settings
from offramp.types import (
    ChatRequest,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    StreamItem,
)


@dataclass(frozen=True)
class Flavour:
    """A registered backend: where it lives by default, whether it needs a key, its dialect."""

    name: str
    dialect: Dialect
    base_url: str | None = None
    api_key_env: str | None = None
    key_required: bool = False


OPENAI_COMPATIBLE = Flavour("openai-compatible", Dialect())
OPENAI = Flavour(
    "openai",
    Dialect(max_tokens_field="max_completion_tokens", embed_encoding="base64"),
    base_url="https://api.openai.com/v1",
    api_key_env="OPENAI_API_KEY",
    key_required=True,
)


class OpenAICompatProvider(Provider):
    """Chat, completions and embeddings from a server that speaks OpenAI's API.

    Requests carry the deployment's upstream model name and every ``extra`` field the
    client sent. Failures raise the errors listed in ``failures`` (never httpx's own).
    Streams ask for usage, end with one StreamEnd, and raise when the upstream sends an
    error event or stops before ``[DONE]``; closing a stream closes its HTTP response.
    """

    def __init__(self, spec: UpstreamSpec, settings: Settings, flavour: Flavour):
        base_url = spec.base_url or flavour.base_url
        if not base_url:
            raise InvalidRequest(
                f"deployment {spec.backend}/{spec.model} needs `base_url`", param="config"
            )
        key_spec = (
            spec
            if spec.api_key_env
            else spec.model_copy(update={"api_key_env": flavour.api_key_env})
        )
        key = key_spec.api_key(required=flavour.key_required)
        headers = {"content-type": "application/json", **spec.headers}
        if key:
            headers["authorization"] = f"Bearer {key}"
        self._where = f"{spec.backend} {spec.model} at {base_url}"
        self._model = spec.model
        self._dialect = _dialect(flavour.dialect, spec)
        connections = settings.upstream_max_connections
        try:
            # a limit on connecting and on each wait for a stream's data, not on a whole
            # (long) stream; whole answers need none of their own: the router's attempt
            # timeout (the same ``timeout_s``, or less) covers the whole call
            self._http = HttpPool(base_url, headers, connections, connect_timeout_s=spec.timeout_s)
        except ValueError as exc:
            raise InvalidRequest(
                f"deployment {spec.backend}/{spec.model}: `base_url` {exc}", param="config"
            ) from exc
        self._read_timeout = spec.timeout_s
        self.capabilities = Capabilities(
            chat=True,
            completions=True,
            embeddings=True,
            tools=True,
            logprobs=True,
            max_top_logprobs=20,
            concurrency=connections,
            passthrough=True,
        )

    async def chat(self, request: ChatRequest) -> CompletionResult:
        body = translate.chat_body(request, self._model, self._dialect, stream=False)
        payload = await self._post("/chat/completions", body)
        with self._parsing("chat completion"):
            return translate.chat_result(payload)

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        body = translate.chat_body(request, self._model, self._dialect, stream=True)
        return self._stream("/chat/completions", body, translate.StreamDecoder("chat"))

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        body = translate.completion_body(request, self._model, stream=False)
        payload = await self._post("/completions", body)
        with self._parsing("completion"):
            return translate.completion_result(payload)

    def stream_complete(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        body = translate.completion_body(request, self._model, stream=True)
        return self._stream("/completions", body, translate.StreamDecoder("text"))

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        body = translate.embed_body(request, self._model, self._dialect)
        payload = await self._post("/embeddings", body)
        with self._parsing("embeddings response"):
            return translate.embed_result(payload, self._model)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: Json) -> Any:
        # try/except rather than the context managers: this runs once per request
        status = None
        try:
            response = await self._http.post(path, orjson.dumps(body))
            status = response.status
            content = await response.read()
        except (TimeoutError, TransportError) as exc:
            raise failures.from_transport(exc, self._where, status) from exc
        if status != 200:
            raise failures.from_response(status, content, response.headers, self._where)
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise failures.malformed(self._where, "response", exc) from exc

    async def _stream(
        self, path: str, body: Json, decoder: translate.StreamDecoder
    ) -> AsyncIterator[StreamItem]:
        """The stream's items up to ``[DONE]`` (raises if it stops short). One generator
        from the socket's pieces to items: a layer per step (pieces, lines, events) cost
        more than the parsing itself."""
        with self._transport():
            response = await self._http.post(path, orjson.dumps(body))
        try:
            if response.status != 200:
                with self._transport(response.status):
                    content = await response.read()
                raise failures.from_response(
                    response.status, content, response.headers, self._where
                )
            sse = SSEDecoder()
            tail = b""
            while True:
                try:
                    piece = await response.next_chunk(self._read_timeout)
                except (TimeoutError, TransportError) as exc:
                    raise failures.from_transport(exc, self._where, response.status) from exc
                if piece is None:
                    lines = [tail] if tail else []
                else:
                    *lines, tail = (tail + piece).split(b"\n")
                for line in lines:
                    try:
                        text = line.rstrip(b"\r").decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise failures.malformed(self._where, "stream line", exc) from exc
                    for data in sse.feed(text):
                        if data == "[DONE]":
                            yield decoder.end()
                            return
                        for item in self._decoded(decoder, data):
                            yield item
                if piece is None:
                    raise failures.truncated(self._where)
        finally:
            response.close()

    def _decoded(self, decoder: translate.StreamDecoder, data: str) -> list[StreamItem]:
        try:
            return decoder.feed(orjson.loads(data))
        except StreamFailed as exc:
            raise failures.from_stream_error(exc.error, self._where) from exc
        except (Malformed, orjson.JSONDecodeError) as exc:
            raise failures.malformed(self._where, "stream event", exc) from exc

    @contextmanager
    def _transport(self, status: int | None = None) -> Iterator[None]:
        """Maps transport errors; ``status`` once the upstream has begun its answer."""
        try:
            yield
        except (TimeoutError, TransportError) as exc:
            raise failures.from_transport(exc, self._where, status) from exc

    @contextmanager
    def _parsing(self, what: str) -> Iterator[None]:
        try:
            yield
        except StreamFailed as exc:
            raise failures.from_stream_error(exc.error, self._where) from exc
        except (Malformed, orjson.JSONDecodeError) as exc:
            raise failures.malformed(self._where, what, exc) from exc


_OPTIONS: dict[str, tuple[str, ...]] = {
    "max_tokens_field": ("max_tokens", "max_completion_tokens"),
    "embed_encoding": ("float", "base64"),
}


def _dialect(base: Dialect, spec: UpstreamSpec) -> Dialect:
    """The flavour's dialect with the deployment's ``options`` applied (checked)."""
    for key, value in spec.options.items():
        allowed = _OPTIONS.get(key)
        if allowed is None or value not in allowed:
            raise InvalidRequest(
                f"deployment {spec.backend}/{spec.model}: option {key}={value!r} is not one of "
                + ", ".join(f"{k}: {'|'.join(v)}" for k, v in _OPTIONS.items()),
                param="config",
            )
    return replace(base, **spec.options)


def build_openai_compatible(spec: UpstreamSpec, settings: Settings) -> Provider:
    """The ``openai-compatible`` backend: any server, key optional, ``base_url`` required."""
    return OpenAICompatProvider(spec, settings, OPENAI_COMPATIBLE)


def build_openai(spec: UpstreamSpec, settings: Settings) -> Provider:
    """The ``openai`` backend: api.openai.com, key from ``api_key_env`` (OPENAI_API_KEY)."""
    return OpenAICompatProvider(spec, settings, OPENAI)
