"""Running the cases against a route, concurrently and bounded, or replaying a recording."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import Progress

from offramp.errors import InvalidRequest
from offramp.migrate.parity.cases import Case, Route

if TYPE_CHECKING:
    import openai


@dataclass(frozen=True)
class Answer:
    """One route's answer to one case: text (chat/json) or a vector (embedding)."""

    id: str
    text: str = ""
    vector: tuple[float, ...] = ()
    latency_s: float = 0.0
    error: str = ""
    tokens: int = 0  # prompt + completion tokens the route reported
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the route's prompt cache
    model: str = ""  # the route's model, and the price table provider it is priced as
    priced_as: str = ""


async def run_route(
    route: Route,
    cases: list[Case],
    *,
    concurrency: int,
    label: str,
    progress: Progress | None = None,
    api_key: str = "parity",
) -> list[Answer]:
    """Every case against ``route``, at most ``concurrency`` at once, in case order
    (``api_key``: the key the route's server expects, where it checks keys)."""
    import openai  # the SDK takes a second to import: only the parity command needs it

    client = openai.AsyncOpenAI(
        base_url=route.base_url, api_key=api_key, max_retries=0, timeout=300
    )
    gate = asyncio.Semaphore(concurrency)
    task = progress.add_task(label, total=len(cases)) if progress else None

    async def one(case: Case) -> Answer:
        async with gate:
            started = time.perf_counter()
            try:
                answer = await _ask(client, route, case)
            except openai.APIError as exc:
                answer = Answer(case.id, error=f"{type(exc).__name__}: {exc}")
            answer = replace(
                answer,
                latency_s=time.perf_counter() - started,
                model=route.model if case.type != "embedding" else route.embedding_model,
                priced_as=route.provider or "",
            )
            if progress is not None and task is not None:
                progress.advance(task)
            return answer

    try:
        return list(await asyncio.gather(*(one(c) for c in cases)))
    finally:
        await client.close()


async def _ask(client: openai.AsyncOpenAI, route: Route, case: Case) -> Answer:
    if case.type == "embedding":
        reply = await client.embeddings.create(
            model=route.embedding_model, input=case.input, encoding_format="float"
        )
        return Answer(
            case.id,
            vector=tuple(reply.data[0].embedding),
            tokens=reply.usage.total_tokens if reply.usage else 0,
            prompt_tokens=reply.usage.prompt_tokens if reply.usage else 0,
        )
    messages: list[Any] = list(case.messages)
    if route.system:
        messages = [
            {"role": "system", "content": route.system},
            *[m for m in messages if m.get("role") != "system"],
        ]
    kwargs: dict[str, Any] = {
        "model": route.model,
        "messages": messages,
        "max_tokens": route.max_tokens,
    }
    if route.temperature is not None:
        kwargs["temperature"] = route.temperature
    if case.type == "json" and case.schema is not None:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "parity", "schema": case.schema},
        }
    reply = await client.chat.completions.create(**kwargs)
    usage = reply.usage
    details = usage.prompt_tokens_details if usage else None
    return Answer(
        case.id,
        text=reply.choices[0].message.content or "",
        tokens=usage.total_tokens if usage else 0,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cached_tokens=(details.cached_tokens or 0) if details else 0,
    )


def save_answers(path: Path, answers: list[Answer]) -> None:
    """Record a route's answers (e.g. OpenAI's, before its key is switched off)."""
    with path.open("w", encoding="utf-8") as handle:
        for answer in answers:
            handle.write(json.dumps(asdict(answer)) + "\n")


def load_answers(path: Path, cases: list[Case]) -> list[Answer]:
    """Replay recorded answers, in case order; every case must have one."""
    recorded: dict[str, Answer] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}", param="baseline") from exc
    for line in text.splitlines():
        if line.strip():
            raw = json.loads(line)
            recorded[raw["id"]] = Answer(
                raw["id"],
                raw.get("text", ""),
                tuple(raw.get("vector") or ()),
                float(raw.get("latency_s", 0.0)),
                raw.get("error", ""),
                int(raw.get("tokens", 0)),
                int(raw.get("prompt_tokens", 0)),
                int(raw.get("completion_tokens", 0)),
                int(raw.get("cached_tokens", 0)),
                str(raw.get("model", "")),
                str(raw.get("priced_as", "")),
            )
    missing = [c.id for c in cases if c.id not in recorded]
    if missing:
        raise InvalidRequest(f"{path} has no recorded answer for {missing[:5]}", param="baseline")
    return [recorded[c.id] for c in cases]
