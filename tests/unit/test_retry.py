"""Backoff and the per-request deadline."""

from __future__ import annotations

import random

from offramp.routing.config import RetrySpec
from offramp.routing.retry import Backoff, Deadline


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(RetrySpec(base_delay_s=0.5, max_delay_s=3, jitter=0), random.Random(1))
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_only_shortens_within_its_share() -> None:
    backoff = Backoff(RetrySpec(base_delay_s=1, max_delay_s=8, jitter=0.5), random.Random(2))
    delays = [backoff.delay(2) for _ in range(500)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert max(delays) - min(delays) > 1.5  # really spread


def test_retry_after_wins_over_a_shorter_backoff() -> None:
    backoff = Backoff(RetrySpec(base_delay_s=0.1, jitter=0), random.Random(3))
    assert backoff.delay(0, retry_after=7.0) == 7.0
    assert backoff.delay(0, retry_after=0.01) == 0.1


def test_deadline_cuts_each_attempt_to_what_is_left() -> None:
    now = [0.0]
    deadline = Deadline.after(10, lambda: now[0])
    assert deadline.limit(30) == 10 and deadline.limit(None) == 10 and deadline.limit(4) == 4
    now[0] = 8
    assert deadline.limit(4) == 2 and deadline.allows(9.9) and not deadline.allows(10)
    now[0] = 11
    assert deadline.expired() and deadline.remaining() == 0
    assert Deadline.after(None).limit(5) == 5 and not Deadline.after(None).expired()
