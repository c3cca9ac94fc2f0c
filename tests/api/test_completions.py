"""The legacy ``/v1/completions`` endpoint."""

from __future__ import annotations

import openai

from offramp.local.pool import ModelPool
from offramp.providers.llamacpp.provider import LlamaCppProvider

MODEL = "gpt-3.5-turbo-instruct"


def test_completion_continues_the_prompt(client: openai.OpenAI, pool: ModelPool) -> None:
    prompt = "The three primary colors are"
    r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=12, temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].text and r.choices[0].finish_reason in ("stop", "length")
    provider = pool._loaded["smollm2-135m-instruct"]
    assert isinstance(provider, LlamaCppProvider)
    assert r.usage is not None and r.usage.prompt_tokens == provider.count_tokens(prompt)


def test_echo_logprobs_and_batched_prompts(client: openai.OpenAI) -> None:
    r = client.completions.create(
        model=MODEL,
        prompt=["One, two,", "A, B,"],
        max_tokens=4,
        temperature=0,
        echo=True,
        logprobs=2,
        n=2,
    )
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text.startswith("One, two,")
    assert r.choices[2].text.startswith("A, B,")
    lp = r.choices[0].logprobs
    assert lp is not None and lp.tokens and lp.top_logprobs
    assert all(len(top) == 2 for top in lp.top_logprobs)


def test_streamed_completion_equals_whole(client: openai.OpenAI) -> None:
    whole = client.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=20, temperature=0
    )
    parts = [
        c.choices[0].text
        for c in client.completions.create(
            model=MODEL, prompt="Once upon a time", max_tokens=20, temperature=0, stream=True
        )
        if c.choices
    ]
    assert "".join(parts) == whole.choices[0].text
