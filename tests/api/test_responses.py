"""OpenAI's Responses API through the official SDK against a real server on the bundled
model: whole and streamed answers, structured output, function tools with their outputs
fed back, stored responses and their continuation, and the 400s of what is refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.servers import ServerThread

MODEL = "gpt-4o-mini"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def test_create_answers_a_string_input_with_usage(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model=MODEL, input="Say hi.", instructions="Be brief.", max_output_tokens=4, store=False
    )
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status in ("completed", "incomplete")
    assert r.model == MODEL and r.instructions == "Be brief." and r.max_output_tokens == 4
    [message] = r.output
    assert message.type == "message" and message.role == "assistant"
    assert r.output_text == message.content[0].text and r.output_text
    assert r.usage is not None and r.usage.input_tokens > 5
    assert 0 < r.usage.output_tokens <= 4
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.usage.output_tokens_details.reasoning_tokens == 0


def test_a_cut_answer_is_incomplete_with_its_reason(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model=MODEL, input="Count from one to fifty.", max_output_tokens=2, store=False
    )
    assert r.status == "incomplete"
    assert r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"


def test_stream_sends_openai_event_sequence(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL, input="Say hi.", max_output_tokens=4, stream=True, store=False
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete" if events[-1].type == "response.incomplete" else "response.completed",
    ]
    assert "response.output_text.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output_text == deltas
    assert final.usage is not None and final.usage.output_tokens > 0


def test_stream_helper_assembles_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MODEL,
        input="Weather in Oslo?",
        tools=[WEATHER],
        tool_choice="required",
        max_output_tokens=40,
        temperature=0,
        store=False,
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert final.status == "completed"
    [call] = final.output
    assert call.type == "function_call" and call.arguments == "".join(deltas)


class Pet(BaseModel):
    name: str
    legs: int


def test_parse_returns_an_object_of_the_schema(client: openai.OpenAI) -> None:
    r = client.responses.parse(
        model=MODEL,
        input="Describe a cat as JSON with its name and number of legs.",
        text_format=Pet,
        max_output_tokens=40,
        temperature=0,
        store=False,
    )
    assert isinstance(r.output_parsed, Pet)
    assert r.text.format.type == "json_schema" and r.text.format.name == "Pet"


def test_a_strict_json_schema_format_is_followed(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    r = client.responses.create(
        model=MODEL,
        input="Is the sky blue? Answer as JSON.",
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema,
                         "strict": True}},
        max_output_tokens=20,
        temperature=0,
        store=False,
    )  # fmt: skip
    assert r.status == "completed"
    assert isinstance(json.loads(r.output_text)["ok"], bool)
    assert r.text.format.type == "json_schema" and r.text.format.schema_ == schema


def test_function_call_then_its_output_fed_back(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=40,
        temperature=0,
        store=False,
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    assert isinstance(json.loads(call.arguments)["city"], str)
    second = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
        ],
        tools=[WEATHER],
        max_output_tokens=6,
        store=False,
    )
    assert second.output
    # the same tools and question, plus the call and its result
    assert second.usage.input_tokens > first.usage.input_tokens + 10


def test_stream_of_a_function_call(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL,
            input="Weather in Rome?",
            tools=[WEATHER],
            tool_choice="required",
            max_output_tokens=40,
            temperature=0,
            stream=True,
            store=False,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-1].response
    [call] = done.output
    assert call.type == "function_call" and json.loads(call.arguments)["city"]
    assert events[2].item.id == call.id == events[5].item.id


def test_stored_response_is_retrieved_continued_listed_and_deleted(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input="My name is Ada. Say ok.", max_output_tokens=3, metadata={"t": "1"}
    )
    assert first.store is True
    got = client.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == first.output_text
    assert got.metadata == {"t": "1"}
    second = client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=3
    )
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    items = client.responses.input_items.list(second.id, order="asc")
    texts = [i.content[0].text for i in items.data if i.type == "message"]
    assert texts == ["My name is Ada. Say ok.", first.output_text, "What is my name?"]
    newest = client.responses.input_items.list(second.id, limit=1)
    assert [i.content[0].text for i in newest.data] == ["What is my name?"]
    assert newest.has_more is True
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="x", previous_response_id=first.id)


def test_a_streamed_response_is_stored_when_it_ends(client: openai.OpenAI) -> None:
    events = list(client.responses.create(
        model=MODEL, input="Say hi.", max_output_tokens=3, stream=True
    ))  # fmt: skip
    final = events[-1].response
    got = client.responses.retrieve(final.id)
    assert got.output_text == final.output_text and got.usage == final.usage


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2, store=False)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(r.id)
    assert caught.value.body["code"] == "response_not_found"  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [
        ({"input": [{"type": "input_image", "image_url": "x"}]}, "input[0]",
         "unsupported_parameter"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
         "input[0].content[0]", "unsupported_parameter"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]", "unsupported_parameter"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema",
         "invalid_value"),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value"),
        ({"truncation": "auto"}, "truncation", "invalid_value"),
        ({"include": ["file_search_call.results"]}, "include[0]", "unsupported_parameter"),
        ({"background": True}, "background", "unknown_parameter"),
        ({"input": None}, "input", "invalid_value"),
    ],
)  # fmt: skip
def test_what_cannot_be_served_is_a_400_naming_it(
    server: ServerThread, changes: dict[str, Any], param: str, code: str
) -> None:
    body = {"model": MODEL, "input": "Hi", "max_output_tokens": 2, **changes}
    response = httpx.post(server.base_url + "/v1/responses", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_unknown_model_and_unknown_response_are_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="Hi", max_output_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_missing")
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_missing")


def test_a_stored_response_is_not_replayed_as_a_stream(client: openai.OpenAI) -> None:
    made = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.retrieve(made.id, stream=True)
    assert caught.value.body["param"] == "stream"  # type: ignore[index]
