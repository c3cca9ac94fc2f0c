"""Structured outputs as pydantic and the agent frameworks ask for them, through the
official SDK against the bundled model: every answer is valid against its schema.

instructor's TOOLS and JSON_SCHEMA modes are driven here by the requests they send
(instructor itself pins an older openai SDK than this project's).
"""

from __future__ import annotations

import datetime
import enum
import json
from typing import Annotated, Any, Literal

import openai
import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from offramp.schemas import validator_for

MODEL = "gpt-4o-mini"
Short = Annotated[str, Field(min_length=1, max_length=12)]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Pet(BaseModel):
    name: Short
    legs: int = Field(ge=0, le=8)


class Owner(BaseModel):
    """A person and their pet."""

    name: Short
    favourite: Color
    pet: Pet | None


class Node(BaseModel):
    label: Short
    children: list[Node] = Field(max_length=2)


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=1, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Numbers(BaseModel):
    pair: tuple[int, Short]
    anything: Any
    score: float = Field(ge=0, le=1)
    id_or_name: int | Short


class Texts(BaseModel):
    code: str = Field(pattern=r"^[A-Z]{3}-[0-9]{2}$")
    nick: str = Field(min_length=2, max_length=6)
    animal: Cat | Dog = Field(discriminator="kind")
    day: datetime.date


def _valid(value: Any, schema: dict[str, Any]) -> None:
    errors = [e.message for e in validator_for(schema).iter_errors(value)]
    assert not errors, (value, errors)


EXAMPLES = {  # a small model copies an example's shape (a tree would grow forever)
    Owner: "Give an example owner as JSON.",
    Node: 'Give a one-node tree as JSON, like {"label": "root", "children": []}.',
    Numbers: "Give an example as JSON.",
    Texts: "Give an example as JSON.",
}


@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda m: m.__name__)
def test_parse_returns_valid_pydantic_objects(
    client: openai.OpenAI, model: type[BaseModel]
) -> None:
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": EXAMPLES[model]}],
        response_format=model,
        temperature=0,
        max_tokens=90,
    )
    message = r.choices[0].message
    assert isinstance(message.parsed, model)
    _valid(json.loads(message.content or ""), to_strict_json_schema(model))


def test_json_schema_mode_with_a_plain_pydantic_schema(client: openai.OpenAI) -> None:
    """instructor's JSON_SCHEMA mode: the schema as pydantic writes it ($defs, $ref,
    optional fields, no additionalProperties)."""
    schema = Owner.model_json_schema()
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe an owner and their pet."}],
        response_format={"type": "json_schema", "json_schema": {"name": "Owner", "schema": schema}},
        temperature=0,
        max_tokens=100,
    )
    text = r.choices[0].message.content or ""
    _valid(json.loads(text), schema)
    Owner.model_validate_json(text)


def test_tools_mode_with_nested_models_and_enums(client: openai.OpenAI) -> None:
    """instructor's TOOLS mode: the model's schema as a forced tool's parameters."""
    schema = Owner.model_json_schema()
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Ada has a red-loving dog called Rex."}],
        tools=[
            {
                "type": "function",
                "function": {"name": "Owner", "description": Owner.__doc__, "parameters": schema},
            }
        ],
        tool_choice={"type": "function", "function": {"name": "Owner"}},
        temperature=0,
        max_tokens=100,
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "Owner"
    _valid(json.loads(call.function.arguments), schema)
    Owner.model_validate_json(call.function.arguments)


def test_sdk_function_tools_parse_their_arguments(client: openai.OpenAI) -> None:
    """openai.pydantic_function_tool: strict parameters with $defs, parsed by the SDK."""
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Record Bo, who likes green and has no pet."}],
        tools=[openai.pydantic_function_tool(Owner)],
        tool_choice="required",
        temperature=0,
        max_tokens=100,
    )
    call = r.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Owner)


def test_streamed_json_schema_answer_is_valid(client: openai.OpenAI) -> None:
    schema = to_strict_json_schema(Pet)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "A pet as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "Pet", "schema": schema}},
        temperature=0,
        max_tokens=60,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    _valid(json.loads(text), schema)


def test_what_the_grammar_leaves_is_validated_never_returned_invalid(
    client: openai.OpenAI,
) -> None:
    """multipleOf has no grammar: the answer is checked and repaired; when no attempt
    passes, the request fails saying why instead of returning an invalid answer."""
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 99}},
        "required": ["n"],
        "additionalProperties": False,
    }
    try:
        r = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Pick a multiple of five."}],
            response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
            temperature=0,
            max_tokens=12,
        )
    except openai.InternalServerError as exc:
        error = exc.response.json()["error"]
        assert error["code"] == "output_validation_failed", error
        assert "multiple of 5" in error["message"], error
        return
    _valid(json.loads(r.choices[0].message.content or ""), schema)


def test_tool_arguments_the_grammar_leaves_are_validated_never_returned_invalid(
    client: openai.OpenAI,
) -> None:
    parameters = {
        "type": "object",
        "properties": {"n": {"type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 99}},
        "required": ["n"],
        "additionalProperties": False,
    }
    try:
        r = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Order five apples."}],
            tools=[{"type": "function", "function": {"name": "order", "parameters": parameters}}],
            tool_choice="required",
            temperature=0,
            max_tokens=20,
        )
    except openai.InternalServerError as exc:
        error = exc.response.json()["error"]
        assert error["code"] == "output_validation_failed", error
        assert "multiple of 5" in error["message"], error
        return
    call = r.choices[0].message.tool_calls[0]
    _valid(json.loads(call.function.arguments), parameters)
