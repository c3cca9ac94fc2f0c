"""Grammar-constrained sampling: the grammar is checked for the token the model picks and
applied to the whole vocabulary only when it rejects it; output always follows the
grammar; parsed grammars and schema conversions are reused."""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema
import pytest

from offramp.local.pool import ModelPool
from offramp.providers.llamacpp import sampling
from offramp.providers.llamacpp.engine import Engine
from offramp.providers.llamacpp.grammar import _compiled, schema_to_gbnf
from offramp.providers.llamacpp.jobs import Failed, Finished, Job
from offramp.providers.llamacpp.provider import LlamaCppProvider
from offramp.providers.llamacpp.sampling import Grammar, GrammarCache
from offramp.providers.llamacpp.stops import Piece
from offramp.types import Sampling

# Values the model would never write unprompted: every token of them is forced.
ODD = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^[QXZ]{3}-[0-9]{4}$"},
        "kind": {"enum": ["zebra-quartz", "yonder-vex"]},
        "ok": {"type": "boolean"},
    },
    "required": ["code", "kind", "ok"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def engine(pool: ModelPool) -> Engine:
    provider = pool._loaded["smollm2-135m-instruct"]
    assert isinstance(provider, LlamaCppProvider)
    return provider.engine


def _generate(engine: Engine, prompt: str, sampling: Sampling, grammar: Grammar | None) -> str:
    texts: list[str] = []
    end: list[object] = []
    done = threading.Event()

    def sink(event: object) -> None:
        if isinstance(event, Piece):
            texts.append(event.text)
        elif isinstance(event, Finished | Failed):
            end.append(event)
            done.set()

    chat = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    tokens = engine.tokenize(chat, add_special=False, parse_special=True)
    engine.submit(Job(tokens, sampling, sampling.max_tokens or 100, sink, grammar))
    assert done.wait(timeout=240)
    assert isinstance(end[0], Finished) and end[0].reason == "stop", end
    return "".join(texts)


@pytest.mark.parametrize(
    "sampling",
    [
        Sampling(temperature=0.0, max_tokens=100),
        Sampling(temperature=1.3, top_p=0.95, seed=3, max_tokens=100),
        Sampling(temperature=0.9, seed=8, max_tokens=100, frequency_penalty=0.5),
    ],
    ids=["greedy", "hot", "penalised"],
)
def test_output_follows_the_grammar_when_the_model_would_not(
    engine: Engine, sampling: Sampling
) -> None:
    stats = engine.samplers.grammar_stats
    checked, rejected = stats.checked, stats.rejected
    text = _generate(engine, "Tell me about cats.", sampling, Grammar(schema_to_gbnf(ODD)))
    jsonschema.validate(json.loads(text), ODD)
    # the forced tokens were sampled again under the grammar; the rest went the fast way
    assert stats.rejected > rejected
    assert stats.checked - checked > stats.rejected - rejected


def test_free_picks_that_fit_the_grammar_are_kept(engine: Engine) -> None:
    """Greedy decoding of JSON the model writes willingly: most tokens pass the check."""
    stats = engine.samplers.grammar_stats
    checked, rejected = stats.checked, stats.rejected
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    text = _generate(
        engine,
        'Reply with JSON like {"name": "Ann", "age": 30} for a person called Bob aged 41.',
        Sampling(temperature=0.0, max_tokens=60),
        Grammar(schema_to_gbnf(schema)),
    )
    jsonschema.validate(json.loads(text), schema)
    assert stats.rejected - rejected < (stats.checked - checked) / 2


def test_parsed_grammars_are_cloned_not_parsed_again(engine: Engine) -> None:
    import llama_cpp

    cache = GrammarCache(llama_cpp, engine.vocab, size=2)
    one, two, three = (Grammar(schema_to_gbnf({"enum": [w]})) for w in ("a", "b", "c"))
    try:
        clones = [cache.fresh(g) for g in (one, two, one, one)]
        assert cache.parsed == 2  # `one` was parsed once and cloned three times
        clones += [cache.fresh(three), cache.fresh(one), cache.fresh(two)]
        assert cache.parsed == 4  # `three` evicted `two`, which had to be parsed again
        assert all(clones)
        for clone in clones:
            llama_cpp.llama_sampler_free(clone)
    finally:
        cache.close()


def test_a_repeated_schema_request_reuses_its_grammar(engine: Engine) -> None:
    schema = {"type": "object", "properties": {"word": {"enum": ["alpha", "omega"]}}}
    grammar = Grammar(schema_to_gbnf(schema))
    parsed = engine.samplers.grammars.parsed
    conversions = _compiled.cache_info().misses
    for _ in range(3):
        again = Grammar(schema_to_gbnf(dict(schema)))
        text = _generate(engine, "Pick a word.", Sampling(temperature=0.0, max_tokens=30), again)
        assert json.loads(text)["word"] in {"alpha", "omega"}
    assert again == grammar
    assert engine.samplers.grammars.parsed == parsed + 1
    assert _compiled.cache_info().misses == conversions


def test_greedy_after_a_rejection_picks_what_the_whole_row_under_the_grammar_would(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next-best tokens checked one by one give the token the grammar applied to the
    whole row gives (one try: the rejected token itself, so always the whole row)."""
    greedy = Sampling(temperature=0.0, max_tokens=100)
    quick = _generate(engine, "Tell me about dogs.", greedy, Grammar(schema_to_gbnf(ODD)))
    monkeypatch.setattr(sampling, "_GREEDY_TRIES", 1)
    rejected = engine.samplers.grammar_stats.rejected
    whole_row = _generate(engine, "Tell me about dogs.", greedy, Grammar(schema_to_gbnf(ODD)))
    assert engine.samplers.grammar_stats.rejected > rejected
    assert quick == whole_row
