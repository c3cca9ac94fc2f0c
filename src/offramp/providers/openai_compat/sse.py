"""Server-sent events, decoded line by line (the ``data`` of each event; nothing else)."""

from __future__ import annotations


class SSEDecoder:
    """Feed text lines without their line ending; get back each complete event's data.

    Multi-line data fields are joined with a newline, comments and other fields are
    skipped, as the SSE specification says. ``close`` flushes an event the stream ended
    without its blank line.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> list[str]:
        if not line:
            return self._flush()
        if line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []

    def close(self) -> list[str]:
        return self._flush()

    def _flush(self) -> list[str]:
        if not self._data:
            return []
        data = "\n".join(self._data)
        self._data = []
        return [data]
