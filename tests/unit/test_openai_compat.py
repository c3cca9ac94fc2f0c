"""Pure translation to and from OpenAI's wire format, and the error mapping (no network)."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from offramp.errors import ContextLengthExceeded, InvalidRequest, PayloadTooLarge, UpstreamError
from offramp.providers.http_pool import TransportError
from offramp.providers.openai_compat import failures, translate
from offramp.providers.openai_compat.sse import SSEDecoder
from offramp.providers.openai_compat.translate import Dialect, Malformed, StreamFailed
from offramp.types import (
    ChatRequest,
    ChoiceDelta,
    CompletionRequest,
    EmbedRequest,
    Message,
    OutputFormat,
    Sampling,
    StreamEnd,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

WEATHER = ToolSpec("weather", "Weather for a city", {"type": "object"})


def test_chat_body_carries_every_field_and_the_extras() -> None:
    request = ChatRequest(
        model="public-name",
        messages=(
            Message("system", "Be brief."),
            Message("assistant", None, tool_calls=(ToolCall("c1", "weather", '{"city":"Oslo"}'),)),
            Message("tool", "cold", tool_call_id="c1"),
        ),
        sampling=Sampling(temperature=0.2, max_tokens=9, stop=("END",), seed=4, logit_bias={5: -1}),
        tools=(WEATHER,),
        tool_choice=ToolChoice("named", "weather"),
        output=OutputFormat("json_schema", {"type": "object"}, "answer"),
        parallel_tool_calls=False,
        extra={"reasoning_effort": "low", "metadata": {"a": "b"}},
    )
    body = translate.chat_body(request, "upstream-model", Dialect(), stream=True)
    assert body["model"] == "upstream-model"
    assert body["temperature"] == 0.2 and "top_p" not in body  # defaults are not sent
    assert body["max_tokens"] == 9 and body["stop"] == ["END"] and body["seed"] == 4
    assert body["logit_bias"] == {"5": -1}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "weather"
    assert body["messages"][2] == {"role": "tool", "content": "cold", "tool_call_id": "c1"}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["response_format"]["json_schema"] == {
        "name": "answer",
        "schema": {"type": "object"},
    }
    assert body["parallel_tool_calls"] is False
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["reasoning_effort"] == "low" and body["metadata"] == {"a": "b"}
    openai = translate.chat_body(
        request, "m", Dialect(max_tokens_field="max_completion_tokens"), stream=False
    )
    assert openai["max_completion_tokens"] == 9 and "max_tokens" not in openai
    assert "stream" not in openai


def test_completion_and_embedding_bodies() -> None:
    completion = CompletionRequest(
        model="x",
        prompt="Once",
        sampling=Sampling(max_tokens=5, logprobs=True, top_logprobs=2),
        echo=True,
        extra={"best_of": 1},
    )
    body = translate.completion_body(completion, "m", stream=False)
    assert body == {
        "model": "m",
        "prompt": "Once",
        "max_tokens": 5,
        "logprobs": 2,
        "echo": True,
        "best_of": 1,
    }
    embed = EmbedRequest(model="x", texts=("a", "b"), dimensions=64, user="u")
    body = translate.embed_body(embed, "m", Dialect(embed_encoding="base64"))
    assert body == {
        "model": "m",
        "input": ["a", "b"],
        "encoding_format": "base64",
        "dimensions": 64,
        "user": "u",
    }


def test_chat_result_reads_choices_tools_logprobs_and_cached_usage() -> None:
    payload = {
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "weather", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": {
                    "content": [
                        {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
                    ]
                },
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 8},
        },
    }
    result = translate.chat_result(payload)
    choice = result.choices[0]
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert (
        choice.tool_calls == (ToolCall("c", "weather", "{}"),)
        and choice.finish_reason == "tool_calls"
    )
    assert choice.logprobs is not None and choice.logprobs[0].bytes == (72, 105)
    assert (result.usage.prompt_tokens, result.usage.cached_tokens) == (12, 8)
    with pytest.raises(Malformed):
        translate.chat_result({"nochoices": []})


def test_text_completion_logprobs_and_unknown_finish_reasons() -> None:
    result = translate.completion_result(
        {
            "choices": [
                {
                    "text": " there",
                    "finish_reason": "eos",
                    "logprobs": {
                        "tokens": [" there"],
                        "token_logprobs": [-0.5],
                        "top_logprobs": [{" there": -0.5, " then": -1.0}],
                    },
                }
            ]
        }
    )
    choice = result.choices[0]
    assert choice.text == " there" and choice.finish_reason == "stop"
    assert choice.logprobs is not None and len(choice.logprobs[0].top) == 2


def test_embeddings_from_floats_and_base64() -> None:
    vector = np.array([0.25, -1.5, 3.0], dtype="<f4")
    payload = {
        "data": [
            {"index": 1, "embedding": base64.b64encode(vector.tobytes()).decode()},
            {"index": 0, "embedding": [1.0, 2.0, 3.0]},
        ],
        "usage": {"prompt_tokens": 4},
    }
    result = translate.embed_result(payload, "m")
    assert result.vectors.shape == (2, 3) and result.vectors.dtype == np.float32
    assert list(result.vectors[0]) == [1.0, 2.0, 3.0] and list(result.vectors[1]) == [
        0.25,
        -1.5,
        3.0,
    ]
    assert result.prompt_tokens == 4


def test_stream_decoder_gathers_tool_call_fragments_and_usage() -> None:
    decoder = translate.StreamDecoder("chat")
    assert decoder.feed({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}) == []
    assert decoder.feed({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}) == [
        ChoiceDelta(0, "Hel")
    ]
    call = {"index": 0, "id": "c1", "function": {"name": "weather", "arguments": '{"ci'}}
    assert decoder.feed({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}) == []
    more = {"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}
    decoder.feed({"choices": [{"index": 0, "delta": {"tool_calls": [more]}}]})
    [last] = decoder.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    assert last.tool_calls == (ToolCall("c1", "weather", '{"city":"Oslo"}'),)
    assert last.finish_reason == "tool_calls"
    decoder.feed({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
    end = decoder.end()
    assert isinstance(end, StreamEnd) and end.usage.total_tokens == 9


def test_an_error_event_inside_a_200_stream_is_detected() -> None:
    decoder = translate.StreamDecoder("text")
    assert decoder.feed({"choices": [{"index": 0, "text": "a"}]}) == [ChoiceDelta(0, "a")]
    with pytest.raises(StreamFailed) as info:
        decoder.feed({"error": {"message": "engine died", "code": 500}})
    error = failures.from_stream_error(info.value.error, "up")
    assert error.retryable and "engine died" in error.message


def test_sse_decoder_joins_data_lines_and_skips_comments() -> None:
    sse = SSEDecoder()
    lines = [": keep-alive", "event: message", 'data: {"a":', "data: 1}", "", "data:[DONE]", ""]
    events = [e for line in lines for e in sse.feed(line)]
    assert events == ['{"a":\n1}', "[DONE]"]
    assert sse.feed("data: tail") == [] and sse.close() == ["tail"]


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retryable", "retry_after"),
    [
        (429, b'{"error":{"message":"slow down"}}', {"retry-after": "2"}, UpstreamError, True, 2.0),
        (429, b"{}", {"retry-after-ms": "1500"}, UpstreamError, True, 1.5),
        (500, b"oops", {}, UpstreamError, True, None),
        (503, b'{"error":{"message":"busy"}}', {"retry-after": "1"}, UpstreamError, True, 1.0),
        (401, b'{"error":{"message":"bad key"}}', {}, UpstreamError, False, None),
        (404, b'{"error":{"message":"no such model"}}', {}, UpstreamError, False, None),
        (413, b"{}", {}, PayloadTooLarge, False, None),
        (
            400,
            b'{"error":{"message":"bad temperature","param":"temperature"}}',
            {},
            InvalidRequest,
            False,
            None,
        ),
    ],
)
def test_statuses_map_onto_the_error_tree(
    status: int,
    body: bytes,
    headers: dict[str, str],
    kind: type,
    retryable: bool,
    retry_after: float | None,
) -> None:
    error = failures.from_response(status, body, headers, "up")
    assert type(error) is kind
    assert error.retryable is retryable and error.retry_after == retry_after
    assert str(status) in error.message


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens",
        "Requested tokens (5000) exceed context window of 2048",
        "the request exceeds the available context size, try increasing it",
    ],
)
def test_context_length_errors_in_each_servers_words(message: str) -> None:
    body = orjson.dumps({"error": {"message": message}})
    error = failures.from_response(400, body, {}, "up")
    assert isinstance(error, ContextLengthExceeded) and error.fallback


def test_transport_errors_say_whether_the_upstream_had_begun_answering() -> None:
    refused = failures.from_transport(TransportError("refused"), "up")
    cut = failures.from_transport(TransportError("closed early"), "up", 200)
    slow = failures.from_transport(TimeoutError(), "up", 200)
    assert (refused.code, refused.status) == ("upstream_unreachable", None)
    assert (cut.code, cut.status, cut.retryable) == ("upstream_stream_cut", 200, True)
    assert "cut mid-answer" in cut.message and "could not be reached" not in cut.message
    assert (slow.code, slow.status) == ("upstream_timeout", 200)
