"""The hot model doors answer as the framework path does: the same request sent as
``application/json`` (served by api.hot_doors) and as a ``+json`` media type (which
only the framework path reads) gets the same status, headers and body shape; bad ones
the same error, byte for byte."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.servers import ServerThread

HOT = {"content-type": "application/json"}
FRAMEWORK = {"content-type": "application/vnd.offramp+json"}  # read as JSON by FastAPI only
HELLO = [{"role": "user", "content": "Say hi."}]
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 4},
    "/v1/completions": {"model": "gpt-4o-mini", "prompt": "Once", "max_tokens": 4},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hello"},
    "/v1/responses": {"model": "gpt-4o-mini", "input": "Say hi.", "max_output_tokens": 16},
    "/v1/messages": {"model": "claude-3-5-haiku-latest", "messages": HELLO, "max_tokens": 4},
}
# headers whose values differ per request
VARYING = {"date", "x-request-id", "content-length", "x-offramp-latency-ms"}


def _send(server: ServerThread, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        server.base_url + path,
        content=body,
        headers={**headers, "cache-control": "no-cache"},
        timeout=120,
    )


def _shape(value: Any) -> Any:
    """The keys and types of a JSON value, not its varying contents."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in {"id", "created", "created_at"}}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


@pytest.mark.parametrize("path", sorted(VALID))
def test_a_valid_request_is_answered_alike(server: ServerThread, path: str) -> None:
    greedy = {} if path == "/v1/embeddings" else {"temperature": 0}
    body = orjson.dumps({**VALID[path], **greedy})
    hot, framework = _send(server, path, body, HOT), _send(server, path, body, FRAMEWORK)
    assert hot.status_code == framework.status_code == 200, (hot.text, framework.text)
    assert set(hot.headers) - VARYING == set(framework.headers) - VARYING
    assert _shape(hot.json()) == _shape(framework.json())


BAD: list[tuple[str, bytes]] = [
    ("/v1/chat/completions", b'{"model": "gpt-4o-mini"}'),
    ("/v1/chat/completions", b'{"model": "gpt-4o-mini", "messages": [], "temperature": 9}'),
    ("/v1/chat/completions", b'{"model": "gpt-4o-mini", "messages": "hi", "frobnicate": 1}'),
    ("/v1/chat/completions", b'{"model": "gpt-4o-mini", "messages": [{"role": "user"'),
    ("/v1/chat/completions", b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}'),
    ("/v1/completions", b'{"model": "gpt-4o-mini", "prompt": 5}'),
    ("/v1/embeddings", b'{"model": "text-embedding-3-small", "input": []}'),
    ("/v1/embeddings", b'{"model": "text-embedding-3-small", "input": "x", "dimensions": NaN}'),
    ("/v1/responses", b'{"model": "gpt-4o-mini"}'),
    ("/v1/messages", b'{"model": "claude-3-5-haiku-latest", "messages": []}'),
    ("/v1/messages", b"[1, 2, 3]"),
]


@pytest.mark.parametrize(("path", "body"), BAD)
def test_a_bad_request_gets_the_same_error(server: ServerThread, path: str, body: bytes) -> None:
    hot, framework = _send(server, path, body, HOT), _send(server, path, body, FRAMEWORK)
    assert 400 <= hot.status_code < 500
    assert (hot.status_code, hot.json()) == (framework.status_code, framework.json())
