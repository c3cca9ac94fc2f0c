"""GBNF for the insides of JSON objects and arrays.

Object members come in schema order; an optional one may be skipped, so whether a comma
precedes a member depends on whether any came before it: two rules per member (first /
after another) keep the grammar linear in the number of members. Array items are the
``prefixItems`` in order, then items of the ``items`` schema, between ``minItems`` and
``maxItems`` in all; each optional item is present only if the one before it is.
"""

from __future__ import annotations

from collections.abc import Callable


class Members:
    """The members of an object in schema order; optional ones may be skipped, so the
    comma before each depends on whether anything came before (two rules per member)."""

    def __init__(
        self,
        rule: Callable[[str, str], str],
        hint: str,
        entries: list[tuple[str, bool]],
        extra: str | None,
    ):
        self._rule = rule
        self._hint = hint
        self._entries = entries
        self._extra = extra
        self._memo: dict[tuple[int, bool], str] = {}

    def build(self) -> str:
        return self._from(0, True)

    def _from(self, i: int, first: bool) -> str:
        if (i, first) in self._memo:
            return self._memo[(i, first)]
        lead = "" if first else '"," space '
        if i == len(self._entries):
            if self._extra is None:
                return ""
            expr = f'({lead}{self._extra} ("," space {self._extra})*)?'
        else:
            member, required = self._entries[i]
            rest = self._from(i + 1, False)
            expr = f"{lead}{member} {rest}".strip()
            if not required:
                skipped = self._from(i + 1, first)
                expr = f"({expr} | {skipped})" if skipped else f"({expr})?"
        optional_after = not all(r for _, r in self._entries[i:]) or self._extra is not None
        if i and optional_after:
            expr = self._rule(f"{self._hint}-{i}{'' if first else '-rest'}", expr)
        self._memo[(i, first)] = expr
        return expr


def elements(prefix: list[str], extra: str | None, low: int, high: int | None) -> str:
    """The items of an array: ``prefix`` in order, then ``extra`` ones, low..high in all."""
    parts = []
    for i in range(min(low, len(prefix))):
        parts.append(('"," space ' if i else "") + prefix[i])
    if low > len(prefix) and extra is not None:
        more = low - len(prefix)
        if prefix:
            parts.append(f'("," space {extra}){{{more}}}')
        else:
            parts.append(extra + (f' ("," space {extra}){{{more - 1}}}' if more > 1 else ""))
    parts.append(_tail(prefix, extra, max(low, 0), high))
    return " ".join(p for p in parts if p)


def _tail(prefix: list[str], extra: str | None, i: int, high: int | None) -> str:
    """Optional items from index ``i`` on (each present only if the one before is)."""
    if high is not None and i >= high:
        return ""
    lead = '"," space ' if i else ""
    if i < len(prefix):
        rest = _tail(prefix, extra, i + 1, high)
        return f"({lead}{prefix[i]}{' ' + rest if rest else ''})?"
    if extra is None:
        return ""
    remaining = None if high is None else high - i
    if i == 0:
        more = repeat(f'("," space {extra})', 0, None if remaining is None else remaining - 1)
        return f"({extra}{' ' + more if more else ''})?"
    return repeat(f'("," space {extra})', 0, remaining)


def seq(*items: str) -> str:
    """Items in sequence, the empty ones left out."""
    return " ".join(i for i in items if i)


def repeat(item: str, low: int, high: int | None) -> str:
    """``item`` low..high times (high None: unbounded); empty when high is 0."""
    if high is None:
        return f"{item}*" if low == 0 else f"{item}{{{low},}}"
    if high == 0:
        return ""
    return f"{item}{{{low}}}" if low == high else f"{item}{{{low},{high}}}"
