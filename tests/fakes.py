"""A scripted provider implementing the real interface, for routing logic.

Each call takes the next step of its script (the last step repeats):
an OfframpError is raised; a float is slept, then "ok" is answered; a str is answered;
a list is a stream's pieces (str -> a content delta, OfframpError -> raised there, ""
-> an empty role-only delta), whole calls join its strs or raise its first error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import numpy as np

from offramp.errors import OfframpError
from offramp.providers.base import Capabilities, Provider
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    StreamEnd,
    StreamItem,
    Usage,
)

Step = OfframpError | float | str | Sequence["str | OfframpError"]

CAPS = Capabilities(chat=True, completions=True, embeddings=True, tools=True, concurrency=8)


class FakeProvider(Provider):
    """Follows its script; counts calls and keeps the requests it was sent."""

    def __init__(self, *steps: Step, passthrough: bool = False):
        self._steps: list[Step] = list(steps) or ["ok"]
        self.calls = 0
        self.requests: list[ChatRequest] = []
        self.capabilities = replace(CAPS, passthrough=passthrough)

    def script(self, *steps: Step) -> None:
        """Replace what the next calls do."""
        self._steps = list(steps)

    def _next(self) -> Step:
        self.calls += 1
        return self._steps.pop(0) if len(self._steps) > 1 else self._steps[0]

    async def chat(self, request: ChatRequest) -> CompletionResult:
        self.requests.append(request)
        step = self._next()
        if isinstance(step, OfframpError):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = "ok"
        if not isinstance(step, str):
            errors = [p for p in step if isinstance(p, OfframpError)]
            if errors:
                raise errors[0]
            step = "".join(p for p in step if isinstance(p, str))
        return CompletionResult("fake", (Choice(0, step, "stop"),), Usage(10, 5))

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        self.requests.append(request)
        step = self._next()
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = ["ok"]
        pieces: Sequence[str | OfframpError] = (
            [step] if isinstance(step, str | OfframpError) else step
        )
        for piece in pieces:
            if isinstance(piece, OfframpError):
                raise piece
            yield ChoiceDelta(0, piece)
        yield ChoiceDelta(0, finish_reason="stop")
        yield StreamEnd(Usage(10, len(pieces)))

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        step = self._next()
        if isinstance(step, OfframpError):
            raise step
        return EmbedResult("fake", np.ones((len(request.texts), 4), dtype=np.float32), 3)
