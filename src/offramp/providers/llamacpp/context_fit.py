"""Fitting a conversation that outgrew the context: a model's ``context_overflow`` option.

``error`` (the default, as OpenAI does): the request is refused with 400
``context_length_exceeded`` and the numbers.

``drop_oldest``: whole turns are dropped, oldest first, until the prompt and room for the
answer fit. A turn is a user message with everything after it up to the next user message
(the assistant's reply, its tool calls and their results), so no tool result is left
without its call. System (and developer) messages and the last user turn are never dropped.

``truncate_middle``: the first turn is kept too (it often sets the task), and the turns
after it are dropped, oldest first; if the last user turn alone is still too long, the
middle of its last message is cut out (its start and end are kept, joined by `` … ``).

Either way the answer says what was done (``x-offramp-context-overflow``). When even that
is not enough the request is refused as with ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from offramp.errors import ContextLengthExceeded, InvalidRequest
from offramp.types import Message

Overflow = Literal["error", "drop_oldest", "truncate_middle"]
OVERFLOWS: tuple[Overflow, ...] = ("error", "drop_oldest", "truncate_middle")
MARK = " … "


def overflow_option(value: object) -> Overflow:
    """Check a model's ``context_overflow`` option (InvalidRequest, param ``config``)."""
    if value not in OVERFLOWS:
        raise InvalidRequest(
            f"context_overflow must be one of {', '.join(OVERFLOWS)}, got {value!r}",
            param="config",
        )
    return value


@dataclass(frozen=True)
class Fitted:
    """The messages that fit and what was done to them."""

    messages: tuple[Message, ...]
    dropped: int = 0  # messages dropped
    cut_chars: int = 0  # characters cut from the middle of the last message

    def notice(self, policy: Overflow) -> str:
        """The value of ``x-offramp-context-overflow``."""
        parts = [policy, f"messages_dropped={self.dropped}"]
        if self.cut_chars:
            parts.append(f"chars_cut={self.cut_chars}")
        return "; ".join(parts)


def fit(
    messages: tuple[Message, ...], policy: Overflow, fits: Callable[[tuple[Message, ...]], bool]
) -> Fitted | None:
    """The messages cut down by ``policy`` until ``fits``; None when they cannot be."""
    turns = _turns(messages)
    if len(turns) < 1:
        return None
    keep_first = policy == "truncate_middle" and len(turns) > 1
    droppable = turns[1:-1] if keep_first else turns[:-1]
    dropped: set[int] = set()
    for turn in droppable:
        dropped.update(turn)
        kept = _without(messages, dropped)
        if fits(kept):
            return Fitted(kept, len(dropped))
    kept = _without(messages, dropped)
    if policy == "truncate_middle":
        return _cut_last(kept, len(dropped), fits)
    return None


def _turns(messages: tuple[Message, ...]) -> list[list[int]]:
    """Indices of the non-system messages, grouped into turns (each from a user message)."""
    turns: list[list[int]] = []
    for i, m in enumerate(messages):
        if m.role == "system":
            continue
        if m.role == "user" or not turns:
            turns.append([])
        turns[-1].append(i)
    return turns


def _without(messages: tuple[Message, ...], dropped: set[int]) -> tuple[Message, ...]:
    return tuple(m for i, m in enumerate(messages) if i not in dropped)


def _cut_last(
    messages: tuple[Message, ...], dropped: int, fits: Callable[[tuple[Message, ...]], bool]
) -> Fitted | None:
    """Cut the middle of the last message's text, as little as fits (binary search)."""
    last = messages[-1]
    text = last.content or ""
    if not text:
        return None

    def trimmed(keep: int) -> tuple[Message, ...]:
        head, tail = text[: (keep + 1) // 2], text[len(text) - keep // 2 :]
        return (*messages[:-1], replace(last, content=head + MARK + tail))

    low, high = 0, len(text) - 1  # characters kept; ``low`` must fit, ``high`` may not
    if not fits(trimmed(low)):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(trimmed(middle)):
            low = middle
        else:
            high = middle - 1
    return Fitted(trimmed(low), dropped, len(text) - low)


def answer_room(asked: int | None, cap: int | None, n_ctx: int) -> int:
    """Tokens kept free for the answer when fitting: the request's ``max_tokens``, else
    the model's output cap, at most a quarter of the context."""
    if asked is not None:
        return asked
    return min(cap or n_ctx, n_ctx // 4)


def openai_estimate(chars: int, messages: int) -> int:
    """About how many tokens OpenAI's tokenizers would count: 4 characters a token, plus
    OpenAI's documented overhead of 3 tokens per chat message and 3 for the reply."""
    return (chars + 3) // 4 + (3 * messages + 3 if messages else 0)


def too_long(
    n_ctx: int, prompt: int, asked: int | None, param: str, openai_tokens: int
) -> ContextLengthExceeded:
    """The 400 for a prompt (plus completion) over the context: by how much, in this
    model's tokens and in an estimate of OpenAI's, so an app can tune its own budget."""
    total = prompt + (asked or 1)
    if asked is None:
        detail = f"{prompt} in the {param}"
    else:
        detail = f"{total} tokens ({prompt} in the {param}, {asked} in the completion)"
    over = total - n_ctx
    return ContextLengthExceeded(
        f"This model's maximum context length is {n_ctx} tokens. However, you requested "
        f"{detail}: {over} too many. By OpenAI's tokenizers the {param} would be about "
        f"{openai_tokens} tokens (an estimate; this model's tokenizer counts differently). "
        f"Please reduce the length of the {param} or completion.",
        param=param,
    )
