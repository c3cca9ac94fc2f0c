"""Anthropic's streaming Messages API (server-sent events) as domain stream items. Pure.

``SSEDecoder`` turns lines into events; ``StreamTranslator`` turns events into
ChoiceDelta / StreamEnd items:

    message_start            usage so far (input and cache tokens); nothing is yielded
    content_block_start      a text block's first text; a tool_use block's id and name
    content_block_delta      text_delta -> a text delta at once; input_json_delta is kept
                             until its block stops (in JSON mode it is the answer's text)
    content_block_stop       a tool_use block becomes a whole ToolCall
    message_delta            stop_reason and final usage -> the last delta, with every
                             tool call of the message and the finish reason
    message_stop             -> StreamEnd with the real usage
    ping, unknown types      nothing
    error                    raises UpstreamError (retryable for overload, 5xx, 429)

Tool calls travel whole in the last delta because the domain stream numbers them by
their position in one delta. A stream that ends before ``message_stop`` raises a
retryable UpstreamError from ``finish``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from offramp.errors import UpstreamError
from offramp.providers.anthropic import failures
from offramp.providers.anthropic.response import finish_reason, usage
from offramp.providers.anthropic.wire import StreamEvent, WireError, WireUsage
from offramp.types import ChoiceDelta, OutputFormat, StreamEnd, StreamItem, ToolCall


class SSEDecoder:
    """Collects ``data:`` lines into one payload per event (events end at a blank line)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[str]:
        """Yield the data of the event that ``line`` completes, if it completes one."""
        line = line.rstrip("\r\n")
        if not line:
            if self._data:
                data, self._data = "\n".join(self._data), []
                yield data
            return
        if line.startswith(":"):  # an SSE comment (keep-alive)
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        # ``event:`` repeats the type that the data's JSON carries; ``id``/``retry`` unused.

    def close(self) -> Iterator[str]:
        """Yield an event left without its closing blank line."""
        yield from self.feed("")


def parse_event(data: str) -> StreamEvent:
    """One event's JSON data; a malformed one is an UpstreamError."""
    try:
        return StreamEvent.model_validate_json(data)
    except ValidationError as exc:
        raise failures.malformed("stream event", exc) from exc


@dataclass
class _ToolBlock:
    id: str
    name: str
    json: list[str] = field(default_factory=list)


class StreamTranslator:
    """Turns one message's events into stream items; one translator per stream."""

    def __init__(self, output: OutputFormat) -> None:
        self._json_mode = output.kind != "text"
        self._output = output
        self._usage = WireUsage()
        self._open: dict[int, _ToolBlock] = {}
        self._calls: list[ToolCall] = []
        self.finished = False

    def feed(self, event: StreamEvent) -> list[StreamItem]:
        """The items ``event`` produces; raises UpstreamError on an ``error`` event."""
        handler = _HANDLERS.get(event.type)
        return handler(self, event) if handler else []

    def finish(self) -> None:
        """Check the stream was complete once the upstream closed it."""
        if not self.finished:
            raise UpstreamError(
                "anthropic closed the stream before message_stop",
                status=200,
                retryable=True,
                code="upstream_stream_cut",
            )

    def _message_start(self, event: StreamEvent) -> list[StreamItem]:
        if event.message is not None:
            self._merge_usage(event.message.usage)
        return []

    def _block_start(self, event: StreamEvent) -> list[StreamItem]:
        block = event.content_block
        if block is None or event.index is None:
            return []
        if block.type == "text":
            return self._text(block.text or "")
        if block.type == "tool_use" and not self._json_mode:
            self._open[event.index] = _ToolBlock(block.id or "", block.name or "")
        return []

    def _block_delta(self, event: StreamEvent) -> list[StreamItem]:
        delta = event.delta
        if delta is None:
            return []
        if delta.type == "text_delta":
            return self._text(delta.text or "")
        if delta.type == "input_json_delta":
            if self._json_mode:
                return self._text(delta.partial_json or "")
            tool = self._open.get(event.index if event.index is not None else -1)
            if tool is not None:
                tool.json.append(delta.partial_json or "")
        return []  # thinking, signature and citation deltas have no OpenAI form

    def _block_stop(self, event: StreamEvent) -> list[StreamItem]:
        tool = self._open.pop(event.index if event.index is not None else -1, None)
        if tool is not None:
            arguments = "".join(tool.json) or "{}"
            self._calls.append(ToolCall(tool.id, tool.name, arguments))
        return []

    def _message_delta(self, event: StreamEvent) -> list[StreamItem]:
        if event.usage is not None:
            self._merge_usage(event.usage)
        reason = event.delta.stop_reason if event.delta else None
        last = ChoiceDelta(
            index=0,
            tool_calls=tuple(self._calls),
            finish_reason=finish_reason(reason, self._output),
        )
        return [last]

    def _message_stop(self, _: StreamEvent) -> list[StreamItem]:
        self.finished = True
        return [StreamEnd(usage(self._usage))]

    def _error(self, event: StreamEvent) -> list[StreamItem]:
        raise failures.from_stream_event(event.error or WireError())

    def _text(self, text: str) -> list[StreamItem]:
        return [ChoiceDelta(index=0, text=text)] if text else []

    def _merge_usage(self, update: WireUsage) -> None:
        # message_delta's counts are cumulative; a field it leaves out keeps its value.
        given = update.model_dump(exclude_none=True)
        self._usage = self._usage.model_copy(update=given)


_HANDLERS = {
    "message_start": StreamTranslator._message_start,
    "content_block_start": StreamTranslator._block_start,
    "content_block_delta": StreamTranslator._block_delta,
    "content_block_stop": StreamTranslator._block_stop,
    "message_delta": StreamTranslator._message_delta,
    "message_stop": StreamTranslator._message_stop,
    "error": StreamTranslator._error,
}
