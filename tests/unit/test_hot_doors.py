"""HotDoors: plain valid JSON for a door's model reaches its endpoint directly; anything
else reaches the framework with the whole body handed over again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from offramp.api.hot_doors import Door, HotDoors
from offramp.api.limits import BodySizeLimit
from offramp.errors import InvalidRequest
from offramp.gateway.accounting import Caller
from tests.faults import read_body


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    n: int = 1


class _State:
    keys = None  # auth off


class _App:
    state = _State()


class Recorder:
    def __init__(self) -> None:
        self.framework: list[bytes] = []
        self.served: list[tuple[Body, str]] = []

    async def fallback(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.framework.append(await read_body(receive))
        await JSONResponse({"from": "framework"})(scope, receive, send)

    async def endpoint(self, body: Any, request: Request, caller: Caller) -> Response:
        if body.model == "raise":
            raise InvalidRequest("bad model", param="model")
        self.served.append((body, caller.request_id))
        return JSONResponse({"from": "door", "n": body.n})


def _run(recorder: Recorder, calls: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with _client(recorder) as client:
            return await calls(client)

    return asyncio.run(main())


def _client(recorder: Recorder) -> httpx.AsyncClient:
    # as in the app: the body limit in front hands the whole body over as one message
    hot = HotDoors({"/v1/x": Door(Body, recorder.endpoint)}, recorder.fallback)
    doors = BodySizeLimit(hot, max_bytes=10**6)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = _App()
        scope.setdefault("state", {})["request_id"] = "req_1"
        await doors(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_valid_json_goes_to_the_endpoint_with_the_caller() -> None:
    recorder = Recorder()

    async def calls(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        r = await client.post("/v1/x", json={"model": "m", "n": 3})
        plain = await client.post(
            "/v1/x",
            content=b'{"model":"m"}',
            headers={"content-type": "application/json; charset=utf-8"},
        )
        return r, plain

    r, plain = _run(recorder, calls)
    assert r.json() == {"from": "door", "n": 3}
    assert plain.json() == {"from": "door", "n": 1}
    seen = [(b.model, b.n, rid) for b, rid in recorder.served]
    assert seen == [("m", 3, "req_1"), ("m", 1, "req_1")]
    assert recorder.framework == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"model": 5}', "application/json"),  # invalid for the model
        (b'{"model": "m", "extra": 1}', "application/json"),  # an unknown field
        (b"[1, 2]", "application/json"),  # not an object
        (b'{"model": "m"', "application/json"),  # not JSON
        (b'{"model": "m", "n": NaN}', "application/json"),  # the stdlib reads it, orjson not
        (b'{"model": "\\ud800"}', "application/json"),  # a lone surrogate
        (b'{"model": "m", "n": 123456789012345678901234567890}', "application/json"),
        (b'{"model": "m"}', "text/plain"),  # another media type
        (b'{"model": "m"}', "application/vnd.x+json"),
    ],
)
def test_anything_else_goes_to_the_framework_with_its_whole_body(
    content: bytes, content_type: str
) -> None:
    recorder = Recorder()
    r = _run(
        recorder,
        lambda c: c.post("/v1/x", content=content, headers={"content-type": content_type}),
    )
    assert r.json() == {"from": "framework"}
    assert recorder.framework == [content]
    assert recorder.served == []


def test_other_methods_and_paths_go_to_the_framework() -> None:
    recorder = Recorder()
    assert _run(recorder, lambda c: c.get("/v1/x")).json() == {"from": "framework"}
    r = _run(recorder, lambda c: c.post("/v1/y", json={"model": "m"}))
    assert r.json() == {"from": "framework"}
    assert recorder.served == []


def test_an_endpoint_error_is_rendered_in_its_envelope() -> None:
    recorder = Recorder()
    r = _run(recorder, lambda c: c.post("/v1/x", json={"model": "raise"}))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model"
    assert r.json()["error"]["message"] == "bad model"
