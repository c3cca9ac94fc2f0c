"""Conversation history of tasks that keep one, by session id, in this process."""

from __future__ import annotations

from collections import OrderedDict, deque

Turn = tuple[str, str]  # (user's message, assistant's reply)


class SessionHistory:
    """The latest turns of each session; beyond ``max_sessions`` the least recently used
    session is forgotten. Not shared between processes and lost on restart."""

    def __init__(self, max_sessions: int, max_turns: int = 50):
        self._max_sessions = max_sessions
        self._max_turns = max_turns
        self._sessions: OrderedDict[str, deque[Turn]] = OrderedDict()

    def turns(self, key: str, last: int) -> list[Turn]:
        """Up to ``last`` most recent turns of session ``key``, oldest first."""
        turns = self._sessions.get(key)
        if turns is None:
            return []
        self._sessions.move_to_end(key)
        return list(turns)[-last:]

    def add(self, key: str, user: str, assistant: str) -> None:
        """Record one finished turn of session ``key``."""
        turns = self._sessions.get(key)
        if turns is None:
            turns = self._sessions[key] = deque(maxlen=self._max_turns)
        turns.append((user, assistant))
        self._sessions.move_to_end(key)
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)
