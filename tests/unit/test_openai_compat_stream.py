"""The OpenAI-compatible provider's stream, from a raw server's bytes to items: events
split anywhere across packets, the usage chunk, [DONE]; an error event, a stream that
stops before [DONE], a malformed event and bytes that are not UTF-8 each say which."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from offramp.errors import UpstreamError
from offramp.providers.openai_compat.provider import build_openai_compatible
from offramp.providers.upstream import UpstreamSpec
from offramp.settings import Settings
from offramp.types import ChatRequest, ChoiceDelta, Message, StreamEnd, StreamItem
from tests.unit.test_http_pool import Server

REQUEST = ChatRequest(model="m", messages=(Message("user", "Say hello."),))
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'


def _items(pieces: list[bytes], tmp: Path) -> list[StreamItem]:
    """The provider's items for an upstream whose stream body arrives as ``pieces``
    (chunked, each a write of its own)."""

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        await s.request(r)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        w.write(b"transfer-encoding: chunked\r\n\r\n")
        for piece in pieces:
            w.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await w.drain()
            await asyncio.sleep(0.005)
        w.write(b"0\r\n\r\n")
        await w.drain()

    async def main() -> list[StreamItem]:
        async with Server(answer) as srv:
            spec = UpstreamSpec(backend="openai-compatible", model="m", base_url=srv.url)
            provider = build_openai_compatible(spec, Settings(ledger_path=tmp / "l.db"))
            try:
                return [item async for item in provider.stream_chat(REQUEST)]
            finally:
                await provider.aclose()

    return asyncio.run(main())


def test_events_split_anywhere_become_deltas_then_the_usage(tmp_path: Path) -> None:
    body = CHUNK % b"Hel" + CHUNK % b"lo" + USAGE + b"data: [DONE]\n\n"
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]  # cut mid-line, mid-event
    items = _items(pieces, tmp_path)
    assert [i.text for i in items if isinstance(i, ChoiceDelta)] == ["Hel", "lo"]
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (3, 2)


@pytest.mark.parametrize(
    ("pieces", "code"),
    [
        ([CHUNK % b"a", b'data: {"error": {"message": "boom"}}\n\n'], "upstream_stream_error"),
        ([CHUNK % b"a", CHUNK % b"b"], "upstream_stream_truncated"),
        ([CHUNK % b"a", b"data: {not json\n\n"], "upstream_malformed_response"),
        ([CHUNK % b"a", b"data: \xff\xfe\n\n"], "upstream_malformed_response"),
    ],
)
def test_a_broken_stream_says_how(pieces: list[bytes], code: str, tmp_path: Path) -> None:
    with pytest.raises(UpstreamError) as info:
        _items(pieces, tmp_path)
    assert info.value.code == code
