"""A scripted OpenAI-compatible chat server on loopback: answers every request with
``answer(body)`` (whole or streamed), after ``delay_s``, or fails with ``fail_status``;
records every body it received. Stands in for a hosted model (a teacher) in tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers import AsgiThread

Json = dict[str, Any]


def echo_answer(name: str) -> Callable[[Json], str]:
    """Answers ``NAME says: LAST USER MESSAGE``, or JSON (``{"word": NAME}``) when the
    request asks for JSON output."""

    def answer(body: Json) -> str:
        if body.get("response_format"):
            return json.dumps({"word": name})
        users = [m for m in body["messages"] if m["role"] == "user"]
        return f"{name} says: {users[-1]['content'] if users else ''}"

    return answer


class ScriptedUpstream(AsgiThread):
    """The server; change ``answer``, ``delay_s`` and ``fail_status`` between tests."""

    def __init__(self, name: str):
        self.name = name
        self.answer: Callable[[Json], str] = echo_answer(name)
        self.delay_s = 0.0
        self.fail_status: int | None = None
        self.received: list[Json] = []
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        super().__init__(app, log_level="critical")

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    def reset(self) -> None:
        self.answer = echo_answer(self.name)
        self.delay_s = 0.0
        self.fail_status = None
        self.received.clear()

    async def _chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.received.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_status is not None:
            error = {"message": "scripted failure", "type": "server_error", "code": None}
            return JSONResponse({"error": error}, status_code=self.fail_status)
        text = self.answer(body)
        usage = {"prompt_tokens": 10, "completion_tokens": len(text.split()),
                 "total_tokens": 10 + len(text.split())}  # fmt: skip
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": body["model"]}  # fmt: skip
        if body.get("stream"):
            return StreamingResponse(_chunks(base, text, usage), media_type="text/event-stream")
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        return JSONResponse(
            {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )


async def _chunks(base: Json, text: str, usage: Json) -> AsyncIterator[bytes]:
    def frame(choices: list[Json], used: Json | None = None) -> bytes:
        chunk = {**base, "object": "chat.completion.chunk", "choices": choices, "usage": used}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield frame([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    words = text.split(" ")
    for piece in [words[0], *(" " + w for w in words[1:])]:
        yield frame([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield frame([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    yield frame([], usage)
    yield b"data: [DONE]\n\n"
