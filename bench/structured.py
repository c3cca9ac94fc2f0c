"""Structured output vs plain decoding: generated tokens/s on one server, same prompts.

One ``offramp serve`` (default config, response cache off), requests one at a time, the
three kinds interleaved per prompt so machine noise hits them alike:

- plain: free text, end-of-turn banned so every answer runs to ``--tokens``;
- json_schema: ``response_format`` with a schema whose long array keeps the answer going
  to ``--tokens`` (the grammar is checked for every token);
- json_object: ``response_format: json_object``.

Decoding tokens/s = completion tokens after the first / time from the first streamed
token to the end: the grammar acts on decoding, while the prompts differ in length (a
schema's instructions are added to the structured ones). The ratio is
median(constrained) / median(plain).

    python -m bench.structured [--tokens 128] [--reps 4] [--threads N]

``--threads 1`` keeps the comparison steady on a machine other work keeps busy (two
decode threads that must meet at every step lose most of their time there).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import openai

from bench.server import offramp_server

TOPICS = ["rivers", "compilers", "bread", "volcanoes", "chess", "jazz", "bees", "bridges"]
NO_END = {"2": -100, "0": -100}
SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string"},
        "facts": {"type": "array", "items": {"type": "string"}, "minItems": 40},
    },
    "required": ["topic", "facts"],
    "additionalProperties": False,
}
KINDS: dict[str, dict[str, Any]] = {
    "plain": {"logit_bias": NO_END},
    "json_schema": {
        "response_format": {"type": "json_schema", "json_schema": {"name": "f", "schema": SCHEMA}}
    },
    "json_object": {"response_format": {"type": "json_object"}},
}


def _rate(client: openai.OpenAI, topic: str, tokens: int, extra: dict[str, Any]) -> float:
    """Decoding tokens/s of one streamed answer: tokens after the first over the time
    from the first content chunk to the end (prompt processing left out: a schema's
    instructions make the structured prompts longer than the plain one)."""
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"List facts about {topic} as JSON."}],
        temperature=0,
        max_tokens=tokens,
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    first = 0.0
    used = 0
    for chunk in stream:
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    return (used - 1) / (time.perf_counter() - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--threads", type=int, help="decode threads (default: every core)")
    args = parser.parse_args()
    if args.threads:
        os.environ["OFFRAMP_N_THREADS"] = str(args.threads)
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with offramp_server() as served:
        client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="x", max_retries=0)
        for extra in KINDS.values():  # warm-up (the schema's grammar is parsed here)
            _rate(client, "tea", 16, extra)
        for rep in range(args.reps):
            for topic in TOPICS[rep::2][:2]:
                for kind, extra in KINDS.items():
                    rates[kind].append(_rate(client, topic, args.tokens, extra))
    plain = statistics.median(rates["plain"])
    load = os.getloadavg()[0]
    threads = args.threads or os.cpu_count()
    print(
        f"{args.tokens} tokens max, greedy, {len(rates['plain'])} requests per kind, {threads} threads"
    )
    print("| decoding | tokens/s (median) | min-max | vs plain |")
    print("|---|---|---|---|")
    for kind, values in rates.items():
        median = statistics.median(values)
        print(
            f"| {kind} | {median:.1f} | {min(values):.1f}-{max(values):.1f} "
            f"| {median / plain:.2f}x |"
        )
    print(f"goal: constrained >= 0.8x plain; 1-minute load average at the end {load:.2f}")


if __name__ == "__main__":
    main()
