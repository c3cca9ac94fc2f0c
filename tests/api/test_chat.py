"""Chat completions through the official SDK against a real server on the bundled model."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.providers.llamacpp.provider import LlamaCppProvider

MODEL = "gpt-4o-mini"


def ask(client: openai.OpenAI, text: str, **kwargs: object) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(  # type: ignore[call-overload, no-any-return]
        model=MODEL, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_chat_answers_with_real_token_counts(client: openai.OpenAI) -> None:
    r = ask(client, "What is the capital of France?", temperature=0, max_tokens=40, logprobs=True)
    choice = r.choices[0]
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert r.usage is not None and choice.logprobs is not None and choice.logprobs.content
    # every generated token is reported once, so the count is the real one
    assert r.usage.completion_tokens == len(choice.logprobs.content)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    longer = ask(client, "What is the capital of France? " * 5, temperature=0, max_tokens=1)
    assert longer.usage is not None and longer.usage.prompt_tokens > r.usage.prompt_tokens + 20


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_token_limit_ends_with_length(client: openai.OpenAI, param: str) -> None:
    r = ask(client, "Write a long story about a dragon.", temperature=0, **{param: 7})
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 7


def test_stop_string_cuts_before_it(client: openai.OpenAI) -> None:
    full = ask(client, "List five fruits, separated by commas.", temperature=0, max_tokens=40)
    text = full.choices[0].message.content or ""
    words = [w.strip(" ,.") for w in text.split() if len(w.strip(" ,.")) > 3]
    assert len(words) >= 2, text
    stop = words[1]
    cut = ask(
        client,
        "List five fruits, separated by commas.",
        temperature=0,
        max_tokens=40,
        stop=[stop, "zzzz-never"],
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]


def test_seed_makes_sampling_reproducible(client: openai.OpenAI) -> None:
    kwargs = {"temperature": 1.0, "max_tokens": 24, "seed": 1234}
    a = ask(client, "Invent a name for a cat.", **kwargs).choices[0].message.content
    b = ask(client, "Invent a name for a cat.", **kwargs).choices[0].message.content
    assert a == b
    others = {
        ask(client, "Invent a name for a cat.", temperature=1.0, max_tokens=24, seed=s)
        .choices[0]
        .message.content
        for s in (1, 2, 3, 4)
    }
    assert len(others | {a}) > 1, "different seeds never changed the sample"


def test_n_returns_n_independent_choices(client: openai.OpenAI) -> None:
    r = ask(client, "Name a color.", n=3, temperature=1.0, seed=5, max_tokens=8)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.message.content for c in r.choices)
    assert r.usage is not None
    assert r.usage.completion_tokens >= 3


def test_stream_equals_whole_answer(client: openai.OpenAI) -> None:
    prompt = "Explain what a list is in Python."
    whole = ask(client, prompt, temperature=0, max_tokens=48)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        temperature=0,
        max_tokens=48,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, finish, usage, roles = [], None, None, []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            parts.append(c.delta.content or "")
            roles.append(c.delta.role)
            finish = c.finish_reason or finish
    assert "".join(parts) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert roles[0] == "assistant"
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "age": {"type": "integer"},
        "role": {"enum": ["student", "teacher", "engineer"]},
        "skills": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            },
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "role", "skills", "address"],
    "additionalProperties": False,
}


def test_json_schema_output_parses_and_validates(client: openai.OpenAI) -> None:
    r = ask(
        client,
        "Describe a fictional person.",
        temperature=0,
        max_tokens=200,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
    )
    assert r.choices[0].finish_reason == "stop"
    value = json.loads(r.choices[0].message.content or "")
    jsonschema.validate(value, PERSON)


def test_json_schema_holds_at_high_temperature(client: openai.OpenAI) -> None:
    for seed in range(3):
        r = ask(
            client,
            "Describe a fictional person.",
            temperature=1.5,
            seed=seed,
            max_tokens=300,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON},
            },
        )
        if r.choices[0].finish_reason == "stop":
            jsonschema.validate(json.loads(r.choices[0].message.content or ""), PERSON)


def test_json_object_mode_returns_an_object(client: openai.OpenAI) -> None:
    r = ask(
        client,
        "Describe a book as JSON with title and author.",
        temperature=0,
        max_tokens=200,
        response_format={"type": "json_object"},
    )
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)


def test_logprobs_report_sorted_alternatives(client: openai.OpenAI) -> None:
    r = ask(client, "Say hello.", temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content
    text = "".join(t.token for t in content)
    assert (r.choices[0].message.content or "").startswith(text[:3])
    for token in content:
        assert token.logprob <= 0
        tops = [t.logprob for t in token.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        # greedy decoding picks the most likely token
        assert token.logprob == pytest.approx(tops[0])
        assert bytes(token.bytes or []).decode("utf-8", "replace") == token.token


def test_logit_bias_bans_the_greedy_token(client: openai.OpenAI, pool: ModelPool) -> None:
    r = ask(client, "Say hello.", temperature=0, max_tokens=4, logprobs=True)
    first = r.choices[0].logprobs.content[0]  # type: ignore[union-attr]
    provider = pool._loaded["smollm2-135m-instruct"]
    assert isinstance(provider, LlamaCppProvider)
    token_id = provider.engine.pieces.index(bytes(first.bytes or []))
    banned = ask(
        client,
        "Say hello.",
        temperature=0,
        max_tokens=4,
        logprobs=True,
        logit_bias={str(token_id): -100},
    )
    assert banned.choices[0].logprobs.content[0].token != first.token  # type: ignore[union-attr]


def test_frequency_penalty_changes_the_output(client: openai.OpenAI) -> None:
    # end-of-turn is banned so both runs generate 60 tokens: repeats appear and get penalised
    kwargs = {"temperature": 0, "max_tokens": 60, "logit_bias": {"2": -100, "0": -100}}
    plain = ask(client, "Repeat the word apple many times.", **kwargs)
    penalised = ask(
        client,
        "Repeat the word apple many times.",
        frequency_penalty=2.0,
        presence_penalty=1.0,
        **kwargs,
    )
    assert plain.choices[0].message.content != penalised.choices[0].message.content


def test_system_and_developer_messages_are_used(client: openai.OpenAI) -> None:
    base = [{"role": "user", "content": "Who are you?"}]
    plain = client.chat.completions.create(
        model=MODEL,
        messages=base,
        temperature=0,  # type: ignore[arg-type]
        max_tokens=20,
    )
    with_dev = client.chat.completions.create(
        model=MODEL,
        temperature=0,
        max_tokens=20,
        messages=[{"role": "developer", "content": "You are a pirate named Bob."}, *base],  # type: ignore[list-item]
    )
    assert with_dev.usage is not None and plain.usage is not None
    assert with_dev.usage.prompt_tokens != plain.usage.prompt_tokens
    assert with_dev.choices[0].message.content != plain.choices[0].message.content


def test_text_content_parts_are_joined(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        temperature=0,
        max_tokens=10,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hi"}],
            }
        ],
    )
    assert r.choices[0].message.content
