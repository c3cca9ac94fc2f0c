"""A chat stream as the Messages API's server-sent events.

The sequence, as Anthropic sends it: ``message_start`` (the message with no content
yet and the prompt's tokens) and a ``ping``; per content block ``content_block_start``,
``content_block_delta`` (``text_delta`` pieces, or the call's ``input_json_delta``) and
``content_block_stop``; then ``message_delta`` with the ``stop_reason`` and the usage,
and ``message_stop``. A stream that fails midway ends with an ``error`` event in
Anthropic's envelope.
"""

from __future__ import annotations

from typing import Any

from offramp.api.anthropic import errors
from offramp.api.anthropic.translate import STOP_REASONS, tool_use_id, usage_object
from offramp.api.streaming import sse_event
from offramp.errors import OfframpError
from offramp.types import ChoiceDelta, FinishReason, StreamItem, ToolCall, Usage


class MessageEvents:
    """Renders one message's stream items (choice 0: a message has one answer)."""

    def __init__(self, message_id: str, model: str):
        self._id = message_id
        self._model = model
        self._started = False
        self._blocks = 0  # content blocks opened so far
        self._text_open = False
        self._finish: FinishReason = "stop"

    def render(self, item: StreamItem) -> list[bytes]:
        frames = [] if self._started else self._start(item)
        if isinstance(item, ChoiceDelta):
            if item.text:
                frames += self._text(item.text)
            for call in item.tool_calls:
                frames += self._close_text() + self._call(call)
            self._finish = item.finish_reason or self._finish
            return frames
        usage = usage_object(item.usage)
        delta = {"stop_reason": STOP_REASONS[self._finish], "stop_sequence": None}
        return [
            *frames,
            *self._close_text(),
            self._event("message_delta", delta=delta, usage=usage),
            self._event("message_stop"),
        ]

    def failed(self, error: OfframpError) -> list[bytes]:
        """The closing event of a stream that failed after it started."""
        _, body = errors.envelope(error)
        return [sse_event("error", body)]

    def _event(self, kind: str, **fields: Any) -> bytes:
        return sse_event(kind, {"type": kind, **fields})

    def _start(self, first: StreamItem) -> list[bytes]:
        self._started = True
        prompt = (
            first.prompt_tokens if isinstance(first, ChoiceDelta) else first.usage.prompt_tokens
        )
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_object(Usage(prompt, 0)),
        }
        return [self._event("message_start", message=message), self._event("ping")]

    def _text(self, text: str) -> list[bytes]:
        frames = []
        if not self._text_open:
            self._text_open = True
            block = {"type": "text", "text": ""}
            frames.append(
                self._event("content_block_start", index=self._blocks, content_block=block)
            )
        delta = {"type": "text_delta", "text": text}
        frames.append(self._event("content_block_delta", index=self._blocks, delta=delta))
        return frames

    def _close_text(self) -> list[bytes]:
        if not self._text_open:
            return []
        self._text_open = False
        self._blocks += 1
        return [self._event("content_block_stop", index=self._blocks - 1)]

    def _call(self, call: ToolCall) -> list[bytes]:
        index = self._blocks
        self._blocks += 1
        block = {"type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": call.arguments}
        return [
            self._event("content_block_start", index=index, content_block=block),
            self._event("content_block_delta", index=index, delta=delta),
            self._event("content_block_stop", index=index),
        ]
