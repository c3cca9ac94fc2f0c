"""A plain request's speed beside a slow one: fair shares of engine time on vs off.

    python -m bench.fairness [--tokens 96] [--reps 1]

One ``offramp serve`` per setting (the default config, response cache off; "off" sets
``fair_slack_ms`` so high that every slot runs every step, and ``prefill_chunk`` to a whole
batch), official SDK. For each setting: a plain greedy request of ``--tokens`` tokens alone,
then the same request with a slow one arriving 0.3 s after it: (a) a function-calling request with ``tools``,
``tool_choice: auto`` and no ``max_tokens``, (b) a request with a 1,200-token prompt.
Prints the plain request's tokens/s alone and beside each, and how long (a) took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import yaml

from bench.server import offramp_server
from offramp.models.registry import default_config_path

MODEL = "gpt-4o-mini"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["location"],
        },
    },
}
LONG_PROMPT = "Summarise the following notes.\n" + " ".join(
    f"Note {i}: the committee reviewed item {i} and deferred it." for i in range(80)
)


def _config(fair: bool) -> Path:
    data = yaml.safe_load(default_config_path().read_text())
    if not fair:
        chat = data["models"][0]
        chat["options"] = {**chat["options"], "fair_slack_ms": 10**9, "prefill_chunk": 512}
    path = Path(tempfile.mkdtemp()) / "offramp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def _plain(client: openai.AsyncOpenAI, tokens: int) -> float:
    started = time.perf_counter()
    await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a short poem about the sea."}],
        max_tokens=tokens,
        temperature=0,
        extra_body={"offramp": {"repetition_guard": False}},
    )
    return tokens / (time.perf_counter() - started)


async def _tools(client: openai.AsyncOpenAI) -> float:
    started = time.perf_counter()
    await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Is it going to rain in Berlin this evening?"}],
        tools=[WEATHER],
        tool_choice="auto",
    )
    return time.perf_counter() - started


async def _long(client: openai.AsyncOpenAI) -> float:
    started = time.perf_counter()
    await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": LONG_PROMPT}], max_tokens=8
    )
    return time.perf_counter() - started


async def _run(base_url: str, tokens: int, reps: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        "alone": [],
        "beside tools": [],
        "beside long": [],
        "tools s": [],
    }
    async with openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key="bench", max_retries=0, timeout=900
    ) as client:
        await _plain(client, 8)  # warm-up
        for _ in range(reps):
            out["alone"].append(await _plain(client, tokens))
            for name, slow in (("beside tools", _tools), ("beside long", _long)):
                plain = asyncio.create_task(_plain(client, tokens))
                await asyncio.sleep(0.3)  # the plain request is generating when the slow one comes
                took = await slow(client)
                out[name].append(await plain)
                if name == "beside tools":
                    out["tools s"].append(took)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    os.environ["OFFRAMP_CACHE"] = "false"  # the same request again must be generated again
    print(
        "| fair shares | plain alone | beside tools, no max_tokens | beside 1.2k prompt | tools request took |"
    )
    print("|---|---|---|---|---|")
    for fair in (True, False):
        with offramp_server("--config", str(_config(fair))) as served:
            r = asyncio.run(_run(served.base_url, args.tokens, args.reps))
        med = {k: statistics.median(v) for k, v in r.items()}
        print(
            f"| {'on' if fair else 'off'} | {med['alone']:.1f} tok/s | {med['beside tools']:.1f} tok/s "
            f"({med['beside tools'] / med['alone']:.2f}x) | {med['beside long']:.1f} tok/s "
            f"({med['beside long'] / med['alone']:.2f}x) | {med['tools s']:.1f} s |"
        )


if __name__ == "__main__":
    main()
