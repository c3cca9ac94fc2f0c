"""Streams through the router: nothing reaches the client before real content.

``hold`` reads a fresh stream until its first piece of content (text, a tool call, a
finish reason, or the end), so a deployment that fails before its first token (refused,
an error status, an error event inside a 200 stream, a cut) still lets the router fall
back. ``tail`` then replays what was held and passes the rest through; from there on the
deployment is fixed, and a later failure ends the client's stream with an SSE error event
(raised here, rendered by the API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from offramp.errors import OfframpError
from offramp.routing.breaker import Ticket
from offramp.routing.deployment import Deployment
from offramp.routing.outcome import Outcome
from offramp.types import StreamEnd, StreamItem


@dataclass
class Held:
    """The items read so far (ending with the first content) and the open rest."""

    items: list[StreamItem]
    rest: AsyncIterator[StreamItem]


def is_content(item: StreamItem) -> bool:
    """Whether ``item`` commits the stream: anything but an empty role-only delta."""
    if isinstance(item, StreamEnd):
        return True
    return bool(item.text or item.tool_calls or item.logprobs or item.finish_reason)


async def hold(items: AsyncIterator[StreamItem]) -> Held:
    """Read ``items`` up to the first content; closes them if that fails or is cancelled."""
    held: list[StreamItem] = []
    try:
        async for item in items:
            held.append(item)
            if is_content(item):
                break
    except BaseException:
        await close(items)
        raise
    return Held(held, items)


async def tail(
    held: Held, deployment: Deployment, ticket: Ticket, outcome: Outcome
) -> AsyncIterator[StreamItem]:
    """Replay the held items, then the rest; record the usage, or a late failure (against
    the breaker state the attempt started in)."""
    try:
        for item in held.items:
            _note(item, outcome)
            yield item
        async for item in held.rest:
            _note(item, outcome)
            yield item
    except OfframpError as exc:
        deployment.failed_midway(ticket, exc)
        exc.message = f"deployment {deployment.id} failed after the stream started: {exc.message}"
        raise
    finally:
        await close(held.rest)


def _note(item: StreamItem, outcome: Outcome) -> None:
    if isinstance(item, StreamEnd):
        outcome.usage = item.usage


async def close(items: AsyncIterator[object]) -> None:
    closer = getattr(items, "aclose", None)
    if closer is not None:
        await closer()
