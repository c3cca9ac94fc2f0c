"""Capture of served requests as samples, and shadow mode's teacher calls.

Opt-in and off by default. A served request (status 200) is captured when its route or
task says ``capture:`` (with its ``sample_rate``) or its key is one of
``capture_keys``; a route's (or task's) ``shadow:`` picks a ``share`` of its served
requests, captures them, and asks the teacher for its answer in the background, through
the gateway (endpoint ``shadow``: metered and in the ledger like any request), keeping
that answer as the sample's reference.

Nothing here can delay or fail the client's answer: ``keep`` only queues (the writer
thread redacts and writes), a teacher runs as its own task, at most
``shadow_concurrency`` at once (a request picked while all are busy is captured
without a reference, ``shadow: busy``), bounded by its timeout, and any failure of it is
logged and recorded on the sample (``shadow: failed`` or ``timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from offramp.gateway.redaction import Redactor
from offramp.ledger.feedback import TASK_VALID, new_feedback_id
from offramp.ledger.records import UsageRecord
from offramp.ledger.samples import Captured, FeedbackRecord, Sample, new_sample_id
from offramp.ledger.writer import LedgerWriter
from offramp.providers.openai_compat.translate import Dialect, chat_body
from offramp.routing.config import CaptureSpec, ShadowSpec
from offramp.settings import Settings
from offramp.types import ChatRequest, CompletionResult

log = logging.getLogger(__name__)
SHADOW = "shadow"  # the endpoint of a teacher's request in the ledger
Json = Any
Teacher = Callable[[str], Awaitable[Json]]  # the teacher's answer, given its route


@dataclass
class _Shadowing:
    """A sample waiting for its teacher; ``queued`` once it went to the writer."""

    sample: Sample
    queued: bool = False


@dataclass(frozen=True)
class Plan:
    """What becomes of one served request: captured, and shadowed by ``shadow``."""

    shadow: ShadowSpec | None = None


class Capture:
    """Decides which served requests become samples and queues them for the writer."""

    def __init__(
        self,
        settings: Settings,
        writer: LedgerWriter[Captured],
        rng: random.Random | None = None,
    ):
        self._keys = frozenset(settings.capture_keys)
        self._key_rate = settings.capture_sample_rate
        self._timeout_s = settings.shadow_timeout_s
        self._slots = settings.shadow_concurrency
        self._writer = writer
        self._rng = rng or random.Random()
        self._teachers: dict[asyncio.Task[None], _Shadowing] = {}  # running
        self.shadows_busy = 0  # requests picked for shadowing while every slot was taken

    def plan(
        self,
        record: UsageRecord | None,
        capture: CaptureSpec | None,
        shadow: ShadowSpec | None,
    ) -> Plan | None:
        """The plan for a request metered as ``record``; None: not captured. Teachers'
        own requests (endpoint ``shadow``) and failed requests never are."""
        if record is None or record.status != 200 or record.endpoint == SHADOW:
            return None
        if shadow is not None and shadow.share > 0 and self._rng.random() < shadow.share:
            return Plan(shadow)
        if capture is not None and capture.enabled and self._rng.random() < capture.sample_rate:
            return Plan()
        by_key = record.key_id is not None and record.key_id in self._keys
        if by_key and self._rng.random() < self._key_rate:
            return Plan()
        return None

    def keep(
        self,
        record: UsageRecord,
        plan: Plan,
        request: Json,
        response: Json,
        teacher: Teacher | None = None,
    ) -> None:
        """Queue the sample of ``record``; with a shadow, ask ``teacher`` first (in the
        background) and store its answer as the reference. Never raises."""
        sample = Sample(
            id=new_sample_id(),
            ts=record.ts,
            request_id=record.request_id,
            endpoint=record.endpoint,
            model=record.model,
            request=request,
            response=response,
            route=record.route,
            deployment=record.deployment,
            task=record.task,
            key_id=record.key_id,
            end_user=record.end_user,
        )
        if plan.shadow is None or teacher is None:
            self._writer.submit(sample)
            return
        if len(self._teachers) >= self._slots:
            self.shadows_busy += 1
            log.warning("shadow: every teacher slot is busy; %s kept without a reference",
                        record.request_id)  # fmt: skip
            self._writer.submit(replace(sample, shadow="busy"))
            return
        shadowing = _Shadowing(sample)
        task = asyncio.get_running_loop().create_task(
            self._shadowed(shadowing, plan.shadow, teacher)
        )
        self._teachers[task] = shadowing
        task.add_done_callback(self._done)

    def judge(self, request_id: str, key_id: str | None, valid: bool, comment: str | None) -> None:
        """Record a task run's validation (metric ``task_valid``, source ``validator``)."""
        self._writer.submit(
            FeedbackRecord(
                id=new_feedback_id(),
                ts=time.time(),
                request_id=request_id,
                source="validator",
                metric=TASK_VALID,
                value=1.0 if valid else 0.0,
                comment=comment,
                key_id=key_id,
            )
        )

    async def aclose(self) -> None:
        """Stop the teachers still running; their samples are kept without a reference
        (``shadow: cancelled``), even those of teachers that never started."""
        running = dict(self._teachers)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for shadowing in running.values():
            if not shadowing.queued:  # cancelled before it began
                self._writer.submit(replace(shadowing.sample, shadow="cancelled"))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._teachers.pop(task, None)

    async def _shadowed(self, shadowing: _Shadowing, shadow: ShadowSpec, teacher: Teacher) -> None:
        sample = shadowing.sample
        reference, status = None, "failed"
        try:
            reference = await asyncio.wait_for(
                teacher(shadow.route), shadow.timeout_s or self._timeout_s
            )
            status = "ok"
        except TimeoutError:
            status = "timeout"
            log.warning("shadow: teacher %s timed out on %s", shadow.route, sample.request_id)
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except Exception as exc:  # a teacher failing must never reach the client
            log.warning("shadow: teacher %s failed on %s: %s", shadow.route, sample.request_id, exc)
        finally:
            shadowing.queued = True
            self._writer.submit(
                replace(
                    sample,
                    reference=reference,
                    reference_model=shadow.route if reference is not None else None,
                    shadow=status,
                )
            )


def redacted(redactor: Redactor, items: Sequence[Captured]) -> list[Captured]:
    """``items`` with every text of their requests, answers, references, comments and
    demonstrations redacted (run on the writer's thread, off the request path)."""
    out: list[Captured] = []
    for item in items:
        if isinstance(item, Sample):
            out.append(
                replace(
                    item,
                    request=redactor.value(item.request),
                    response=redactor.value(item.response),
                    reference=redactor.value(item.reference),
                    end_user=redactor.value(item.end_user),
                )
            )
        else:
            out.append(
                replace(
                    item,
                    comment=redactor.value(item.comment),
                    demonstration=redactor.value(item.demonstration),
                )
            )
    return out


_WIRE = Dialect()


def chat_json(request: ChatRequest) -> Json:
    """What a chat request asked, in OpenAI's wire shapes: its messages, and its tools and
    response format when it has them."""
    body = chat_body(request, request.model, _WIRE, stream=False)
    return {
        k: body[k] for k in ("messages", "tools", "tool_choice", "response_format") if k in body
    }


def answer_json(result: CompletionResult) -> Json:
    """The first choice of ``result`` as an assistant message in OpenAI's wire shape."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if result.choices:
        choice = result.choices[0]
        message["content"] = choice.text
        if choice.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in choice.tool_calls
            ]  # fmt: skip
    return message
