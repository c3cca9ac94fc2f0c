"""Stored responses of the Responses API in the ledger database, shared by replicas.

A response made with ``store: true`` is kept with every input item it saw (the items of
the responses it continued included), so ``previous_response_id`` continues it with one
read. A response belongs to the key that made it: another key naming its id gets
ResponseNotFound (404), as if it did not exist. Responses older than ``ttl_s`` are
forgotten, and deleted as new ones are stored.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from offramp.errors import ResponseNotFound, quoted
from offramp.ledger.schema import stored_responses as table

Json = dict[str, Any]


@dataclass(frozen=True)
class StoredResponse:
    """A response object as it was returned, and the input items it answered."""

    id: str
    owner: str
    created_at: float
    model: str
    previous_id: str | None
    response: Json
    context: list[Json]
    request_id: str | None = None  # the x-request-id of the request that made it


class StoredResponses:
    """Rows of ``offramp_responses`` (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, ttl_s: float):
        self._engine = engine
        self._ttl_s = ttl_s

    async def save(self, stored: StoredResponse) -> None:
        """Keep ``stored`` (its id is new); expired responses are dropped meanwhile."""
        await asyncio.to_thread(self._save, stored)

    async def get(self, response_id: str, owner: str) -> StoredResponse:
        """The response ``response_id`` of ``owner``; ResponseNotFound otherwise."""
        return await asyncio.to_thread(self._get, response_id, owner)

    async def delete(self, response_id: str, owner: str) -> None:
        """Forget the response ``response_id`` of ``owner``; ResponseNotFound otherwise."""
        await asyncio.to_thread(self._delete, response_id, owner)

    def _save(self, stored: StoredResponse) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(table).where(table.c.created_at < time.time() - self._ttl_s))
            conn.execute(
                insert(table).values(
                    id=stored.id,
                    owner=stored.owner,
                    created_at=stored.created_at,
                    model=stored.model,
                    previous_id=stored.previous_id,
                    response=json.dumps(stored.response),
                    context=json.dumps(stored.context),
                    request_id=stored.request_id,
                )
            )

    def _get(self, response_id: str, owner: str) -> StoredResponse:
        with self._engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == response_id)).first()
        if row is None or row.owner != owner or row.created_at < time.time() - self._ttl_s:
            raise _not_found(response_id)
        return StoredResponse(
            id=row.id,
            owner=row.owner,
            created_at=row.created_at,
            model=row.model,
            previous_id=row.previous_id,
            response=json.loads(row.response),
            context=json.loads(row.context),
            request_id=row.request_id,
        )

    def _delete(self, response_id: str, owner: str) -> None:
        with self._engine.begin() as conn:
            gone = conn.execute(
                delete(table).where(table.c.id == response_id, table.c.owner == owner)
            )
        if gone.rowcount == 0:
            raise _not_found(response_id)


def _not_found(response_id: str) -> ResponseNotFound:
    return ResponseNotFound(
        f"Response with id {quoted(response_id)} not found.", param="response_id"
    )
