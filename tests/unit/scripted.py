"""A chat backend that replies from a script: the structured loop's real interface, with
the model's side played by fixed texts, so repair and fallback paths run exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator

from offramp.providers.base import Capabilities
from offramp.structured.repair import Adapt, Generated, Streamed
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionResult,
    FinishReason,
    StreamEnd,
    StreamItem,
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

    @property
    def model(self) -> str:
        return self.name

    def spent_usd(self) -> float:
        return 0.0

    def _next(self, request: ChatRequest) -> tuple[str, FinishReason]:
        self.requests.append(request)
        text = self.replies.pop(0)
        return text, self.finish.pop(0) if self.finish else "stop"

    async def chat(self, request: ChatRequest, adapt: Adapt) -> Generated:
        request = adapt(request, self.capabilities)
        text, finish = self._next(request)
        choices = tuple(Choice(i, text, finish) for i in range(request.n))
        result = CompletionResult(request.model, choices, Usage(10, len(text)))
        return Generated(result, self.capabilities.grammar)

    async def stream_chat(self, request: ChatRequest, adapt: Adapt) -> Streamed:
        request = adapt(request, self.capabilities)
        text, finish = self._next(request)

        async def items() -> AsyncIterator[StreamItem]:
            for start in range(0, len(text), 7):
                yield ChoiceDelta(0, text[start : start + 7])
            yield ChoiceDelta(0, finish_reason=finish)
            yield StreamEnd(Usage(10, len(text)))

        return Streamed(items(), self.capabilities.grammar)
