"""Anthropic's Messages API through the official ``anthropic`` SDK against a real server
on the bundled model: whole and streamed messages, tool use, token counts, Anthropic's
error envelope, and auth by ``x-api-key``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from pydantic import BaseModel, SecretStr

from offramp.local.pool import ModelPool
from offramp.settings import Settings
from tests.servers import ServerThread

MODEL = "claude-3-5-haiku-latest"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
HI = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def claude(server: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base_url, api_key="unused", max_retries=0, timeout=120
    )


def test_create_answers_with_usage(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=4, system="Be brief.", messages=HI)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == MODEL and message.id.startswith("msg_")
    [block] = message.content
    assert block.type == "text" and block.text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 5 and 0 < message.usage.output_tokens <= 4


def test_max_tokens_is_the_stop_reason_of_a_cut_answer(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=2,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Count to fifty."}]}],
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


def test_stream_sends_anthropic_event_sequence(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=4, messages=HI) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert final.content[0].text == text and text
    assert final.usage.input_tokens > 5 and final.usage.output_tokens > 0
    assert final.stop_reason in ("end_turn", "max_tokens")


def test_raw_stream_has_ping_and_no_done_marker(server: ServerThread) -> None:
    body = {"model": MODEL, "max_tokens": 2, "messages": HI, "stream": True}
    with httpx.stream("POST", server.base_url + "/v1/messages", json=body, timeout=120) as r:
        raw = r.read().decode()
    names = [line.split(": ", 1)[1] for line in raw.splitlines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"] and names[-1] == "message_stop"
    assert "[DONE]" not in raw
    assert raw.rstrip().splitlines()[-1].startswith(": x-offramp-cost-usd=")  # a comment


def test_tool_use_with_a_named_tool_then_its_result(claude: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = claude.messages.create(
        model=MODEL,
        max_tokens=40,
        extra_body={"temperature": 0},  # newer SDKs leave sampling knobs to extra_body
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[question],
    )
    assert first.stop_reason == "tool_use"
    [use] = first.content
    assert use.type == "tool_use" and use.name == "get_weather"
    assert use.id.startswith("toolu_") and isinstance(use.input["city"], str)
    second = claude.messages.create(
        model=MODEL,
        max_tokens=4,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=[
            question,
            {"role": "assistant", "content": first.content},  # as apps pass it back
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21 C"}
            ]},
        ],
    )  # fmt: skip
    assert second.content[0].type == "text" and second.content[0].text


def test_streamed_tool_use_arrives_as_input_json(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL,
        max_tokens=40,
        extra_body={"temperature": 0, "top_k": 1},
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(
        e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events
    )
    [use] = final.content
    assert use.type == "tool_use" and isinstance(use.input["city"], str)
    assert final.stop_reason == "tool_use"


class Answer(BaseModel):
    ok: bool


def test_parse_with_an_output_format_gives_an_object_of_the_schema(
    claude: anthropic.Anthropic,
) -> None:
    message = claude.messages.parse(
        model=MODEL,
        max_tokens=20,
        messages=[{"role": "user", "content": "Is the sky blue? Answer as JSON."}],
        output_format=Answer,
    )
    assert isinstance(message.parsed_output, Answer)
    assert message.stop_reason == "end_turn"


def test_count_tokens_matches_the_prompt_of_a_create(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model=MODEL, system="Be brief.", messages=HI)
    made = claude.messages.create(model=MODEL, max_tokens=1, system="Be brief.", messages=HI)
    assert counted.input_tokens == made.usage.input_tokens
    with_tools = claude.messages.count_tokens(model=MODEL, messages=HI, tools=[WEATHER])
    assert with_tools.input_tokens > counted.input_tokens


def test_an_unknown_model_is_the_sdks_not_found_error(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="claude-nonexistent", max_tokens=2, messages=HI)
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": MODEL, "messages": HI}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 2, "messages": HI, "temperature": 1.5}, "temperature"),
        ({"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "x"}}]}]}, "messages[0].content[0]"),
        ({"model": MODEL, "max_tokens": 2, "messages": HI, "tools": [
            {"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"model": MODEL, "max_tokens": 2, "messages": HI, "thinking": {"type": "enabled"}},
         "thinking"),
        ({"model": MODEL, "max_tokens": 2, "messages": [*HI, {"role": "assistant",
                                                              "content": "Hel"}]}, "messages[1]"),
    ],
)  # fmt: skip
def test_bad_input_gets_anthropics_envelope(
    server: ServerThread, body: dict[str, Any], needle: str
) -> None:
    response = httpx.post(
        server.base_url + "/v1/messages",
        json=body,
        headers={"anthropic-version": "2023-06-01"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert needle in payload["error"]["message"]


def test_x_api_key_authenticates_with_auth_on(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    admin = "admin-secret"
    mine = settings.model_copy(
        update={"auth": True, "admin_key": SecretStr(admin), "ledger_path": tmp_path / "l.db"}
    )
    with ServerThread(mine, pool) as server:
        made = httpx.post(
            server.base_url + "/admin/keys",
            json={"name": "claude-app"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        secret = made.json()["secret"]
        good = anthropic.Anthropic(base_url=server.base_url, api_key=secret, max_retries=0)
        counted = good.messages.count_tokens(model=MODEL, messages=HI)
        bad = anthropic.Anthropic(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as caught:
            bad.messages.create(model=MODEL, max_tokens=2, messages=HI)
    assert counted.input_tokens > 5
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_errors_before_the_route_also_take_anthropics_envelope(server: ServerThread) -> None:
    too_big = {"model": MODEL, "max_tokens": 2, "messages": [
        {"role": "user", "content": "x" * (9 * 1024 * 1024)}]}  # fmt: skip
    refused = httpx.post(server.base_url + "/v1/messages", json=too_big, timeout=60)
    nowhere = httpx.post(server.base_url + "/v1/messages/nothing", json={}, timeout=60)
    assert refused.status_code == 413
    assert refused.json()["error"]["type"] == "request_too_large"
    assert nowhere.status_code == 404
    assert nowhere.json() == {"type": "error", "error": {
        "type": "not_found_error", "message": "no endpoint at '/v1/messages/nothing'"}}  # fmt: skip
