"""Bad input gets OpenAI's error envelope with the right status, naming the field."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.settings import Settings
from tests.servers import ServerThread

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello"}]


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=HELLO)  # type: ignore[arg-type]
    err = _error(info.value)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x")
    with pytest.raises(openai.NotFoundError):  # a chat model cannot embed
        client.embeddings.create(model=MODEL, input="x")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"n": 0}, "n"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"store": True}, "store"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"logit_bias": {"x": 1}}, "logit_bias"),
        ({"logit_bias": {"99999999": 1}}, "logit_bias"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema.schema"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"moderation": {"model": "x"}}, "moderation"),
        (
            {
                "functions": [{"name": "f"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            "functions",
        ),
        ({"functions": [{"name": "f"}], "function_call": {"name": "g"}}, "function_call"),
    ],
)
def test_bad_parameter_is_400_naming_it(
    client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            max_tokens=4,  # type: ignore[arg-type]
            extra_body=extra,
        )
    err = _error(info.value)
    assert err["param"] == param, err
    assert err["type"] == "invalid_request_error"


def test_image_parts_are_refused_not_dropped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            max_tokens=4,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                }
            ],
        )
    assert _error(info.value)["param"] == "messages[0].content[1]"


def test_malformed_json_is_400(server: ServerThread) -> None:
    r = httpx.post(
        server.base_url + "/v1/chat/completions",
        content=b'{"model": "x", ',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


def test_prompt_over_context_is_400_with_the_numbers(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "word " * 9000}]
        )
    err = _error(info.value)
    assert err["code"] == "context_length_exceeded" and err["param"] == "messages"
    assert "maximum context length is 8192 tokens" in err["message"]
    over = re.search(r"requested (\d+) in the messages: (\d+) too many", err["message"])
    assert over is not None and int(over[1]) - 8192 + 1 == int(over[2])
    estimate = re.search(r"about (\d+) tokens", err["message"])
    assert estimate is not None and 9000 <= int(estimate[1]) <= 12000  # 45,000 chars / 4 + 6
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8190)  # type: ignore[arg-type]
    err = _error(info.value)
    assert err["code"] == "context_length_exceeded"
    assert "8190 in the completion" in err["message"]


@pytest.mark.parametrize(
    ("schema", "param", "words"),
    [
        ({"type": "strnig"}, "response_format.json_schema.schema", "invalid JSON schema"),
        ({"type": "object", "required": "a"}, "response_format.json_schema.schema", "invalid"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}},
            "response_format.json_schema.schema",
            "points at nothing",
        ),
        ({"$ref": "https://example.org/s.json"}, "response_format.json_schema.schema", "local"),
        (
            {"type": "string", "pattern": "(unclosed"},
            "response_format.json_schema.schema",
            "pattern",
        ),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "response_format", "no integer"),
    ],
)
def test_schema_openai_would_refuse_too_is_400(
    client: openai.OpenAI, schema: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            max_tokens=4,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
        )
    err = _error(info.value)
    assert words in err["message"] and err["param"] == param, err


def test_broken_tool_schema_is_400_naming_the_tool(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"n": {"$ref": "#/definitions/N"}}},
        },
    }
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=HELLO, tools=[tool])  # type: ignore[arg-type, list-item]
    err = _error(info.value)
    assert "#/definitions/N" in err["message"] and err["param"] == "tools[0].function.parameters"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": "x", "dimensions": 1000}, "dimensions"),
        ({"input": "word " * 8200}, "input"),
    ],
)
def test_bad_embedding_input_is_400(
    client: openai.OpenAI, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text-embedding-3-small", **kwargs)
    assert _error(info.value)["param"] == param


def test_completions_refuse_what_they_cannot_do(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt="a", suffix="b")
    assert _error(info.value)["param"] == "suffix"
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt=[1, 2, 3])
    assert _error(info.value)["param"] == "prompt"


def test_unknown_route_uses_the_envelope(server: ServerThread) -> None:
    r = httpx.get(server.base_url + "/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    wrong = httpx.get(server.base_url + "/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_json_nested_too_deep_is_400_invalid_json(server: ServerThread) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000,
                 b'{"model": "x", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"):  # fmt: skip
        r = httpx.post(
            server.base_url + "/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"temperature": "x" * 1_000_000}, "temperature"),
        ({"x" * 1_000_000: 1}, "x" * 64),
        ({"model": "m" * 4000}, "model"),
        ({"user": "u" * 4000}, "user"),
        ({"logit_bias": {"k" * 100_000: 1}}, "logit_bias"),
    ],
)
def test_errors_quote_a_short_prefix_of_a_bad_value(
    server: ServerThread, change: dict[str, Any], param: str
) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 1, **change}
    r = httpx.post(server.base_url + "/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text[:300]
    assert len(r.content) < 600  # the message names the field, it does not echo the value
    assert r.json()["error"]["param"] == param


@pytest.fixture(scope="module")
def tight(settings: Settings, pool: ModelPool) -> Iterator[ServerThread]:
    """An app over the same loaded models, with no queue and a 4 KiB body limit."""
    strict = settings.model_copy(update={"max_queue": 0, "max_body_bytes": 4096})
    with ServerThread(strict, pool) as running:
        yield running


def test_oversized_body_is_413(tight: ServerThread) -> None:
    client = openai.OpenAI(base_url=tight.base_url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x" * 10_000}]
        )
    assert info.value.status_code == 413
    assert _error(info.value)["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    r = httpx.post(
        tight.base_url + "/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413


def test_full_queue_is_503_with_retry_after(tight: ServerThread, pool: ModelPool) -> None:
    body = {
        "model": MODEL,
        "messages": HELLO,
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
        "logit_bias": {"2": -100, "0": -100},
    }
    provider = pool._loaded["smollm2-135m-instruct"]
    slots = provider.capabilities.concurrency
    # one client per slot, as separate applications would be, holds every slot busy
    with contextlib.ExitStack() as stack:
        holders = []
        for _ in range(slots):
            http = stack.enter_context(httpx.Client(base_url=tight.base_url, timeout=60))
            running = stack.enter_context(http.stream("POST", "/v1/chat/completions", json=body))
            assert running.status_code == 200
            lines = running.iter_lines()  # kept: a dropped iterator closes the response
            next(lines)  # the first token is out: this slot is busy
            holders.append(lines)
        other = stack.enter_context(httpx.Client(base_url=tight.base_url, timeout=60))
        r = other.post("/v1/chat/completions", json={**body, "stream": False})
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "overloaded"
