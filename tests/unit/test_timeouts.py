"""``cancel_after``: asyncio.timeout's contract on the request path."""

from __future__ import annotations

import asyncio
import time

import pytest

from offramp.timeouts import cancel_after


async def _past_its_limit() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError), cancel_after(0.05):
        await asyncio.sleep(5)
    assert time.monotonic() - started < 2
    await asyncio.sleep(0)  # the task is not left cancelled
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def _within_its_limit() -> None:
    with cancel_after(5):
        await asyncio.sleep(0.01)
    with cancel_after(None):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.06)  # no timer left behind to cancel the task later


async def _cancelled_elsewhere() -> None:
    async def guarded() -> None:
        with cancel_after(5):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(guarded())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_block_past_its_limit_raises_timeout_error_in_time() -> None:
    asyncio.run(_past_its_limit())


def test_a_block_within_its_limit_or_without_one_runs_to_its_end() -> None:
    asyncio.run(_within_its_limit())


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    asyncio.run(_cancelled_elsewhere())
