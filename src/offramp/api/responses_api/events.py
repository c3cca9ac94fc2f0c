"""A chat stream as the Responses API's server-sent events.

The sequence, as OpenAI sends it: ``response.created`` and ``response.in_progress``;
for the text, ``response.output_item.added`` (a message), ``response.content_part.added``,
``response.output_text.delta`` per piece, ``response.output_text.done``,
``response.content_part.done`` and ``response.output_item.done``; for each function
call, ``response.output_item.added``, ``response.function_call_arguments.delta`` and
``.done``, ``response.output_item.done``; last ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` cut it) with the whole response. A
stream that fails midway ends with ``response.failed`` and an ``error`` event. Every
event carries its ``sequence_number``.
"""

from __future__ import annotations

from typing import Any

from offramp.api.responses_api.translate import (
    Json,
    Shape,
    function_call_item,
    message_item,
    response_object,
)
from offramp.api.streaming import sse_event
from offramp.errors import OfframpError
from offramp.types import ChoiceDelta, FinishReason, StreamItem, ToolCall


class ResponseEvents:
    """Renders one response's stream items (choice 0 only: a response has one answer)."""

    def __init__(self, shape: Shape):
        self._shape = shape
        self._sequence = 0
        self._started = False
        self._text: list[str] | None = None  # the open message's text
        self._output: list[Json] = []
        self._finish: FinishReason | None = None

    def render(self, item: StreamItem) -> list[bytes]:
        frames = [] if self._started else self._start()
        if isinstance(item, ChoiceDelta):
            if item.text:
                frames += self._text_delta(item.text)
            self._finish = item.finish_reason or self._finish
            for call in item.tool_calls:
                frames += self._close_message() + self._call(call)
            return frames
        if self._text is None and not self._output:
            frames += self._text_delta("")  # an empty answer is still one message
        frames += self._close_message()
        status = "incomplete" if self._finish == "length" else "completed"
        whole = response_object(self._shape, status, self._output, item.usage)
        return [*frames, self._event(f"response.{status}", response=whole)]

    def failed(self, error: OfframpError) -> list[bytes]:
        """The closing events of a stream that failed after it started."""
        detail = {"code": error.code or "server_error", "message": error.message}
        whole = response_object(self._shape, "failed", self._output, None, detail)
        return [
            self._event("response.failed", response=whole),
            self._event("error", code=error.code, message=error.message, param=error.param),
        ]

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse_event(kind, payload)

    def _start(self) -> list[bytes]:
        self._started = True
        skeleton = response_object(self._shape, "in_progress", [], None)
        return [
            self._event("response.created", response=skeleton),
            self._event("response.in_progress", response=skeleton),
        ]

    def _where(self) -> Json:
        return {"item_id": self._shape.message_id, "output_index": len(self._output)}

    def _text_delta(self, text: str) -> list[bytes]:
        frames = []
        if self._text is None:
            self._text = []
            added = message_item(self._shape, "", "in_progress")
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            frames += [
                self._event(
                    "response.output_item.added", output_index=len(self._output), item=added
                ),
                self._event("response.content_part.added", **self._where(), content_index=0,
                            part=part),
            ]  # fmt: skip
        self._text.append(text)
        if text:
            frames.append(
                self._event(
                    "response.output_text.delta", **self._where(), content_index=0, delta=text,
                    logprobs=[],
                )
            )  # fmt: skip
        return frames

    def _close_message(self) -> list[bytes]:
        if self._text is None:
            return []
        text, self._text = "".join(self._text), None
        status = "incomplete" if self._finish == "length" else "completed"
        item = message_item(self._shape, text, status)
        where = self._where()
        frames = [
            self._event("response.output_text.done", **where, content_index=0, text=text,
                        logprobs=[]),
            self._event("response.content_part.done", **where, content_index=0,
                        part=item["content"][0]),
            self._event("response.output_item.done", output_index=where["output_index"],
                        item=item),
        ]  # fmt: skip
        self._output.append(item)
        return frames

    def _call(self, call: ToolCall) -> list[bytes]:
        index = len(self._output)
        item = function_call_item(call, "incomplete" if self._finish == "length" else "completed")
        where = {"item_id": item["id"], "output_index": index}
        frames = [
            self._event("response.output_item.added", output_index=index,
                        item=function_call_item(call, "in_progress")),
            self._event("response.function_call_arguments.delta", **where,
                        delta=call.arguments),
            self._event("response.function_call_arguments.done", **where, name=call.name,
                        arguments=call.arguments),
            self._event("response.output_item.done", output_index=index, item=item),
        ]  # fmt: skip
        self._output.append(item)
        return frames
