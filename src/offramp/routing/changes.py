"""A route's "something changed" notice: requests that found no deployment they could try
at once wait on it, and a circuit's transition (or a probe handed back) wakes them to walk
the route again."""

from __future__ import annotations

import asyncio


class Changes:
    """Wakes every request waiting on a route. Waiters are futures of the running loop,
    made per wait, so one route serves any number of event loops in turn (tests)."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return len(self._waiters)

    def notify(self) -> None:
        """Wake every waiter (a circuit of the route changed state)."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, seconds: float | None) -> None:
        """Return at the next ``notify`` or after ``seconds`` (None: no limit),
        whichever comes first; never raises TimeoutError."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(seconds):
                await waiter
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
