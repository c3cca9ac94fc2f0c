"""A chat backend that replies from a script: the structured loop's real interface, with
the model's side played by fixed texts, so repair and fallback paths run exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator

from offramp.providers.base import Capabilities, StreamItem
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionResult,
    FinishReason,
    StreamEnd,
    Usage,
)


class ScriptedBackend:
    """Answers each request with the next scripted reply; records every request."""

    def __init__(
        self,
        replies: list[str],
        *,
        grammar: bool = True,
        finish: list[FinishReason] | None = None,
        name: str = "scripted-model",
    ):
        self.replies = list(replies)
        self.finish = list(finish or [])
        self.requests: list[ChatRequest] = []
        self.capabilities = Capabilities(chat=True, grammar=grammar)
        self.name = name

    async def describe(self, model: str) -> tuple[str, Capabilities]:
        return self.name, self.capabilities

    def _next(self, request: ChatRequest) -> tuple[str, FinishReason]:
        self.requests.append(request)
        text = self.replies.pop(0)
        return text, self.finish.pop(0) if self.finish else "stop"

    async def chat(self, request: ChatRequest) -> CompletionResult:
        text, finish = self._next(request)
        choices = tuple(Choice(i, text, finish) for i in range(request.n))
        return CompletionResult(request.model, choices, Usage(10, len(text)))

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        text, finish = self._next(request)

        async def items() -> AsyncIterator[StreamItem]:
            for start in range(0, len(text), 7):
                yield ChoiceDelta(0, text[start : start + 7])
            yield ChoiceDelta(0, finish_reason=finish)
            yield StreamEnd(Usage(10, len(text)))

        return items()
