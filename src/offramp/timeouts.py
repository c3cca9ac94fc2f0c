"""``cancel_after``: ``asyncio.timeout`` for the request path, at about half its cost.

Every request crosses two time limits (its body's read deadline, its upstream attempt's
timeout); under load ``asyncio.timeout``'s own bookkeeping showed up in the profile. This
is the same contract for the common case, a plain ``with`` around awaits in one task.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class cancel_after:
    """``with cancel_after(seconds): ...`` raises TimeoutError when the block, awaited in
    the current task, runs past ``seconds`` (None: no limit); it cancels the task at the
    deadline and turns that cancellation, and only that one, into TimeoutError."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_seconds", "_task")

    def __init__(self, seconds: float | None):
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._fired = False
        self._cancelling = 0

    def __enter__(self) -> cancel_after:
        if self._seconds is not None:
            self._task = asyncio.current_task()
            assert self._task is not None, "cancel_after runs inside a task"
            self._cancelling = self._task.cancelling()
            self._handle = asyncio.get_running_loop().call_later(self._seconds, self._fire)
        return self

    def _fire(self) -> None:
        assert self._task is not None
        self._fired = True
        self._task.cancel()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        _: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if not self._fired:
            return
        assert self._task is not None
        if self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            raise TimeoutError from error
