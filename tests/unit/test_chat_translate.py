"""Chat wire requests into domain requests: ignored parameters, legacy functions, schemas."""

from __future__ import annotations

from typing import Any

import pytest

from offramp.api.openai import translate
from offramp.api.openai.protocol import ChatCompletionRequest
from offramp.errors import InvalidRequest, UnsupportedSchema
from offramp.providers.openai_compat import translate as upstream
from offramp.types import ToolChoice

HI = [{"role": "user", "content": "Hi"}]
FN = {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}


def _chat(**body: Any) -> Any:
    return translate.chat_request(ChatCompletionRequest.model_validate({"model": "m", **body}))


def test_ignored_parameters_become_hints_that_upstream_routes_receive() -> None:
    request = _chat(
        messages=HI,
        metadata={"a": "b"},
        reasoning_effort="low",
        verbosity="high",
        prediction={"type": "content", "content": "Hello"},
        frobnicate=1,
    )
    assert request.hints == {
        "metadata": {"a": "b"},
        "reasoning_effort": "low",
        "verbosity": "high",
        "prediction": {"type": "content", "content": "Hello"},
    }
    assert request.extra == {"frobnicate": 1}  # still refused by a local model
    body = upstream.chat_body(request, "gpt-5", upstream.Dialect(), stream=False)
    assert body["reasoning_effort"] == "low" and body["metadata"] == {"a": "b"}


def test_legacy_functions_become_tools_and_pair_their_results() -> None:
    request = _chat(
        messages=[
            *HI,
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "f", "arguments": "{}"},
            },
            {"role": "function", "name": "f", "content": "42"},
        ],
        functions=[FN],
        function_call={"name": "f"},
    )
    assert [t.name for t in request.tools] == ["f"]
    assert request.tool_choice == ToolChoice("named", "f")
    call = request.messages[1].tool_calls[0]
    assert call.name == "f" and request.messages[2].role == "tool"
    assert request.messages[2].tool_call_id == call.id
    assert _chat(messages=HI, functions=[FN], function_call="none").tool_choice == ToolChoice(
        "none"
    )
    assert translate.uses_functions(
        ChatCompletionRequest.model_validate({"model": "m", "messages": HI, "functions": [FN]})
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 3}}}]},
            "tools[0].function.parameters",
        ),
        (
            {"functions": [{"name": "f", "parameters": {"$ref": "#/nowhere"}}]},
            "functions[0].parameters",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "s", "schema": {"minimum": "a"}},
                }
            },
            "response_format.json_schema.schema",
        ),
    ],
)
def test_broken_schemas_are_refused_at_the_door(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedSchema) as info:
        _chat(messages=HI, **body)
    assert info.value.param == param and info.value.status_code == 400


def test_a_function_call_on_a_non_assistant_message_is_400() -> None:
    body = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {
                    "role": "function",
                    "name": "f",
                    "content": "x",
                    "function_call": {"name": "f", "arguments": "{}"},
                },
            ],
        }
    )
    with pytest.raises(InvalidRequest) as caught:
        translate.chat_request(body)
    assert caught.value.param == "messages[0].function_call"
