"""The model doors without the framework's per-request machinery.

FastAPI spends, per request, about a quarter of a gateway process's CPU before and
around a route (its middleware layers, telemetry, routing, dependency solving, body
reading and validation; bench/README.md, gateway throughput). The doors every
application calls all the time (chat, completions, embeddings, Responses, Messages)
are served here instead: the body is parsed with orjson and validated with the route's
own pydantic model, the caller is resolved by the same ``caller_of``, and the route's
own endpoint function runs and answers. Everything else, and any request here that is
not plain valid JSON for its model, goes to the FastAPI app unchanged, so errors (their
status, envelope and wording) are exactly the framework path's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offramp.api.caller import caller_of
from offramp.api.errors import render
from offramp.api.limits import replaying
from offramp.api.streaming import ClientGone
from offramp.gateway.accounting import Caller

Endpoint = Callable[[Any, Request, Caller], Awaitable[Response]]


@dataclass(frozen=True)
class Door:
    """A POST route served here: its body model and its endpoint function."""

    body: type[BaseModel]
    endpoint: Endpoint


class HotDoors:
    """ASGI: POSTs to ``doors``' paths with a JSON body their model accepts are served
    directly; every other request goes to ``fallback`` (the FastAPI app), with the body
    already read handed over again. Sits inside the body-size limit, which delivers the
    whole body as one message."""

    def __init__(self, doors: Mapping[str, Door], fallback: ASGIApp):
        self._doors = dict(doors)
        self._fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self._doors.get(scope["path"]) if scope["method"] == "POST" else None
        if door is None or not _json_content(scope):
            await self._fallback(scope, receive, send)
            return
        message = await receive()
        body = _valid(door, message)
        if body is None:
            await self._fallback(scope, replaying(message, receive), send)
            return
        request = Request(scope, receive)
        try:
            caller = await caller_of(request)
            response = await door.endpoint(body, request, caller)
        except ClientGone:
            response = Response(status_code=499)  # nobody is listening any more
        except Exception as exc:
            response = render(scope, exc)
        await response(scope, receive, send)


def _json_content(scope: Scope) -> bool:
    """True when the request says its body is JSON or says nothing (as FastAPI reads
    it); other media types go to the framework, which answers them as it always has."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json"
    return True


def _valid(door: Door, message: Message) -> BaseModel | None:
    """The body as the door's model, or None for anything the framework should answer
    (not a whole body, not JSON orjson reads the same as the stdlib parser, invalid)."""
    if message["type"] != "http.request" or message.get("more_body", False):
        return None
    try:
        data = orjson.loads(message.get("body", b""))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return door.body.model_validate(data)
    except ValidationError:
        return None
