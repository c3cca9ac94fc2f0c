"""The engine-to-event-loop mailbox: batches under load, never holds the first or last."""

from __future__ import annotations

import asyncio
import threading
import time

from offramp.providers.llamacpp.mailbox import Mailbox


def test_first_item_goes_at_once_and_later_ones_are_batched() -> None:
    async def scenario() -> tuple[list[int], list[int], float]:
        box: Mailbox[int] = Mailbox(asyncio.get_running_loop(), interval=0.2)
        started = time.monotonic()
        box.put(0, urgent=False)
        first = await box.take()
        first_after = time.monotonic() - started

        def produce() -> None:  # another thread, as the engine is
            for i in range(1, 6):
                box.put(i, urgent=False)

        thread = threading.Thread(target=produce)
        thread.start()
        thread.join()
        rest = await box.take()
        return first, rest, first_after

    first, rest, first_after = asyncio.run(scenario())
    assert first == [0] and first_after < 0.15
    assert rest == [1, 2, 3, 4, 5]  # one wake-up for the whole burst


def test_urgent_item_is_not_held_by_the_interval() -> None:
    async def scenario() -> float:
        box: Mailbox[str] = Mailbox(asyncio.get_running_loop(), interval=5.0)
        box.put("a", urgent=True)
        await box.take()
        box.put("b", urgent=False)  # would wait ~5 s for the interval
        started = time.monotonic()
        box.put("end", urgent=True)
        got = await box.take()
        assert got == ["b", "end"]
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0
