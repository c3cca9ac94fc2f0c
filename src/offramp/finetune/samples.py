"""Captured samples as fine-tuning chat examples, and examples back as samples.

An example is the sample's prompt (its chat messages, or the task prompt it was run
with) and one answer: the reference (a person's demonstration, else a teacher's answer)
when ``prefer`` is ``reference`` and there is one, else the model's own answer. A task's
answer is its result as JSON text. ``export_samples`` writes them as OpenAI's
fine-tuning JSONL; ``import_samples`` reads such a file back into samples.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from offramp.errors import InvalidRequest
from offramp.finetune.dataset import (
    DEFAULT_EVAL_SHARE,
    ChatExample,
    deduplicated,
    read_jsonl,
    split_of,
    write_jsonl,
)
from offramp.ledger.datasets import JudgedSample, SampleFilter, find_samples
from offramp.ledger.samples import Sample, existing_request_ids, insert_samples, new_sample_id

Prefer = Literal["reference", "response"]
IMPORT = "import"  # the endpoint (and default model) of imported samples
_MESSAGE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id")


def example_of(judged: JudgedSample, prefer: Prefer = "reference") -> ChatExample | None:
    """The example of ``judged``; None for a sample with no chat prompt to learn from."""
    sample = judged.sample
    messages = sample.request.get("messages") if isinstance(sample.request, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    use_reference = prefer == "reference" and judged.reference is not None
    answer = assistant_message(judged.reference if use_reference else sample.response)
    if answer is None:
        return None
    tools = sample.request.get("tools") or []
    metadata = {
        "sample_id": sample.id,
        "request_id": sample.request_id,
        "answer": "reference" if use_reference else "response",
    }
    return ChatExample((*messages, answer), tuple(tools), metadata)


def assistant_message(answer: Any) -> dict[str, Any] | None:
    """A sample's answer (an assistant message or ``{"result": ...}``) as the final
    message of an example; None when it holds nothing to learn."""
    if not isinstance(answer, dict):
        return None
    if "role" not in answer and "result" in answer:
        return {"role": "assistant", "content": json.dumps(answer["result"], ensure_ascii=False)}
    message = {k: answer[k] for k in _MESSAGE_FIELDS if answer.get(k) is not None}
    message["role"] = "assistant"
    if "content" not in message and not message.get("tool_calls"):
        return None
    return message


def sample_of(example: ChatExample, model: str | None = None) -> Sample:
    """``example`` as a sample of endpoint ``import``: its prompt as the request, its
    final message as the answer. The request id is the example's digest, so importing
    the same example twice can be recognised."""
    request: dict[str, Any] = {"messages": list(example.prompt)}
    if example.tools:
        request["tools"] = list(example.tools)
    return Sample(
        id=new_sample_id(),
        ts=time.time(),
        request_id=import_request_id(example),
        endpoint=IMPORT,
        model=model or str(example.metadata.get("model") or IMPORT),
        request=request,
        response=dict(example.messages[-1]),
    )


def import_request_id(example: ChatExample) -> str:
    return f"{IMPORT}:{example.digest()[:40]}"


def collect_examples(
    engine: Engine, where: SampleFilter = SampleFilter(), prefer: Prefer = "reference"
) -> list[ChatExample]:
    """The de-duplicated examples of the samples ``where`` selects, oldest first."""
    made = (example_of(j, prefer) for j in find_samples(engine, where))
    return list(deduplicated(e for e in made if e is not None))


def export_samples(
    engine: Engine,
    out: Path,
    where: SampleFilter = SampleFilter(),
    split: Literal["train", "eval", "all"] = "all",
    eval_share: float = DEFAULT_EVAL_SHARE,
    prefer: Prefer = "reference",
) -> int:
    """Write the examples of the samples ``where`` selects to ``out`` (OpenAI's chat JSONL,
    one side of the split or both); returns how many."""
    examples = collect_examples(engine, where, prefer)
    if split != "all":
        examples = split_of(examples, split, eval_share)
    try:
        return write_jsonl(out, examples)
    except OSError as exc:
        raise InvalidRequest(f"cannot write {out}: {exc.strerror}", param="out") from exc


def import_samples(engine: Engine, path: Path, model: str | None = None) -> tuple[int, int]:
    """Store the examples of ``path`` not yet imported; (added, skipped)."""
    samples = [sample_of(e, model) for e in deduplicated(read_jsonl(path))]
    there = existing_request_ids(engine, [s.request_id for s in samples])
    fresh = [s for s in samples if s.request_id not in there]
    insert_samples(engine, fresh)
    return len(fresh), len(samples) - len(fresh)
