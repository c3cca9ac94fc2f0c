"""Conversation history of tasks that keep one: the store interface and its in-process form.

A session belongs to the owner (API key and end user) whose request created it; another
owner naming its id gets SessionNotFound (404). The shared form lives in the ledger database
(``offramp.ledger.sessions``) so replicas see the same history.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Protocol

from offramp.errors import SessionNotFound, quoted

Turn = tuple[str, str]  # (user's message, assistant's reply)


class SessionStore(Protocol):
    """Where task conversations live; both methods raise SessionNotFound for a session
    owned by someone else."""

    async def turns(self, session: str, owner: str, last: int) -> list[Turn]:
        """Up to ``last`` latest turns of ``session``, oldest first ([] for a new one)."""
        ...

    async def add(self, session: str, owner: str, user: str, assistant: str) -> None:
        """Append a finished turn (creating the session, owned by ``owner``)."""
        ...


class MemorySessions:
    """The latest turns of each session in this process; beyond ``max_sessions`` the least
    recently used session is forgotten, and so is one untouched for ``ttl_s``."""

    def __init__(self, max_sessions: int, ttl_s: float, max_turns: int = 50):
        self._max_sessions = max_sessions
        self._ttl_s = ttl_s
        self._max_turns = max_turns
        self._sessions: OrderedDict[str, tuple[str, float, deque[Turn]]] = OrderedDict()

    async def turns(self, session: str, owner: str, last: int) -> list[Turn]:
        found = self._owned(session, owner)
        return list(found)[-last:] if found is not None and last > 0 else []

    async def add(self, session: str, owner: str, user: str, assistant: str) -> None:
        turns = self._owned(session, owner)
        if turns is None:
            turns = deque(maxlen=self._max_turns)
        turns.append((user, assistant))
        self._sessions[session] = (owner, time.monotonic(), turns)
        self._sessions.move_to_end(session)
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)

    def _owned(self, session: str, owner: str) -> deque[Turn] | None:
        entry = self._sessions.get(session)
        if entry is None:
            return None
        if entry[1] < time.monotonic() - self._ttl_s:
            del self._sessions[session]
            return None
        if entry[0] != owner:
            raise SessionNotFound(
                f"no session {quoted(session.split(':', 1)[-1])}", param="session_id"
            )
        self._sessions.move_to_end(session)
        return entry[2]

    def __len__(self) -> int:
        return len(self._sessions)
