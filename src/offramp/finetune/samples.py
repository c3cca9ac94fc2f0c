"""Captured samples as fine-tuning chat examples, and examples back as samples.

An example is the sample's prompt (its chat messages, or the task prompt it was run
with) and one answer: the reference (a person's demonstration, else a teacher's answer)
when ``prefer`` is ``reference`` and there is one, else the model's own answer. A task's
answer is its result as JSON text.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from offramp.finetune.dataset import ChatExample
from offramp.ledger.datasets import JudgedSample
from offramp.ledger.samples import Sample, new_sample_id

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
