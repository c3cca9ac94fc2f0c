"""Task conversations in the ledger database, so every replica sees the same history.

A session belongs to the owner (API key and end user) whose request created it; another
owner naming the same id gets SessionNotFound (404), as if it did not exist. Sessions
untouched for ``ttl_s`` are forgotten.
"""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import Engine, delete, insert, select, update

from offramp.errors import SessionNotFound, quoted
from offramp.ledger.schema import task_sessions

Turn = tuple[str, str]  # (user's message, assistant's reply)


class StoredSessions:
    """Task sessions as rows of ``offramp_task_sessions`` (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, ttl_s: float, max_turns: int = 50):
        self._engine = engine
        self._ttl_s = ttl_s
        self._max_turns = max_turns

    async def turns(self, session: str, owner: str, last: int) -> list[Turn]:
        """Up to ``last`` latest turns of ``session``, oldest first ([] for a new one)."""
        return await asyncio.to_thread(self._turns, session, owner, last)

    async def add(self, session: str, owner: str, user: str, assistant: str) -> None:
        """Append a finished turn (creating the session, owned by ``owner``)."""
        await asyncio.to_thread(self._add, session, owner, user, assistant)

    def _row(self, session: str) -> tuple[str, list[Turn]] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    task_sessions.c.owner, task_sessions.c.turns, task_sessions.c.updated_at
                ).where(task_sessions.c.id == session)
            ).first()
        if row is None or row.updated_at < time.time() - self._ttl_s:
            return None
        return row.owner, [(str(u), str(a)) for u, a in json.loads(row.turns)]

    def _turns(self, session: str, owner: str, last: int) -> list[Turn]:
        found = self._row(session)
        if found is None:
            return []
        if found[0] != owner:
            raise SessionNotFound(
                f"no session {quoted(session.split(':', 1)[-1])}", param="session_id"
            )
        return found[1][-last:] if last > 0 else []

    def _add(self, session: str, owner: str, user: str, assistant: str) -> None:
        found = self._row(session)
        if found is not None and found[0] != owner:
            raise SessionNotFound(
                f"no session {quoted(session.split(':', 1)[-1])}", param="session_id"
            )
        turns = [*(found[1] if found else []), (user, assistant)][-self._max_turns :]
        values = {"owner": owner, "turns": json.dumps(turns), "updated_at": time.time()}
        with self._engine.begin() as conn:
            if found is None:
                conn.execute(delete(task_sessions).where(task_sessions.c.id == session))
                conn.execute(insert(task_sessions).values(id=session, **values))
            else:
                conn.execute(
                    update(task_sessions).where(task_sessions.c.id == session).values(**values)
                )
