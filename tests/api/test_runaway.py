"""Answers that would run away are ended: the repetition guard through the official SDK,
whole and streamed, and the per-request switch that turns it off."""

from __future__ import annotations

import httpx
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.providers.llamacpp.provider import LlamaCppProvider
from tests.servers import ServerThread

MODEL = "gpt-4o-mini"
ASK = [{"role": "user", "content": "Say something."}]


@pytest.fixture(scope="module")
def loop_bias(pool: ModelPool) -> dict[str, int]:
    """A logit bias that makes the model write one token forever."""
    provider = pool._loaded["smollm2-135m-instruct"]
    assert isinstance(provider, LlamaCppProvider)
    (token,) = provider.engine.tokenize(" la", add_special=False, parse_special=False)
    return {str(token): 100}


def test_a_looping_answer_is_stopped_and_reported(
    client: openai.OpenAI, loop_bias: dict[str, int]
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=ASK,
        max_tokens=300,
        temperature=0,
        logit_bias=loop_bias,  # type: ignore[arg-type]
    )
    reply = raw.parse()
    assert raw.headers["x-offramp-degenerate"] == "stopped"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 96


def test_the_guard_is_off_per_request(client: openai.OpenAI, loop_bias: dict[str, int]) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=ASK,
        max_tokens=110,
        temperature=0,
        logit_bias=loop_bias,  # type: ignore[arg-type]
        extra_body={"offramp": {"repetition_guard": False}},
    )
    reply = raw.parse()
    assert "x-offramp-degenerate" not in raw.headers
    assert reply.usage is not None and reply.usage.completion_tokens == 110


def test_a_stream_reports_the_stop_in_its_closing_comment(
    server: ServerThread, loop_bias: dict[str, int]
) -> None:
    body = {
        "model": MODEL,
        "messages": ASK,
        "max_tokens": 300,
        "temperature": 0,
        "logit_bias": loop_bias,
        "stream": True,
    }
    with httpx.stream(
        "POST", server.base_url + "/v1/chat/completions", json=body, timeout=120
    ) as r:
        lines = [line for line in r.iter_lines() if line]
    assert any(line.startswith(":") and "x-offramp-degenerate=stopped" in line for line in lines)
    assert any('"finish_reason":"length"' in line for line in lines)


def test_unknown_offramp_option_is_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=2,
            extra_body={"offramp": {"guard": False}},  # type: ignore[arg-type]
        )
    assert "guard" in str(info.value)
