"""What the engine is asked to do and what it answers: jobs, their events, its counters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from offramp.errors import OfframpError
from offramp.providers.llamacpp.sampling import Grammar
from offramp.providers.llamacpp.stops import Piece
from offramp.types import Sampling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finished:
    """The last event of a job."""

    reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    degenerate: bool = False  # ended by the repetition guard (reason "length")


@dataclass(frozen=True)
class Failed:
    """The job could not run; the error says why."""

    error: OfframpError


Event = Piece | Finished | Failed


@dataclass
class Job:
    """One generation: a tokenised prompt and how to sample from it."""

    prompt: list[int]
    sampling: Sampling
    max_tokens: int
    sink: Callable[[Event], None]
    grammar: Grammar | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class EngineStats:
    """Counters since start-up (read from any thread; written by the engine thread)."""

    prompt_tokens: int = 0  # prompt tokens requested by admitted jobs
    prompt_tokens_reused: int = 0  # of those, found already computed in some slot
    prompt_tokens_shared: int = 0  # of the reused, taken from another slot's cells
    generated_tokens: int = 0
    steps: int = 0
    preemptions: int = 0


def emit(job: Job, event: Event) -> None:
    """Hand an event to a job's sink; a sink that fails marks its job cancelled."""
    try:
        job.sink(event)
    except Exception:
        log.exception("a job's sink failed; cancelling the job")
        job.cancelled.set()
